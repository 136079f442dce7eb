import { z } from 'zod';
import { ServerLabelSchema } from '../config/serverRecord.js';
import { HeadersSchema } from '../config/headers.js';
import { AllowedToolsSchema, RequireApprovalSchema } from '../policy/schema.js';

/** OpenAI's MCP tool param (wire doc §1), as the gateway or an SDK client sends it. */
export const McpToolParamSchema = z.object({
  type: z.literal('mcp'),
  server_label: ServerLabelSchema,
  server_url: z.string().max(2048).optional(),
  connector_id: z.string().optional(),
  tunnel_id: z.string().optional(),
  authorization: z.string().min(1).max(8192).refine((v) => !/[\r\n\0]/.test(v), 'no CR, LF or NUL').nullable().optional(),
  headers: HeadersSchema.nullable().optional(),
  server_description: z.string().max(4096).nullable().optional(),
  allowed_tools: AllowedToolsSchema.optional(),
  require_approval: RequireApprovalSchema.optional(),
  // Newer OpenAI fields: accepted and ignored.
  defer_loading: z.boolean().nullable().optional(),
  allowed_callers: z.unknown().optional(),
});
export type McpToolParam = z.infer<typeof McpToolParamSchema>;
