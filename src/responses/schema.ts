import { z } from 'zod';
import { McpToolParamSchema } from '../broker/toolParam.js';
import { McpApprovalRequestItemSchema, McpCallItemSchema, McpListToolsItemSchema } from '../broker/items.js';

const id = z.string().min(1).max(256);

const InputText = z.object({ type: z.literal('input_text'), text: z.string() });
const InputImage = z
  .object({
    type: z.literal('input_image'),
    image_url: z.string().max(64 * 1024 * 1024).nullable().optional(),
    file_id: id.nullable().optional(),
    detail: z.enum(['low', 'high', 'auto']).nullable().optional(),
  })
  .refine((p) => (p.image_url ? 1 : 0) + (p.file_id ? 1 : 0) === 1, { message: 'give exactly one of image_url or file_id', path: ['image_url'] });
const DATA_URL = /^data:[\w.+-]+\/[\w.+-]+(;[\w-]+=[^;,]*)*;base64,/;
/** wire doc §4: `file_data` (a data URL, with `filename`), `file_url` or `file_id`. */
const InputFile = z
  .object({
    type: z.literal('input_file'),
    file_data: z.string().regex(DATA_URL, 'file_data must be a data URL (data:<media type>;base64,...)').nullable().optional(),
    file_url: z.url({ protocol: /^https?$/ }).max(2048).nullable().optional(),
    file_id: id.nullable().optional(),
    filename: z.string().min(1).max(256).nullable().optional(),
  })
  .refine((p) => (p.file_data ? 1 : 0) + (p.file_url ? 1 : 0) + (p.file_id ? 1 : 0) === 1, { message: 'give exactly one of file_data, file_url or file_id', path: ['file_data'] })
  .refine((p) => !p.file_data || !!p.filename, { message: 'filename is required with file_data', path: ['filename'] });
const OutputText = z.object({ type: z.literal('output_text'), text: z.string(), annotations: z.array(z.unknown()).optional(), logprobs: z.array(z.unknown()).optional() });
const Refusal = z.object({ type: z.literal('refusal'), refusal: z.string() });
export const ContentPartSchema = z.discriminatedUnion('type', [InputText, InputImage, InputFile, OutputText, Refusal]);
export type ContentPart = z.infer<typeof ContentPartSchema>;

export const MessageItemSchema = z.object({
  type: z.literal('message').optional(),
  id: id.optional(),
  role: z.enum(['user', 'assistant', 'system', 'developer']),
  content: z.union([z.string(), z.array(ContentPartSchema)]),
  status: z.string().optional(),
});
export const FunctionCallItemSchema = z.object({
  type: z.literal('function_call'),
  id: id.optional(),
  call_id: id,
  name: z.string().min(1).max(256),
  arguments: z.string(),
  status: z.string().optional(),
});
export const FunctionCallOutputItemSchema = z.object({
  type: z.literal('function_call_output'),
  id: id.optional(),
  call_id: id,
  output: z.union([z.string(), z.array(z.discriminatedUnion('type', [InputText, InputImage, InputFile]))]),
  status: z.string().optional(),
});
export const ApprovalResponseItemSchema = z.object({
  type: z.literal('mcp_approval_response'),
  id: id.optional(),
  approval_request_id: id,
  approve: z.boolean(),
  reason: z.string().max(4096).nullable().optional(),
});
// Clients replay earlier output as input: the same shapes as the items the broker emits.
export const ReplayedListToolsSchema = McpListToolsItemSchema;
export const ReplayedCallSchema = McpCallItemSchema.extend({ status: z.string().optional() });
export const ReplayedApprovalRequestSchema = McpApprovalRequestItemSchema;
export const ReasoningItemSchema = z.object({
  type: z.literal('reasoning'),
  id,
  summary: z.array(z.object({ type: z.literal('summary_text'), text: z.string() })).default([]),
  content: z.array(z.object({ type: z.string(), text: z.string() })).nullable().optional(),
  encrypted_content: z.string().nullable().optional(),
  status: z.string().optional(),
});
export const ItemReferenceSchema = z.object({ type: z.literal('item_reference'), id });

export const InputItemSchema = z.union([
  MessageItemSchema,
  FunctionCallItemSchema,
  FunctionCallOutputItemSchema,
  ApprovalResponseItemSchema,
  ReplayedListToolsSchema,
  ReplayedCallSchema,
  ReplayedApprovalRequestSchema,
  ReasoningItemSchema,
  ItemReferenceSchema,
]);
export type InputItem = z.infer<typeof InputItemSchema>;

export const FunctionToolSchema = z.object({
  type: z.literal('function'),
  name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'function names are 1-64 letters, digits, "_" or "-"'),
  description: z.string().max(8192).nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});
export type FunctionTool = z.infer<typeof FunctionToolSchema>;

/** Any other tool type: named in a 400 by the route. */
export const ToolSchema = z.union([McpToolParamSchema, FunctionToolSchema]);
export type RequestTool = z.infer<typeof ToolSchema>;

export const ToolChoiceSchema = z.union([
  z.enum(['auto', 'none', 'required']),
  z.object({ type: z.literal('function'), name: z.string() }),
  z.object({ type: z.literal('mcp'), server_label: z.string(), name: z.string().nullable().optional() }),
]);
export type ToolChoice = z.infer<typeof ToolChoiceSchema>;

/** `text.format`: echoed normalized (wire doc §4). */
export const TextFormatSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'names are 1-64 letters, digits, "_" or "-"'),
    schema: z.record(z.string(), z.unknown()),
    description: z.string().max(8192).nullable().optional(),
    strict: z.boolean().nullable().optional(),
  }),
]);
export const TextParamSchema = z.object({
  format: TextFormatSchema.nullable().optional(),
  verbosity: z.enum(['low', 'medium', 'high']).nullable().optional(),
});
export type TextParam = z.infer<typeof TextParamSchema>;

export const CreateResponseSchema = z.object({
  model: z.string().min(1).max(256),
  input: z.union([z.string(), z.array(InputItemSchema)]).optional(),
  instructions: z.string().nullable().optional(),
  tools: z.array(z.unknown()).max(128).optional(),
  tool_choice: ToolChoiceSchema.optional(),
  previous_response_id: z.string().max(256).nullable().optional(),
  store: z.boolean().nullable().optional(),
  stream: z.boolean().nullable().optional(),
  max_output_tokens: z.number().int().min(1).nullable().optional(),
  max_tool_calls: z.number().int().min(0).nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullable().optional(),
  user: z.string().max(256).nullable().optional(),
  reasoning: z.object({ effort: z.string().nullable().optional(), summary: z.string().nullable().optional() }).passthrough().nullable().optional(),
  text: TextParamSchema.nullable().optional(),
  include: z.array(z.string()).nullable().optional(),
  truncation: z.enum(['auto', 'disabled']).nullable().optional(),
  background: z.boolean().nullable().optional(),
  presence_penalty: z.number().min(-2).max(2).nullable().optional(),
  frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  service_tier: z.enum(['auto', 'default', 'flex', 'scale', 'priority']).nullable().optional(),
  safety_identifier: z.string().max(64).nullable().optional(),
  prompt_cache_key: z.string().max(1024).nullable().optional(),
  prompt_cache_retention: z.enum(['in_memory', 'in-memory', '24h']).nullable().optional(),
});
export type CreateResponse = z.infer<typeof CreateResponseSchema>;
