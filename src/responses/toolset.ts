import type { Broker } from '../broker/broker.js';
import type { McpListToolsItem } from '../broker/items.js';
import type { ResolvedServer } from '../broker/resolve.js';
import type { McpToolParam } from '../broker/toolParam.js';
import { ApiError, InvalidRequestError } from '../errors/index.js';
import { effectiveAllowed, materializeApproval } from '../policy/policy.js';
import { sha256Hex } from '../util/ids.js';
import type { FunctionTool, RequestTool, ToolChoice } from './schema.js';
import type { Entry } from './transcript.js';
import type { ModelTool, ModelToolChoice } from './upstream/types.js';

export interface ExposedTool {
  name: string;
  description: string | null;
  input_schema: unknown;
  readOnly: boolean;
}

/** One `mcp` tool of the request, resolved and listed (or reusing a listing in context). */
export interface McpBinding {
  index: number;
  param: McpToolParam;
  server: ResolvedServer;
  tools: ExposedTool[];
  /** A fresh listing to emit, or undefined when one in context was reused. */
  listing: McpListToolsItem | undefined;
}

export type FnTarget = { kind: 'mcp'; binding: McpBinding; tool: string } | { kind: 'function'; tool: FunctionTool };

export interface Toolset {
  bindings: McpBinding[];
  functions: FunctionTool[];
  byFn: Map<string, FnTarget>;
  /** (server_label lower-cased, tool) → the function name the model sees. */
  fnNameOf(server_label: string, tool: string): string;
  modelTools: ModelTool[];
  toolChoice: ModelToolChoice;
  echo: Array<Record<string, unknown>>;
}

