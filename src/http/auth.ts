import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { AuthenticationError } from '../errors/index.js';

/** The caller of a request. `owner` is a hash of the API key: approvals and responses belong to it. */
export type Principal = { kind: 'admin' } | { kind: 'approver' } | { kind: 'api'; owner: string };

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Three disjoint credential classes, compared in constant time over SHA-256 digests. */
export class Credentials {
  private readonly admin: Buffer;
  private readonly approver: Buffer | undefined;
  private readonly apiKeys: Buffer[];

  constructor(o: { adminToken: string; approverToken?: string; apiKeys: readonly string[] }) {
    this.admin = digest(o.adminToken);
    this.approver = o.approverToken ? digest(o.approverToken) : undefined;
    this.apiKeys = o.apiKeys.map(digest);
  }

  get openMode(): boolean {
    return this.apiKeys.length === 0;
  }

  classify(token: string | undefined): Principal | undefined {
    if (!token) return undefined;
    const d = digest(token);
    if (timingSafeEqual(d, this.admin)) return { kind: 'admin' };
    if (this.approver && timingSafeEqual(d, this.approver)) return { kind: 'approver' };
    let hit = false;
    for (const k of this.apiKeys) hit = timingSafeEqual(d, k) || hit;
    return hit ? { kind: 'api', owner: d.toString('hex').slice(0, 32) } : undefined;
  }
}

export const ANONYMOUS: Principal = { kind: 'api', owner: 'anonymous' };

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
    const p = creds.classify(bearer(req));
    if (p && accept.includes(p.kind)) {
      req.principal = p;
      return next();
    }
    if (creds.openMode && accept.includes('api') && p?.kind !== 'approver') {
      req.principal = ANONYMOUS;
      return next();
    }
    next(new AuthenticationError());
  };
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
