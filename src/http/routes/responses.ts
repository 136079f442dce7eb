import { Router, type Request, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { McpToolParamSchema, plainToolParam } from '../../broker/toolParam.js';
import { InvalidRequestError } from '../../errors/index.js';
import { FunctionToolSchema, CreateResponseSchema, type RequestTool } from '../../responses/schema.js';
import type { ResponsesService } from '../../responses/service.js';
import { StreamSink, silentSink, type EventTarget } from '../../responses/sink.js';
import { apiOwner } from '../auth.js';
import { abortOnClose } from '../abort.js';
import { sendJson } from '../body.js';
import { sendError, toApiError } from '../errorHandler.js';
import { parseInput } from '../validate.js';

export const InputItemsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(256).optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

export const RetrieveQuery = z.object({
  stream: z.enum(['true', 'false']).optional(),
  starting_after: z.coerce.number().int().min(-1).optional(),
});

/** `event: <type>\ndata: <json>\n\n` on one connection, keep-alive comments while idle. Writes after a disconnect are dropped. */
export class SseWriter implements EventTarget {
  private lastWrite = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly res: Response,
    keepAliveMs = 15_000,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    this.timer = setInterval(() => {
      if (Date.now() - this.lastWrite >= keepAliveMs) this.write(': keep-alive\n\n');
    }, Math.max(50, Math.floor(keepAliveMs / 2)));
    this.timer.unref();
    res.on('close', () => clearInterval(this.timer));
  }

  send(type: string, json: string) {
    this.write(`event: ${type}\ndata: ${json}\n\n`);
  }

  close() {
    clearInterval(this.timer);
    if (!this.res.writableEnded) this.res.end();
  }

  private write(s: string) {
    if (this.res.writableEnded || this.res.destroyed) return;
    this.lastWrite = Date.now();
    this.res.write(s);
  }
}

/** `tools[]`: each `mcp` or `function` tool validated on its own, naming its index; other types refused. */
function parseTools(raw: readonly unknown[]): RequestTool[] {
  return raw.map((t, index) => {
    const type = (t as { type?: unknown })?.type;
    if (type === 'mcp') return plainToolParam(t) ?? parseInput(McpToolParamSchema, t, `tools[${index}]`);
    if (type === 'function') return parseInput(FunctionToolSchema, t, `tools[${index}]`);
    throw new InvalidRequestError('unsupported_tool_type', `Tool type '${String(type)}' is not supported by this server; use 'mcp' or 'function'.`, {
      param: `tools[${index}].type`,
    });
  });
}

/** POST /v1/responses (node's res API only: it also runs on the fast path). */
export function createResponseHandler(service: ResponsesService, o: { keepAliveMs?: number } = {}): RequestHandler {
  return async (req, res) => {
    const body = parseInput(CreateResponseSchema, req.body);
    const tools = parseTools(body.tools ?? []);
    const signal = abortOnClose(req, res);
    const prepared = await service.prepare(body, tools, apiOwner(req), signal);
    if (body.background) {
      // The run outlives this request: a disconnect no longer stops it (SPEC §6).
      if (body.stream) await service.startBackground(prepared, new SseWriter(res, o.keepAliveMs));
      else sendJson(res, await service.startBackground(prepared));
      return;
    }
    const sink = body.stream ? new StreamSink(new SseWriter(res, o.keepAliveMs)) : silentSink;
    const run = service.run(prepared, sink, signal);
    try {
      const response = await run.run();
      if (!body.stream) sendJson(res, response);
    } catch (err) {
      const api = toApiError(err);
      if (!api || res.headersSent) throw err;
      if (run.sideEffects) res.setHeader('x-should-retry', 'false');
      sendError(res, api);
    } finally {
      sink.close();
    }
  };
}

/** SPEC §6 routes. Responses belong to the key that created them; others get 404. */
export function responsesRoutes(service: ResponsesService, o: { keepAliveMs?: number } = {}): Router {
  const r = Router();
  const owned = (req: Request) => service.owned(String(req.params.id), apiOwner(req));

  r.post('/', createResponseHandler(service, o));

  r.get('/:id', async (req, res) => {
    const q = parseInput(RetrieveQuery, req.query);
    const stored = await owned(req);
    if (q.stream !== 'true') return void res.json(stored.response);
    if (stored.response.background !== true) {
      throw new InvalidRequestError('invalid_value', 'Only responses created with background: true can be streamed again.', { param: 'stream' });
    }
    const target = new SseWriter(res, o.keepAliveMs);
    try {
      await service.background.replay(stored.id, q.starting_after ?? -1, target, abortOnClose(req, res), (s) => s?.owner === stored.owner);
    } finally {
      target.close();
    }
  });

  r.post('/:id/cancel', async (req, res) => {
    res.json(await service.cancel(String(req.params.id), apiOwner(req)));
  });

  r.delete('/:id', async (req, res) => {
    const id = String(req.params.id);
    await service.delete(id, apiOwner(req));
    res.json({ id, object: 'response.deleted', deleted: true });
  });

  r.get('/:id/input_items', async (req, res) => {
    const stored = await owned(req);
    const q = parseInput(InputItemsQuery, req.query);
    let items = q.order === 'desc' ? [...stored.inputItems].reverse() : stored.inputItems;
    if (q.after) {
      const at = items.findIndex((i) => i.id === q.after);
      items = at >= 0 ? items.slice(at + 1) : [];
    }
    const data = items.slice(0, q.limit);
    res.json({
      object: 'list',
      data,
      first_id: (data[0]?.id as string | undefined) ?? null,
      last_id: (data[data.length - 1]?.id as string | undefined) ?? null,
      has_more: items.length > data.length,
    });
  });

  return r;
}
