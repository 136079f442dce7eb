import { z } from 'zod';
import { AllowedToolsSchema, RequireApprovalSchema } from '../policy/schema.js';
import { HeadersSchema } from './headers.js';

export const SERVER_LABEL_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const ServerLabelSchema = z.string().regex(SERVER_LABEL_RE, 'server_label must match ^[A-Za-z0-9_-]{1,64}$');

export const HttpUrlSchema = z
  .string()
  .max(2048)
  .refine((s) => URL.canParse(s) && ['http:', 'https:'].includes(new URL(s).protocol), {
    message: 'must be an http: or https: URL',
  });

const Sha256HexSchema = z.string().regex(/^[0-9a-f]{64}$/);

export const ApprovalConfigSchema = z.strictObject({
  mode: z.enum(['caller', 'webhook']).default('caller'),
  webhook_url: HttpUrlSchema.optional(),
  webhook_secret: z.string().min(1).max(1024).optional(),
  wait_ms: z.number().int().min(0).max(60000).default(0),
});
export type ApprovalConfig = z.infer<typeof ApprovalConfigSchema>;

/** An admin-registered MCP server (SPEC §2). Only the label and URL are required. */
export const ServerRecordSchema = z.strictObject({
  server_label: ServerLabelSchema,
  server_url: HttpUrlSchema,
  server_description: z.string().max(4096).optional(),
  transport: z.enum(['auto', 'streamable_http', 'sse']).default('auto'),
  /** MCP era: `auto` (2026-07-28 first, legacy only on the revision's negotiation signal) or one pinned revision. Omitted = `auto`. */
  protocol: z.enum(['auto', '2026-07-28', '2025-11-25']).optional(),
  headers: HeadersSchema.default({}),
  // Omitted on a record means "always" (the OpenAI default); null is read the same way.
  require_approval: RequireApprovalSchema.transform((v) => v ?? 'always').default('always'),
  allowed_tools: AllowedToolsSchema.default(null),
  approval: ApprovalConfigSchema.default({ mode: 'caller', wait_ms: 0 }),
  allow_private_network: z.boolean().default(false),
  tool_cache_ttl_s: z.number().int().min(0).max(86400).default(300),
  call_timeout_ms: z.number().int().min(100).max(600000).default(30000),
  pinned_tools: z.record(z.string(), Sha256HexSchema).optional(),
});
export type ServerRecord = z.infer<typeof ServerRecordSchema>;
export type ServerRecordInput = z.input<typeof ServerRecordSchema>;

export const ServersFileSchema = z.strictObject({ servers: z.array(ServerRecordSchema) });
