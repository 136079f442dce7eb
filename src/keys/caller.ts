import { AsyncLocalStorage } from 'node:async_hooks';
import type { Grants } from '../policy/schema.js';
import type { KeyRecord } from './schema.js';

/**
 * What the broker knows of an API caller beyond its owner: the named key's grants and
 * limits. BROKER_API_KEYS and the open-mode caller are granted every server.
 */
export interface CallerKey {
  /** Rate-limit bucket; the named key's id. */
  id: string;
  /** The named key's name; null for BROKER_API_KEYS and the anonymous caller. */
  name: string | null;
  grants: Grants;
  /** Per-request server_url tools (the broker-wide BROKER_ALLOW_INLINE_SERVERS applies too). */
  allowInline: boolean;
  rateLimitPerMin: number | null;
  /** null: BROKER_MAX_PENDING_APPROVALS. */
  maxPendingApprovals: number | null;
  /**
   * A named key's grants now (undefined once deleted): work that outlives its request (a
   * background response) is checked against the key as it is, not as it was. Absent: fixed.
   */
  current?: () => Promise<CallerKey | undefined>;
}

/** BROKER_API_KEYS, the anonymous caller and admin routes: every server, inline per the broker switch. */
export const UNRESTRICTED: CallerKey = Object.freeze({
  id: 'env',
  name: null,
  grants: '*',
  allowInline: true,
  rateLimitPerMin: null,
  maxPendingApprovals: null,
});

export function callerOfKey(r: KeyRecord, lookup?: (name: string) => Promise<KeyRecord | undefined>): CallerKey {
  return {
    ...(lookup && {
      current: async () => {
        const now = await lookup(r.name);
        return now && now.id === r.id ? callerOfKey(now, lookup) : undefined;
      },
    }),
    id: r.id,
    name: r.name,
    grants: r.grants,
    allowInline: r.allow_inline_servers,
    rateLimitPerMin: r.rate_limit_per_min,
    maxPendingApprovals: r.max_pending_approvals,
  };
}

/** The owner string of a named key's approvals and responses. */
export const ownerOfKey = (r: KeyRecord) => `named:${r.id}`;

/**
 * The caller of the request being served, for layers that resolve servers without being
 * handed the caller (the Responses layer calls broker.resolve(param, at)). Set by the HTTP
 * layer once a request is authenticated; absent means a bug, and resolution fails closed.
 */
export const callerScope = new AsyncLocalStorage<CallerKey>();

export function currentCaller(): CallerKey {
  const c = callerScope.getStore();
  if (!c) throw new Error('no caller bound to this request (fail closed)');
  return c;
}
