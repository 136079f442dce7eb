import { Router, type RequestHandler } from 'express';
import { z } from 'zod';
import type { Broker } from '../../broker/broker.js';
import { McpToolParamSchema } from '../../broker/toolParam.js';
import { apiCaller, apiOwner } from '../auth.js';
import { parseInput } from '../validate.js';
import { abortOnClose } from '../abort.js';
import { sendJson } from '../body.js';

export const ListToolsBody = z.object({ tool: McpToolParamSchema });
export const CallBody = z.object({
  tool: McpToolParamSchema,
  name: z.string().min(1).max(256),
  arguments: z.union([z.string(), z.record(z.string(), z.unknown())]).nullable().optional(),
  approval_request_id: z.string().min(1).max(128).nullable().optional(),
});

/** POST /v1/mcp/list_tools (node's res API only: it also runs on the fast path). */
export function listToolsHandler(broker: Broker): RequestHandler {
  return async (req, res) => {
    const body = parseInput(ListToolsBody, req.body);
    const server = await broker.resolve(body.tool, 'tool', apiCaller(req));
    const { item, cache } = await broker.listTools(server, { signal: abortOnClose(req, res) });
    res.setHeader('x-mcp-cache', cache);
    sendJson(res, item);
  };
}

/** POST /v1/mcp/call (node's res API only: it also runs on the fast path). */
export function callHandler(broker: Broker): RequestHandler {
  return async (req, res) => {
    const body = parseInput(CallBody, req.body);
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
