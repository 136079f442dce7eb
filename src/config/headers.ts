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

export const HeaderValueSchema = z
  .string()
  .max(8192)
  .refine((v) => !/[\r\n\0]/.test(v), { message: 'header values may not contain CR, LF or NUL' });

export const HeadersSchema = z
  .record(HeaderNameSchema, HeaderValueSchema)
  .refine((h) => Object.keys(h).length <= 32, { message: 'at most 32 headers' })
  // fetch would join `X-A` and `x-a` into one "v1, v2" header.
  .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, {
    message: 'header names must be unique regardless of case',
  });
