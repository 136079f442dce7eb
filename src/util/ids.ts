import { randomBytes, createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** OpenAI-style ids with 128 random bits: `mcpl_…`, `mcp_…`, `mcpr_…`, `resp_…`. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString('hex')}`;
}

export function sha256Hex(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** RFC 8785 canonical JSON. */
export function canonicalJson(value: unknown): string {
  return canonicalize(value) ?? 'null';
}

export const canonicalSha256 = (value: unknown) => sha256Hex(canonicalJson(value));
