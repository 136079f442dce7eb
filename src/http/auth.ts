import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { ApprovalService } from '../approvals/service.js';
import { AuthenticationError, NotFoundError, RateLimitError, retryAfter } from '../errors/index.js';
import { callerOfKey, callerScope, ownerOfKey, UNRESTRICTED, type CallerKey } from '../keys/caller.js';
import { grantFor } from '../policy/policy.js';
import type { RateLimiter } from '../keys/rateLimit.js';
import type { KeyStore } from '../keys/store.js';
import { KEY_PREFIX } from '../keys/keys.js';

/**
 * The caller of a request. `owner` is what approvals and responses belong to: a hash of a
 * BROKER_API_KEYS key, or a named key's id (stable across rotation). `key` carries the
 * named key's grants and limits (UNRESTRICTED for BROKER_API_KEYS and open mode).
 */
export type Principal = { kind: 'admin' } | { kind: 'approver' } | { kind: 'api'; owner: string; key: CallerKey };

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Three disjoint credential classes — admin, approver, API (BROKER_API_KEYS and named
 * keys) — compared in constant time over SHA-256 digests.
 */
export class Credentials {
  private readonly admin: Buffer;
  private readonly approver: Buffer | undefined;
  private readonly apiKeys: Buffer[];
  private readonly keys: Pick<KeyStore, 'find' | 'size' | 'local'> | undefined;
  private readonly allowOpenMode: boolean;

  constructor(o: { adminToken: string; approverToken?: string; apiKeys: readonly string[]; keys?: Pick<KeyStore, 'find' | 'size' | 'local'>; allowOpenMode?: boolean }) {
    this.admin = digest(o.adminToken);
    this.approver = o.approverToken ? digest(o.approverToken) : undefined;
    this.apiKeys = o.apiKeys.map(digest);
    this.keys = o.keys;
    this.allowOpenMode = o.allowOpenMode ?? true;
  }

  /**
   * No BROKER_API_KEYS and no named key: `/v1/*` callers are one anonymous identity — only
   * where open mode is allowed (a loopback HOST). A broker on another host that started
   * with named keys alone never opens up when the last of them is deleted: `/v1/*` is 401.
   */
  get openMode(): boolean {
    return this.allowOpenMode && this.apiKeys.length === 0 && (this.keys?.size ?? 0) === 0;
  }

  classify(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const d = digest(token);
    if (timingSafeEqual(d, this.admin)) return { kind: 'admin' };
    if (this.approver && timingSafeEqual(d, this.approver)) return { kind: 'approver' };
    let hit = false;
    for (const k of this.apiKeys) hit = timingSafeEqual(d, k) || hit;
    if (hit) return { kind: 'api', owner: d.toString('hex').slice(0, 32), key: UNRESTRICTED };
    const named = this.keys?.find(d);
    return named ? { kind: 'api', owner: ownerOfKey(named), key: callerOfKey(named, async (name) => this.keys!.local(name)) } : undefined;
  }
}

export const ANONYMOUS: Principal = { kind: 'api', owner: 'anonymous', key: UNRESTRICTED };

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  const m = h ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * Authenticates before the body is read. `accept` lists the classes a route takes; in open
 * mode an API route treats any caller without an approver token as the anonymous key.
 */
export function authenticate(creds: Credentials, accept: ReadonlyArray<Principal['kind']>): RequestHandler {
  return (req, _res, next) => {
    const token = bearer(req);
    const p = creds.classify(token);
    if (p && accept.includes(p.kind)) {
      req.principal = p;
      return next();
    }
    // Open mode ignores Authorization — except a named key's: a deleted or rotated-out key
    // is refused everywhere, never quietly served as the anonymous caller.
    if (creds.openMode && accept.includes('api') && p?.kind !== 'approver' && !token?.startsWith(KEY_PREFIX)) {
      req.principal = ANONYMOUS;
      return next();
    }
    next(new AuthenticationError());
  };
}

/** Per-key `rate_limit_per_min` over every `/v1/*` request, before the body is read (SPEC §11). */
export function limitRate(limiter: RateLimiter): RequestHandler {
  return async (req, _res, next) => {
    const p = req.principal;
    if (p?.kind !== 'api' || p.key.rateLimitPerMin === null) return next();
    const wait = await limiter.take(p.key.id, p.key.rateLimitPerMin);
    if (wait === 0) return next();
    next(new RateLimitError('rate_limit_exceeded', `Rate limit of ${p.key.rateLimitPerMin} requests per minute reached for this API key.`, { headers: retryAfter(wait) }));
  };
}

/**
 * Binds the API caller to the rest of the request (after the body is read, which may
 * leave the async context), for layers that resolve servers on the caller's behalf.
 */
export const bindCaller: RequestHandler = (req, _res, next) => {
  const p = req.principal;
  if (p?.kind !== 'api') return next();
  callerScope.run(p.key, () => next());
};

/**
 * Approvals of a server the key is no longer granted are as invisible as another key's
 * (404 on read and decision); executing them is refused by resolution anyway.
 */
export function approvalVisibility(approvals: ApprovalService): RequestHandler {
  return async (req, _res, next) => {
    const p = req.principal;
    const m = /^\/([^/]+)(?:\/decision)?\/?$/.exec(req.path);
    if (p?.kind !== 'api' || (p.key.grants === '*' && p.key.allowInline) || !m) return next();
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      return next(); // the route answers a malformed id as usual
    }
    const record = await approvals.read(id, { kind: 'api', owner: p.owner }).catch(() => undefined);
    if (!record || visible(p.key, record.server_key, record.server_label)) return next();
    next(new NotFoundError('not_found', `No approval request found with id '${id}'.`));
  };
}

function visible(key: CallerKey, serverKey: string, label: string): boolean {
  if (serverKey.startsWith('inline:')) return key.allowInline;
  return grantFor(key.grants, label) !== undefined;
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AuthenticationError();
  return req.principal;
}

export function apiOwner(req: Request): string {
  const p = principalOf(req);
  if (p.kind !== 'api') throw new AuthenticationError();
  return p.owner;
}

/** The API caller's grants and limits. */
export function apiCaller(req: Request): CallerKey {
  const p = principalOf(req);
  if (p.kind !== 'api') throw new AuthenticationError();
  return p.key;
}
