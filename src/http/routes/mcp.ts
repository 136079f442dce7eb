import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Broker } from '../../broker/broker.js';
import { McpToolParamSchema, plainToolParam } from '../../broker/toolParam.js';
import { apiCaller, apiOwner } from '../auth.js';
import { MAX_BODY_DEPTH, parseInput } from '../validate.js';
import { exceedsDepth } from '../../util/depth.js';
import { abortOnClose } from '../abort.js';
import { sendJson } from '../body.js';

export const ListToolsBody = z.object({ tool: McpToolParamSchema });
export const CallBody = z.object({
  tool: McpToolParamSchema,
  name: z.string().min(1).max(256),
  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().optional(),
  approval_request_id: z.string().min(1).max(128).nullable().optional(),
});

type ListToolsInput = z.infer<typeof ListToolsBody>;
type CallInput = z.infer<typeof CallBody>;

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const idLike = (v: unknown, max: number) => v === undefined || v === null || (typeof v === 'string' && v.length >= 1 && v.length <= max);

/** The common list_tools body, checked directly (plainToolParam: why); undefined: the schema decides. */
export function plainListToolsBody(b: unknown): ListToolsInput | undefined {
  if (!isRecord(b)) return undefined;
  for (const k in b) if (k !== 'tool') return undefined;
  const tool = plainToolParam(b.tool);
  return tool && { tool };
}

const CALL_KEYS = new Set(['tool', 'name', 'arguments', 'approval_request_id']);

/** The common call body, checked directly (plainToolParam: why); undefined: the schema decides. */
export function plainCallBody(b: unknown): CallInput | undefined {
  if (!isRecord(b)) return undefined;
  for (const k in b) if (!CALL_KEYS.has(k)) return undefined;
  const tool = plainToolParam(b.tool);
  if (!tool || typeof b.name !== 'string' || b.name.length < 1 || b.name.length > 256 || !idLike(b.approval_request_id, 128)) return undefined;
  const args = b.arguments;
  // A record as the schema returns it: its own keys copied (a `__proto__` key would not copy as one).
  if (!(args === undefined || args === null || typeof args === 'string' || (isRecord(args) && !Object.hasOwn(args, '__proto__')))) return undefined;
  if (exceedsDepth(b, MAX_BODY_DEPTH)) return undefined;
  const out: CallInput = { tool, name: b.name };
  if ('arguments' in b) out.arguments = isRecord(args) ? { ...args } : (args as string | null | undefined);
  if ('approval_request_id' in b) out.approval_request_id = b.approval_request_id as string | null | undefined;
  return out;
}

/** POST /v1/mcp/list_tools (node's res API only: it also runs on the fast path). */
export function listToolsHandler(broker: Broker): RequestHandler {
  return async (req, res) => {
    const body = plainListToolsBody(req.body) ?? parseInput(ListToolsBody, req.body);
    const server = await broker.resolve(body.tool, 'tool', apiCaller(req));
    const { item, cache } = await broker.listTools(server, { signal: abortOnClose(req, res) });
    res.setHeader('x-mcp-cache', cache);
    sendJson(res, item);
  };
}

/** POST /v1/mcp/call (node's res API only: it also runs on the fast path). */
export function callHandler(broker: Broker): RequestHandler {
  return async (req, res) => {
    const body = plainCallBody(req.body) ?? parseInput(CallBody, req.body);
    const server = await broker.resolve(body.tool, 'tool', apiCaller(req));
    const result = await broker.call(
      server,
      { name: body.name, arguments: body.arguments ?? undefined, approval_request_id: body.approval_request_id ?? undefined },
      { owner: apiOwner(req), signal: abortOnClose(req, res), capacity: 'throw' },
    );
    sendJson(res, result.item);
  };
}

/** SPEC §3: the gateway's MCP backend. Bodies are the items themselves. */
export function mcpRoutes(broker: Broker): Router {
  const r = Router();
  r.post('/list_tools', listToolsHandler(broker));
  r.post('/call', callHandler(broker));
  return r;
}
