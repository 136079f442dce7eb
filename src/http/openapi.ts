import { z } from 'zod';
import { ApprovalRecordSchema } from '../approvals/record.js';
import { McpApprovalRequestItemSchema, McpCallItemSchema, McpListToolsItemSchema } from '../broker/items.js';
import { McpToolParamSchema } from '../broker/toolParam.js';
import { ServerLabelSchema, ServerRecordSchema } from '../config/serverRecord.js';
import { CreateResponseSchema, ToolChoiceSchema } from '../responses/schema.js';
import { KeyBodySchema, KeyNameSchema, KeyViewSchema, KeyWithSecretSchema, RotateBodySchema } from '../keys/schema.js';
import { DecisionBody, ListQuery, WaitQuery } from './routes/approvals.js';
import { CallBody, ListToolsBody } from './routes/mcp.js';
import { InputItemsQuery, RetrieveQuery } from './routes/responses.js';

/**
 * GET /openapi.json (SPEC §14): OpenAPI 3.1 generated from the zod schemas that validate
 * requests (zod 4's JSON Schema output), plus the schemas of what each route answers. The
 * route table below is the one list of operations; add a route here when you add one.
 */

// ---- Response shapes (requests are validated by the routes' own schemas, imported above).

/** The one error body (errorHandler.ts `errorBody`): every 4xx/5xx of every route. */
export const ErrorBodySchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

/** OAuthManager's OAuthStatus (SPEC §12). */
const OAuthStatusSchema = z.object({
  state: z.enum(['connected', 'needs_authorization', 'error']),
  expires_at: z.number().int().nullable(),
  scope: z.string().nullable(),
  error: z.string().optional(),
});
/** catalog.ts ServerStatus, plus the breaker and, for a record with upstream OAuth, `oauth`. */
const ServerStatusSchema = z.object({
  tools_cached: z.boolean(),
  cached_at: z.number().int().nullable(),
  last_error: z.string().nullable(),
  transport_in_use: z.string().nullable(),
  protocol_in_use: z.string().nullable(),
  changed_tools: z.array(z.string()),
  unsupported_tools: z.array(z.object({ name: z.string(), reason: z.string() })),
  /** limits.ts BreakerState of the record's server URL. */
  breaker: z.enum(['closed', 'open', 'half_open']),
  oauth: OAuthStatusSchema.optional(),
});
/** A record as the admin API shows it: header values and secrets are "<redacted>". */
const ServerViewSchema = ServerRecordSchema;
// From the shape: a refined object schema cannot be extended.
const ServerDetailSchema = z.strictObject({ ...ServerRecordSchema.shape, status: ServerStatusSchema });
const ServerListSchema = z.object({ object: z.literal('list'), data: z.array(ServerViewSchema) });
const ServerDeletedSchema = z.object({ server_label: z.string(), deleted: z.literal(true) });

const ApprovalViewSchema = ApprovalRecordSchema.pick({
  id: true, status: true, server_label: true, name: true, arguments: true, arguments_sha256: true,
  created_at: true, expires_at: true, decided_at: true, reason: true,
});
const ApprovalListSchema = z.object({
  object: z.literal('list'),
  data: z.array(ApprovalViewSchema),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});

const KeyListSchema = z.object({ object: z.literal('list'), data: z.array(KeyViewSchema) });
const KeyDeletedSchema = z.object({ name: z.string(), deleted: z.literal(true) });

const OAuthAuthorizeSchema = z.object({ authorization_url: z.string() });
/** GET /oauth/callback's query, as the authorization server sends it (the route reads each as one string). */
const OAuthCallbackQuery = z.object({
  state: z.string().max(4096),
  code: z.string().max(4096).optional(),
  iss: z.string().max(4096).optional(),
  error: z.string().max(4096).optional(),
});
const ClientMetadataSchema = z.looseObject({ client_id: z.string().optional(), client_name: z.string(), redirect_uris: z.array(z.string()) });