const FN_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function qualified(label: string, tool: string): string {
  const raw = `${label}__${tool}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return raw.length <= 64 ? raw : `${raw.slice(0, 55)}_${sha256Hex(raw).slice(0, 8)}`;
}

/** A listing for this label already in context: replayed or from the previous responses. */
function listingInContext(context: readonly Entry[], label: string): McpListToolsItem | undefined {
  for (let i = context.length - 1; i >= 0; i--) {
    const e = context[i]!;
    if (e.type === 'mcp_list_tools' && e.server_label.toLowerCase() === label.toLowerCase() && !e.error) return e;
  }
  return undefined;
}

/**
 * What the model is shown of a listing, derived once per listing object: a catalog tool (stable
 * while its listing is cached) and a listing item in context (stored, not changed) map to the
 * same ExposedTool every time. Policy filtering still runs per request (layers differ per caller).
 */
const exposedOfTool = new WeakMap<object, ExposedTool>();
const exposedOfItem = new WeakMap<McpListToolsItem, ExposedTool[]>();

function exposedFromCatalog(t: { tool: { name: string; description?: string; inputSchema: unknown }; readOnly: boolean }): ExposedTool {
  let e = exposedOfTool.get(t.tool);
  if (!e || e.readOnly !== t.readOnly) {
    e = { name: t.tool.name, description: t.tool.description ?? null, input_schema: t.tool.inputSchema, readOnly: t.readOnly };
    exposedOfTool.set(t.tool, e);
  }
  return e;
}

function exposedFromItem(item: McpListToolsItem): ExposedTool[] {
  let e = exposedOfItem.get(item);
  if (!e) {
    e = item.tools.map((t) => ({ name: t.name, description: t.description ?? null, input_schema: t.input_schema, readOnly: t.annotations?.read_only === true }));
    exposedOfItem.set(item, e);
  }
  return e;
}

/** The request's tools, already validated by the HTTP layer, become what the model sees. */
export async function buildToolset(
  rawTools: readonly RequestTool[],
  toolChoice: ToolChoice | undefined,
  context: readonly Entry[],
  o: { broker: Broker; maxMcpTools: number; signal: AbortSignal },
): Promise<Toolset> {
  const mcpParams: Array<{ index: number; param: McpToolParam }> = [];
  const functions: FunctionTool[] = [];
  const labels = new Set<string>();
  const echoFunction = new Map<number, FunctionTool>();
  rawTools.forEach((raw, index) => {
    if (raw.type === 'mcp') {
      const param = raw;
      if (labels.has(param.server_label.toLowerCase())) {
        throw new InvalidRequestError('invalid_value', `Duplicate server_label '${param.server_label}' in tools.`, { param: `tools[${index}].server_label` });
      }
      labels.add(param.server_label.toLowerCase());
      mcpParams.push({ index, param });
    } else {
      functions.push(raw);
      echoFunction.set(index, raw);
    }
  });
  if (mcpParams.length > o.maxMcpTools) {
    throw new InvalidRequestError('invalid_value', `At most ${o.maxMcpTools} mcp tools per request.`, { param: 'tools' });
  }

  const servers = await Promise.all(
    mcpParams.map(async ({ index, param }) => {
      try {
        return await o.broker.resolve(param, `tools[${index}]`);
      } catch (e) {
        // In the Responses API an unknown label is a bad request naming the field (SPEC §8).
        if (e instanceof ApiError && e.code === 'unknown_server_label') {
          throw new InvalidRequestError('unknown_server_label', e.message, { param: `tools[${index}].server_label` });
        }
        throw e;
      }
    }),
  );

  // One listing failure fails the whole request (424) before anything is output.
  const bindings = await Promise.all(
    mcpParams.map(async ({ index, param }, i): Promise<McpBinding> => {
      const server = servers[i]!;
      const inContext = listingInContext(context, param.server_label);
      if (inContext) {
        const tools = exposedFromItem(inContext).filter((t) => effectiveAllowed({ name: t.name, readOnly: t.readOnly }, server.layers));
        return { index, param, server, tools, listing: undefined };
      }
      const listed = await o.broker.listTools(server, { signal: o.signal, capacity: 'item' });
      const tools = listed.tools.map(exposedFromCatalog);
      return { index, param, server, tools, listing: listed.item };
    }),
  );

  // Function names: a bare tool name when it is valid and unique, else `<label>__<tool>`.
  const byFn = new Map<string, FnTarget>();
  for (const f of functions) byFn.set(f.name, { kind: 'function', tool: f });
  const counts = new Map<string, number>();
  for (const b of bindings) for (const t of b.tools) counts.set(t.name, (counts.get(t.name) ?? 0) + 1);
  const names = new Map<string, string>();
  for (const b of bindings) {
    for (const t of b.tools) {
      let fn = FN_NAME.test(t.name) && counts.get(t.name) === 1 && !byFn.has(t.name) ? t.name : qualified(b.server.server_label, t.name);
      for (let n = 2; byFn.has(fn); n++) fn = `${qualified(b.server.server_label, t.name).slice(0, 60)}_${n}`;
      byFn.set(fn, { kind: 'mcp', binding: b, tool: t.name });
      names.set(`${b.server.server_label.toLowerCase()}\u0000${t.name}`, fn);
    }
  }
  const fnNameOf = (label: string, tool: string) => names.get(`${label.toLowerCase()}\u0000${tool}`) ?? qualified(label, tool);

  let exposed = [...byFn.entries()];
  let choice: ModelToolChoice = 'auto';
  if (toolChoice === 'none' || toolChoice === 'required' || toolChoice === 'auto') choice = toolChoice;
  else if (toolChoice?.type === 'function') {
    if (!functions.some((f) => f.name === toolChoice.name)) {
      throw new InvalidRequestError('invalid_value', `tool_choice names function '${toolChoice.name}', which is not in tools.`, { param: 'tool_choice' });
    }
    choice = { name: toolChoice.name };
  } else if (toolChoice?.type === 'mcp') {
    const b = bindings.find((x) => x.server.server_label.toLowerCase() === toolChoice.server_label.toLowerCase());
    if (!b) throw new InvalidRequestError('invalid_value', `tool_choice names server_label '${toolChoice.server_label}', which is not in tools.`, { param: 'tool_choice' });
    if (toolChoice.name) {
      if (!b.tools.some((t) => t.name === toolChoice.name)) {
        throw new InvalidRequestError('invalid_value', `tool_choice names tool '${toolChoice.name}', which '${toolChoice.server_label}' does not offer.`, { param: 'tool_choice' });
      }
      choice = { name: fnNameOf(b.server.server_label, toolChoice.name) };
    } else {
      exposed = exposed.filter(([, t]) => t.kind === 'mcp' && t.binding === b);
      choice = 'required';
    }
  }

  const modelTools: ModelTool[] = exposed.map(([name, t]) => {
    if (t.kind === 'function') return { name, description: t.tool.description ?? '', parameters: t.tool.parameters ?? { type: 'object', properties: {} }, strict: t.tool.strict };
    const tool = t.binding.tools.find((x) => x.name === t.tool)!;
    const schema = (tool.input_schema && typeof tool.input_schema === 'object' ? tool.input_schema : { type: 'object', properties: {} }) as Record<string, unknown>;
    return { name, description: tool.description ?? '', parameters: schema };
  });

  const echo = rawTools.map((_, index) => {
    const b = bindings.find((x) => x.index === index);
    if (b) return echoMcp(b);
    const f = echoFunction.get(index)!;
    return { type: 'function', name: f.name, description: f.description ?? null, parameters: f.parameters ?? null, strict: f.strict ?? null };
  });

  return { bindings, functions, byFn, fnNameOf, modelTools, toolChoice: choice, echo };
}

/** wire doc §1: every optional field explicit, URL cut to its origin, credentials never echoed. */
function echoMcp(b: McpBinding): Record<string, unknown> {
  const p = b.param;
  const policyTools = b.tools.map((t) => ({ name: t.name, readOnly: t.readOnly }));
  return {
    type: 'mcp',
    server_label: p.server_label,
    server_url: p.server_url !== undefined ? b.server.origin : null,
    server_description: p.server_description ?? null,
    allowed_tools: p.allowed_tools ?? null,
    require_approval: materializeApproval(policyTools, b.server.layers),
    headers: null,
    authorization: p.authorization ? '<redacted>' : null,
    connector_id: null,
  };
}
