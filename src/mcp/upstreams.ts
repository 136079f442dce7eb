import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { Agent } from 'undici';
import { AgentPool, type EgressPolicy } from './egress.js';
import { createUpstreamFetch } from './fetch.js';
import type { UpstreamLimits } from './limits.js';
import type { SessionPool } from './pool.js';
import type { UpstreamSession } from './session.js';
import type { FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import { mcpSpan } from '../obs/tracing.js';

/** What the mcp layer needs to know of a server to reach it. */
export interface UpstreamTarget {
  sessionKey: string;
  url: URL;
  origin: string;
  headers: Record<string, string>;
  transport: 'auto' | 'streamable_http' | 'sse';
  egress: EgressPolicy;
  callTimeoutMs: number;
}

/**
 * The one way out to MCP servers: a session from the pool, through the egress-guarded,
 * size-capped fetch, inside the concurrency bounds and the origin's circuit breaker.
 */
export class Upstreams {
  private readonly fetches = new WeakMap<Agent, FetchLike>();

  constructor(
    readonly pool: SessionPool,
    readonly agents: AgentPool,
    readonly limits: UpstreamLimits,
    private readonly maxUpstreamBytes: number,
  ) {}

  session(t: UpstreamTarget): UpstreamSession {
    return this.pool.get(t.sessionKey, () => ({ key: t.sessionKey, url: t.url, headers: t.headers, transport: t.transport, fetch: this.fetchFor(t.egress) }));
  }

  listTools(t: UpstreamTarget, signal?: AbortSignal): Promise<Tool[]> {
    return mcpSpan('tools/list', t, undefined, () => this.limits.run(t.origin, () => this.session(t).listTools({ timeoutMs: t.callTimeoutMs, signal })));
  }

  callTool(t: UpstreamTarget, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    return mcpSpan('tools/call', t, name, () => this.limits.run(t.origin, () => this.session(t).callTool(name, args, { timeoutMs: t.callTimeoutMs, signal })));
  }

  private fetchFor(policy: EgressPolicy): FetchLike {
    const agent = this.agents.get(policy);
    let f = this.fetches.get(agent);
    if (!f) this.fetches.set(agent, (f = createUpstreamFetch(agent, this.maxUpstreamBytes)));
    return f;
  }

  async close() {
    await this.pool.close();
    await this.agents.close();
  }
}
