import { fetch as undiciFetch } from 'undici';
import type { FetchLike } from '@modelcontextprotocol/client';
import type { AgentPool, EgressPolicy } from '../mcp/egress.js';

/** Metadata, registration and token requests go out through the record's egress-guarded Agent. */
export function guardedFetchFor(agents: AgentPool): (policy: EgressPolicy) => FetchLike {
  const cache = new Map<string, FetchLike>();
  return (policy) => {
    const key = `${policy.allowPrivate}|${policy.allowCidrs.map(([a, b]) => `${a.toString()}/${b}`).join(',')}`;
    let f = cache.get(key);
    if (!f) {
      const dispatcher = agents.get(policy);
      f = (async (url: string | URL, init?: RequestInit) =>
        (await undiciFetch(url as string, { ...(init as object), dispatcher })) as unknown as Response) as FetchLike;
      cache.set(key, f);
    }
    return f;
  };
}