/** The console's admin helper: a server's whole listing with each tool's pin state. */
const ConsoleToolListSchema = z.object({
  object: z.literal('list'),
  server_label: z.string(),
  data: z.array(
    z.object({
      name: z.string(),
      title: z.string().nullable(),
      description: z.string().nullable(),
      read_only: z.boolean(),
      allowed: z.boolean().nullable(),
      changed: z.boolean(),
      sha256: z.string(),
      pinned_sha256: z.string().nullable(),
      input_schema: z.unknown(),
      annotations: z.record(z.string(), z.unknown()).nullable(),
      unsupported: z.unknown(),
    }),
  ),
});

const UsageSchema = z.object({
  input_tokens: z.number().int(),
  input_tokens_details: z.object({ cached_tokens: z.number().int() }),
  output_tokens: z.number().int(),
  output_tokens_details: z.object({ reasoning_tokens: z.number().int() }),
  total_tokens: z.number().int(),
});
/** Output items other than the MCP ones, described loosely (OpenAI's own shapes). */
const OtherOutputItemSchema = z.looseObject({ type: z.enum(['message', 'function_call', 'reasoning']), id: z.string() });
const OutputItemSchema = z.union([McpListToolsItemSchema, McpCallItemSchema, McpApprovalRequestItemSchema, OtherOutputItemSchema]);
const nullableString = z.string().nullable();
/** responseObject.ts: every field, always (wire doc §4). */
const ResponseObjectSchema = z.object({
  id: z.string(),
  object: z.literal('response'),
  created_at: z.number().int(),
  completed_at: z.number().int().nullable(),
  status: z.enum(['queued', 'in_progress', 'completed', 'failed', 'incomplete', 'cancelled']),
  background: z.boolean(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
  incomplete_details: z.object({ reason: z.string() }).nullable(),
  instructions: z.string().nullable(),
  max_output_tokens: z.number().int().nullable(),
  max_tool_calls: z.number().int().nullable(),
  model: z.string(),
  output: z.array(OutputItemSchema),
  parallel_tool_calls: z.boolean(),
  previous_response_id: z.string().nullable(),
  reasoning: z.object({ effort: nullableString, summary: nullableString }),
  store: z.boolean(),
  temperature: z.number(),
  top_p: z.number(),
  presence_penalty: z.number(),
  frequency_penalty: z.number(),
  top_logprobs: z.number().int(),
  text: z.looseObject({ format: z.looseObject({ type: z.enum(['text', 'json_object', 'json_schema']) }) }),
  tool_choice: ToolChoiceSchema,
  tools: z.array(z.looseObject({ type: z.string() })),
  truncation: z.enum(['auto', 'disabled']),
  usage: UsageSchema.nullable(),
  user: nullableString,
  metadata: z.record(z.string(), z.string()),
  service_tier: z.string(),
  safety_identifier: nullableString,
  prompt_cache_key: nullableString,
  prompt_cache_retention: nullableString,
});
const ResponseDeletedSchema = z.object({ id: z.string(), object: z.literal('response.deleted'), deleted: z.literal(true) });
const InputItemListSchema = z.object({
  object: z.literal('list'),
  data: z.array(z.looseObject({ id: z.string(), type: z.string().optional() })),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});
const HealthSchema = z.object({ status: z.literal('ok') });
const ReadySchema = z.object({ status: z.literal('ready') });

/** Named components: the name each shape has in `#/components/schemas`. */
const COMPONENTS: Array<[z.ZodType, string]> = [
  [ErrorBodySchema, 'Error'],
  [ServerRecordSchema, 'ServerRecord'],
  [ServerStatusSchema, 'ServerStatus'],
  [ServerDetailSchema, 'ServerDetail'],
  [ServerListSchema, 'ServerList'],
  [ServerDeletedSchema, 'ServerDeleted'],
  [McpToolParamSchema, 'McpTool'],
  [ListToolsBody, 'ListToolsRequest'],
  [CallBody, 'CallRequest'],
  [McpListToolsItemSchema, 'McpListToolsItem'],
  [McpCallItemSchema, 'McpCallItem'],
  [McpApprovalRequestItemSchema, 'McpApprovalRequestItem'],
  [DecisionBody, 'ApprovalDecision'],
  [ApprovalViewSchema, 'Approval'],
  [ApprovalListSchema, 'ApprovalList'],
  [CreateResponseSchema, 'CreateResponse'],
  [ResponseObjectSchema, 'Response'],
  [UsageSchema, 'Usage'],
  [ResponseDeletedSchema, 'ResponseDeleted'],
  [InputItemListSchema, 'InputItemList'],
  [HealthSchema, 'Health'],
  [KeyBodySchema, 'KeyRequest'],
  [KeyViewSchema, 'Key'],
  [KeyWithSecretSchema, 'KeyWithSecret'],
  [KeyListSchema, 'KeyList'],
  [KeyDeletedSchema, 'KeyDeleted'],
  [RotateBodySchema, 'KeyRotateRequest'],
  [OAuthStatusSchema, 'OAuthStatus'],
  [OAuthAuthorizeSchema, 'OAuthAuthorization'],
  [ClientMetadataSchema, 'OAuthClientMetadata'],
  [ConsoleToolListSchema, 'ConsoleToolList'],
  [ReadySchema, 'Ready'],
];

// ---- The route table.

type Auth = 'none' | 'admin' | 'api' | 'approver' | 'api_or_approver';

interface Reply {
  description: string;
  /** JSON body; or a media type with a plain string body. */
  schema?: z.ZodType;
  text?: string;
  headers?: Record<string, string>;
  /** Alternative JSON bodies (e.g. an mcp_call or an mcp_approval_request). */
  oneOf?: z.ZodType[];
}

export interface Operation {
  method: 'get' | 'post' | 'put' | 'delete';
  /** OpenAPI path template. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  auth: Auth;
  pathParams?: Record<string, z.ZodType>;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be left out (rotate). */
  bodyOptional?: boolean;
  ok: Record<number, Reply>;
  /** Error statuses, each answered with the shared error body. */
  errors: number[];
}

const label = { label: ServerLabelSchema };
const approvalId = { id: z.string().max(256) };
const responseId = { id: z.string().max(256) };
const bodyErrors = [400, 413];
/**
 * What any authenticated route may answer besides its own errors: 401; 503 store_unavailable
 * when a shared store (BROKER_STORE=redis) is down (SPEC §9); and on API routes 429, the
 * key's rate_limit_per_min, which counts every `/v1/*` request (SPEC §11).
 */
function implicitErrors(auth: Operation['auth']): number[] {
  if (auth === 'none') return [];
  return auth === 'api' || auth === 'api_or_approver' ? [401, 429, 503] : [401, 503];
}
const upstreamErrors = [424, 429, 503];

export const OPERATIONS: Operation[] = [
  // Operations
  { method: 'get', path: '/healthz', operationId: 'healthz', summary: 'Liveness', tag: 'operations', auth: 'none', ok: { 200: { description: 'Alive', schema: HealthSchema } }, errors: [] },
  { method: 'get', path: '/readyz', operationId: 'readyz', summary: 'Readiness: configuration loaded, not draining, store healthy', tag: 'operations', auth: 'none', ok: { 200: { description: 'Ready', schema: ReadySchema } }, errors: [503] },
  { method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics', tag: 'operations', auth: 'none', ok: { 200: { description: 'Prometheus text exposition format', text: 'text/plain' } }, errors: [] },
  { method: 'get', path: '/openapi.json', operationId: 'openapi', summary: 'This document', tag: 'operations', auth: 'none', ok: { 200: { description: 'OpenAPI 3.1 document', schema: z.record(z.string(), z.unknown()) } }, errors: [] },

  // Admin: registry
  { method: 'get', path: '/admin/servers', operationId: 'listServers', summary: 'List registered MCP servers', tag: 'admin', auth: 'admin', ok: { 200: { description: 'Records (secrets redacted)', schema: ServerListSchema } }, errors: [401] },
  { method: 'post', path: '/admin/servers', operationId: 'createServer', summary: 'Register an MCP server', tag: 'admin', auth: 'admin', body: ServerRecordSchema, ok: { 201: { description: 'Created', schema: ServerRecordSchema } }, errors: [...bodyErrors, 401, 409] },
  { method: 'get', path: '/admin/servers/{label}', operationId: 'getServer', summary: 'A record and its status', tag: 'admin', auth: 'admin', pathParams: label, ok: { 200: { description: 'Record and status', schema: ServerDetailSchema } }, errors: [401, 404] },
  { method: 'put', path: '/admin/servers/{label}', operationId: 'replaceServer', summary: 'Replace a record (server_label may be omitted from the body)', tag: 'admin', auth: 'admin', pathParams: label, body: z.strictObject({ ...ServerRecordSchema.shape, server_label: ServerLabelSchema.optional() }), ok: { 200: { description: 'Replaced', schema: ServerRecordSchema } }, errors: [...bodyErrors, 401, 404] },
  { method: 'delete', path: '/admin/servers/{label}', operationId: 'deleteServer', summary: 'Delete a record', tag: 'admin', auth: 'admin', pathParams: label, ok: { 200: { description: 'Deleted', schema: ServerDeletedSchema } }, errors: [401, 404] },
  { method: 'post', path: '/admin/servers/{label}/refresh', operationId: 'refreshServer', summary: 'Fetch the tools again; the current definitions become the pins', tag: 'admin', auth: 'admin', pathParams: label, ok: { 200: { description: 'Fresh listing', schema: McpListToolsItemSchema } }, errors: [401, 404, ...upstreamErrors] },

  { method: 'post', path: '/admin/servers/{label}/oauth/authorize', operationId: 'authorizeServer', summary: 'Start the OAuth authorization-code flow: the URL an admin opens', tag: 'oauth', auth: 'admin', pathParams: label, ok: { 200: { description: 'Authorization URL (PKCE S256, single-use state)', schema: OAuthAuthorizeSchema } }, errors: [400, 401, 404, 424] },
  { method: 'get', path: '/oauth/callback', operationId: 'oauthCallback', summary: 'OAuth redirect target: redeems the code (the single-use state is the credential)', tag: 'oauth', auth: 'none', query: OAuthCallbackQuery, ok: { 200: { description: 'HTML page saying "connected"', text: 'text/html' } }, errors: [400, 424] },
  { method: 'get', path: '/oauth/client-metadata.json', operationId: 'oauthClientMetadata', summary: 'The broker\'s OAuth client ID metadata document (needs an https BROKER_PUBLIC_URL)', tag: 'oauth', auth: 'none', ok: { 200: { description: 'Client metadata', schema: ClientMetadataSchema } }, errors: [400] },

  // Admin: named API keys
  { method: 'get', path: '/admin/keys', operationId: 'listKeys', summary: 'List named API keys (never the key or its hash)', tag: 'keys', auth: 'admin', ok: { 200: { description: 'Keys', schema: KeyListSchema } }, errors: [401] },
  { method: 'post', path: '/admin/keys', operationId: 'createKey', summary: 'Create a named key; the key is shown once', tag: 'keys', auth: 'admin', body: KeyBodySchema, ok: { 201: { description: 'Created, with the key', schema: KeyWithSecretSchema } }, errors: [...bodyErrors, 401, 409] },
  { method: 'get', path: '/admin/keys/{name}', operationId: 'getKey', summary: 'A named key', tag: 'keys', auth: 'admin', pathParams: { name: KeyNameSchema }, ok: { 200: { description: 'The key\'s settings', schema: KeyViewSchema } }, errors: [401, 404] },
  { method: 'put', path: '/admin/keys/{name}', operationId: 'replaceKey', summary: 'Replace a key\'s settings (name may be omitted from the body)', tag: 'keys', auth: 'admin', pathParams: { name: KeyNameSchema }, body: z.strictObject({ ...KeyBodySchema.shape, name: KeyNameSchema.optional() }), ok: { 200: { description: 'Replaced', schema: KeyViewSchema } }, errors: [...bodyErrors, 401, 404] },
  { method: 'delete', path: '/admin/keys/{name}', operationId: 'deleteKey', summary: 'Delete a key (it stops working at once)', tag: 'keys', auth: 'admin', pathParams: { name: KeyNameSchema }, ok: { 200: { description: 'Deleted', schema: KeyDeletedSchema } }, errors: [401, 404] },
  { method: 'post', path: '/admin/keys/{name}/rotate', operationId: 'rotateKey', summary: 'A new key; the old one keeps working for grace_s seconds (body optional)', tag: 'keys', auth: 'admin', pathParams: { name: KeyNameSchema }, body: RotateBodySchema, bodyOptional: true, ok: { 200: { description: 'Rotated, with the new key', schema: KeyWithSecretSchema } }, errors: [...bodyErrors, 401, 404] },

  // Console
  { method: 'get', path: '/console', operationId: 'console', summary: 'The admin console (a static page; it calls the admin API with a token the user enters)', tag: 'console', auth: 'none', ok: { 200: { description: 'HTML page', text: 'text/html' } }, errors: [] },
  { method: 'get', path: '/console/{path}', operationId: 'consoleAsset', summary: 'The console\'s static assets', tag: 'console', auth: 'none', pathParams: { path: z.string() }, ok: { 200: { description: 'Script, style sheet or image', text: '*/*' } }, errors: [404] },
  { method: 'get', path: '/admin/servers/{label}/tools', operationId: 'consoleServerTools', summary: 'A server\'s whole listing with each tool\'s pin state (console helper)', tag: 'console', auth: 'admin', pathParams: label, ok: { 200: { description: 'Tools', schema: ConsoleToolListSchema } }, errors: [401, 404, ...upstreamErrors] },

  // Broker API
  { method: 'post', path: '/v1/mcp/list_tools', operationId: 'mcpListTools', summary: 'List a server\'s tools as an mcp_list_tools item', tag: 'broker', auth: 'api', body: ListToolsBody, ok: { 200: { description: 'The listing (x-mcp-cache: hit or miss)', schema: McpListToolsItemSchema, headers: { 'x-mcp-cache': 'hit or miss' } } }, errors: [...bodyErrors, 401, 403, 404, ...upstreamErrors] },
  { method: 'post', path: '/v1/mcp/call', operationId: 'mcpCall', summary: 'Call a tool: an mcp_call item, or an mcp_approval_request item when approval is required', tag: 'broker', auth: 'api', body: CallBody, ok: { 200: { description: 'The call\'s item, or an approval request', oneOf: [McpCallItemSchema, McpApprovalRequestItemSchema] } }, errors: [...bodyErrors, 401, 403, 404, 409, 410, ...upstreamErrors] },

  // Approvals
  { method: 'get', path: '/v1/mcp/approvals', operationId: 'listApprovals', summary: 'List approval requests (approver token)', tag: 'approvals', auth: 'approver', query: ListQuery, ok: { 200: { description: 'Approval requests', schema: ApprovalListSchema } }, errors: [400, 401] },
  { method: 'get', path: '/v1/mcp/approvals/{id}', operationId: 'getApproval', summary: 'An approval request; wait_ms long-polls until it is decided', tag: 'approvals', auth: 'api_or_approver', pathParams: approvalId, query: WaitQuery, ok: { 200: { description: 'The approval request', schema: ApprovalViewSchema } }, errors: [400, 401, 404] },
  { method: 'post', path: '/v1/mcp/approvals/{id}/decision', operationId: 'decideApproval', summary: 'Approve or deny (a caller may only deny a webhook-mode request)', tag: 'approvals', auth: 'api_or_approver', pathParams: approvalId, body: DecisionBody, ok: { 200: { description: 'The decided request', schema: ApprovalViewSchema } }, errors: [...bodyErrors, 401, 403, 404, 409, 410] },

  // Responses
  { method: 'post', path: '/v1/responses', operationId: 'createResponse', summary: 'Create a response (OpenAI Responses API, MCP tools run by the broker)', tag: 'responses', auth: 'api', body: CreateResponseSchema, ok: { 200: { description: 'The response; with stream: true, server-sent events', schema: ResponseObjectSchema, text: 'text/event-stream' } }, errors: [...bodyErrors, 401, 403, 404, 409, 410, 424, 429, 502, 503, 504] },
  { method: 'get', path: '/v1/responses/{id}', operationId: 'getResponse', summary: 'A stored response; stream=true replays a background response\'s events after starting_after', tag: 'responses', auth: 'api', pathParams: responseId, query: RetrieveQuery, ok: { 200: { description: 'The response, or server-sent events', schema: ResponseObjectSchema, text: 'text/event-stream' } }, errors: [400, 401, 404] },
  { method: 'post', path: '/v1/responses/{id}/cancel', operationId: 'cancelResponse', summary: 'Cancel a background response', tag: 'responses', auth: 'api', pathParams: responseId, ok: { 200: { description: 'The response, cancelled (or already finished)', schema: ResponseObjectSchema } }, errors: [400, 401, 404] },
  { method: 'delete', path: '/v1/responses/{id}', operationId: 'deleteResponse', summary: 'Delete a stored response', tag: 'responses', auth: 'api', pathParams: responseId, ok: { 200: { description: 'Deleted', schema: ResponseDeletedSchema } }, errors: [401, 404] },
  { method: 'get', path: '/v1/responses/{id}/input_items', operationId: 'listInputItems', summary: 'A stored response\'s input items', tag: 'responses', auth: 'api', pathParams: responseId, query: InputItemsQuery, ok: { 200: { description: 'Input items', schema: InputItemListSchema } }, errors: [400, 401, 404] },
];

// ---- Generation.

type Json = Record<string, unknown>;

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request', 401: 'Missing or invalid credentials', 403: 'Not permitted', 404: 'Not found',
  409: 'Conflict', 410: 'Expired', 413: 'Request body too large', 424: 'The MCP server failed',
  429: 'Rate limited (Retry-After)', 500: 'Internal error', 502: 'The model upstream failed',
  503: 'Unavailable (Retry-After where known)', 504: 'The model upstream timed out',
};

const strip = (s: Json): Json => {
  const { $schema: _s, $id: _i, ...rest } = s;
  return rest;
};

function schemasFor(io: 'input' | 'output', named: Map<z.ZodType, string>, rename: (id: string) => string): Record<string, Json> {
  const reg = z.registry<{ id: string }>();
  for (const [schema, id] of named) reg.add(schema, { id });
  const out = z.toJSONSchema(reg, { io, unrepresentable: 'any', uri: (id) => `#/components/schemas/${rename(id)}` });
  return Object.fromEntries(Object.entries(out.schemas).map(([id, s]) => [id, strip(s as Json)]));
}

const single = (schema: z.ZodType, io: 'input' | 'output') => strip(z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json);

const SECURITY: Record<Auth, Array<Record<string, string[]>>> = {
  none: [],
  admin: [{ adminToken: [] }],
  api: [{ apiKey: [] }],
  approver: [{ approverToken: [] }],
  api_or_approver: [{ apiKey: [] }, { approverToken: [] }],
};

/** Builds the document. Pure: the same table gives the same document. */
export function buildOpenApi(ops: readonly Operation[] = OPERATIONS, version = '0.1.0'): Json {
  // Every schema an operation uses gets a component name: the table's, or one from the operation.
  const named = new Map<z.ZodType, string>(COMPONENTS);
  const nameOf = (schema: z.ZodType, fallback: string) => {
    if (!named.has(schema)) named.set(schema, fallback);
    return named.get(schema)!;
  };
  for (const op of ops) {
    if (op.body) nameOf(op.body, `${cap(op.operationId)}Request`);
    for (const [status, r] of Object.entries(op.ok)) {
      if (r.schema) nameOf(r.schema, `${cap(op.operationId)}Response${status === '200' ? '' : status}`);
      r.oneOf?.forEach((s, i) => nameOf(s, `${cap(op.operationId)}Response${i}`));
    }
  }
  // A shape whose request (input) form differs from its answer (output) form (defaults,
  // transforms, unknown keys) and that is also answered appears twice: `X` as answered,
  // `XInput` as accepted. Request-only shapes keep their plain name.
  const outputs = schemasFor('output', named, (id) => id);
  const answerRefs = ops.flatMap((op) => Object.values(op.ok).flatMap((r) => [r.schema, ...(r.oneOf ?? [])]).filter((x): x is z.ZodType => !!x).map((x) => ({ $ref: `#/components/schemas/${named.get(x)}` })));
  const answered = new Set(Object.keys(reachable(outputs, answerRefs)));
  const inputsFirst = schemasFor('input', named, (id) => id);
  const inputName = (id: string) => (answered.has(id) && JSON.stringify(inputsFirst[id]) !== JSON.stringify(outputs[id]) ? `${id}Input` : id);
  const inputs = schemasFor('input', named, inputName);
  const ref = (schema: z.ZodType, io: 'input' | 'output') => {
    const id = named.get(schema)!;
    return { $ref: `#/components/schemas/${io === 'input' ? inputName(id) : id}` };
  };
  const all: Record<string, Json> = {};
  for (const id of answered) all[id] = outputs[id]!;
  for (const [id, schema] of Object.entries(inputs)) if (!all[inputName(id)]) all[inputName(id)] = schema;

  const paths: Record<string, Record<string, Json>> = {};
  for (const op of ops) {
    const parameters: Json[] = [];
    for (const [name, s] of Object.entries(op.pathParams ?? {})) parameters.push({ name, in: 'path', required: true, schema: single(s, 'input') });
    for (const [name, s] of Object.entries(op.query?.shape ?? {})) {
      const schema = single(s as z.ZodType, 'input');
      parameters.push({ name, in: 'query', required: !(s as z.ZodType).safeParse(undefined).success, schema });
    }
    const responses: Record<string, Json> = {};
    for (const [status, r] of Object.entries(op.ok)) {
      const content: Record<string, Json> = {};
      if (r.schema) content['application/json'] = { schema: ref(r.schema, 'output') };
      if (r.oneOf) content['application/json'] = { schema: { oneOf: r.oneOf.map((s) => ref(s, 'output')) } };
      if (r.text) content[r.text] = { schema: { type: 'string' } };
      const headers = r.headers && Object.fromEntries(Object.entries(r.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }]));
      responses[status] = { description: r.description, content, ...(headers ? { headers } : {}) };
    }
    for (const status of [...new Set([...op.errors, ...implicitErrors(op.auth), 500])].sort()) {
      const headers = status === 429 || status === 503 ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'string' } } } } : {};
      responses[String(status)] = { description: ERROR_TEXT[status] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } }, ...headers };
    }
    (paths[op.path] ??= {})[op.method] = {
      operationId: op.operationId,
      summary: op.summary,
      tags: [op.tag],
      security: SECURITY[op.auth],
      ...(parameters.length ? { parameters } : {}),
      ...(op.body ? { requestBody: { required: !op.bodyOptional, content: { 'application/json': { schema: ref(op.body, 'input') } } } } : {}),
      responses,
    };
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'mcp-broker',
      version,
      description:
        'Server-side remote MCP for an OpenAI-compatible gateway. Errors are OpenAI-shaped: {"error": {message, type, param, code}}. ' +
        'Any request may carry a W3C `traceparent` header: with tracing on (OTEL_EXPORTER_OTLP_ENDPOINT) its trace is continued to the MCP servers and the model upstream.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: [...new Set(ops.map((o) => o.tag))].map((name) => ({ name })),
    paths,
    components: {
      schemas: reachable(all, paths),
      securitySchemes: {
        adminToken: { type: 'http', scheme: 'bearer', description: 'BROKER_ADMIN_TOKEN' },
        apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (BROKER_API_KEYS or a named key)' },
        approverToken: { type: 'http', scheme: 'bearer', description: 'BROKER_APPROVER_TOKEN' },
      },
    },
  };
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Components reachable from the paths (following $refs between components). */
function reachable(all: Record<string, Json>, paths: unknown): Record<string, Json> {
  const keep = new Set<string>();
  const visit = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(visit);
    if (!v || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/')) {
        const id = x.slice('#/components/schemas/'.length);
        if (!keep.has(id) && all[id]) {
          keep.add(id);
          visit(all[id]);
        }
      } else visit(x);
    }
  };
  visit(paths);
  return Object.fromEntries(Object.keys(all).sort().filter((id) => keep.has(id)).map((id) => [id, all[id]!]));
}

let cached: string | undefined;
/** The document as JSON text, built once. */
export function openApiJson(): string {
  cached ??= JSON.stringify(buildOpenApi());
  return cached;
}
