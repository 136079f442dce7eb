import { z } from 'zod';

/** Names the transport owns or that are hop-by-hop: a caller or admin may not set them. */
const RESERVED = new Set([
  'host', 'content-length', 'transfer-encoding', 'connection', 'cookie', 'keep-alive', 'upgrade', 'te',
  'trailer', 'mcp-session-id', 'mcp-protocol-version', 'accept', 'content-type', 'last-event-id',
]);

export const HeaderNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9-]{1,64}$/, 'header names are 1-64 letters, digits or "-"')
  .refine((n) => !RESERVED.has(n.toLowerCase()) && !n.toLowerCase().startsWith('proxy-'), {
    message: 'this header is owned by the transport and cannot be set',
  });

/**
 * What fetch (undici) accepts in a header value: visible Latin-1, space and tab. CR, LF,
 * NUL, other C0 controls, DEL and anything beyond U+00FF make fetch throw after the request
 * was prepared, so they are refused as the caller's bad input instead.
 */
const BAD_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
export const BAD_HEADER_VALUE_MESSAGE = 'header values may contain only printable Latin-1 characters, spaces and tabs (no CR, LF, NUL or other control characters)';
export const isValidHeaderValue = (v: string) => !BAD_HEADER_CHAR.test(v);

export const HeaderValueSchema = z
  .string()
  .max(8192)
  .refine(isValidHeaderValue, { message: BAD_HEADER_VALUE_MESSAGE });

/**
 * Credential values shorter than this cannot be scrubbed from outputs and logs without
 * mangling ordinary text, so they are refused: caller `authorization` and header values at
 * request time, admin record header values (after `${NAME}` expansion) at write time.
 */
export const MIN_SECRET_LENGTH = 8;

/**
 * Header names that carry credentials by convention. Other headers (`X-Region: eu`) may be
 * short: they are still never echoed by the broker itself, but a value of a few letters
 * cannot be scrubbed from a server's output without mangling it, so only these are held
 * to the minimum length.
 */
const CREDENTIAL_NAME = /auth|key|token|secret|passw|session|signature|credential|cookie/i;

/**
 * Why a header value cannot be used as a credential, or undefined. For `Authorization`
 * (`Bearer x`, `Basic x`, …) the token after the scheme must be long enough too, since a
 * server may echo it alone.
 */
export function credentialValueProblem(name: string, value: string): string | undefined {
  if (!isValidHeaderValue(value)) return BAD_HEADER_VALUE_MESSAGE;
  const v = value.trim();
  if (!CREDENTIAL_NAME.test(name)) return undefined;
  if (v.length < MIN_SECRET_LENGTH) return `header values must be at least ${MIN_SECRET_LENGTH} characters (shorter values cannot be kept out of outputs and logs)`;
  if (name.toLowerCase() === 'authorization' || name.toLowerCase() === 'proxy-authorization') {
    const m = /^\S+\s+(.+)$/.exec(v);
    if (m && m[1]!.trim().length < MIN_SECRET_LENGTH) return `the credential after the authorization scheme must be at least ${MIN_SECRET_LENGTH} characters`;
  }
  return undefined;
}

/** The same for the tool param's `authorization` field (the bare token). */
export function authorizationProblem(token: string): string | undefined {
  if (!isValidHeaderValue(token)) return 'authorization may contain only printable Latin-1 characters (no CR, LF, NUL or other control characters)';
  if (token.trim().length < MIN_SECRET_LENGTH) return `authorization must be at least ${MIN_SECRET_LENGTH} characters (shorter values cannot be kept out of outputs and logs)`;
  return undefined;
}

export const HeadersSchema = z
  .record(HeaderNameSchema, HeaderValueSchema)
  .refine((h) => Object.keys(h).length <= 32, { message: 'at most 32 headers' })
  // fetch would join `X-A` and `x-a` into one "v1, v2" header.
  .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, {
    message: 'header names must be unique regardless of case',
  });
