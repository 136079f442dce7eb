import { randomBytes, createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

// One getrandom() per 256 ids instead of one per id: ids are minted on every item.
const POOL = 16 * 256;
let pool = Buffer.alloc(0);
let at = POOL;

/** OpenAI-style ids with 128 random bits: `mcpl_…`, `mcp_…`, `mcpr_…`, `resp_…`. */
export function newId(prefix: string): string {
  if (at >= POOL) {
    pool = randomBytes(POOL);
    at = 0;
  }
  at += 16;
  return `${prefix}_${pool.toString('hex', at - 16, at)}`;
}

export function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 8785 canonical JSON. */
export function canonicalJson(value: unknown): string {
  return canonicalize(value) ?? 'null';
}

export const canonicalSha256 = (value: unknown) => sha256Hex(canonicalJson(value));
