import { Router, type Request } from 'express';
import { z } from 'zod';
import { NotFoundError } from '../errors/index.js';
import { apiOwner } from '../http/auth.js';
import { abortOnClose } from '../http/abort.js';
import { sendError, toApiError } from '../http/errorHandler.js';
import { parseInput } from '../http/validate.js';
import { CreateResponseSchema } from './schema.js';
import type { ResponsesService } from './service.js';
import { SseSink, silentSink } from './sink.js';

export const InputItemsQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().max(256).optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

/** SPEC §6 routes. Responses belong to the key that created them; others get 404. */
export function responsesRoutes(service: ResponsesService, o: { keepAliveMs?: number } = {}): Router {
  const r = Router();

  const owned = async (req: Request) => {
    const stored = await service.store.get(String(req.params.id));
    if (!stored || stored.owner !== apiOwner(req)) throw new NotFoundError('not_found', `Response with id '${req.params.id}' not found.`);
    return stored;
  };

  r.post('/', async (req, res) => {
    const body = parseInput(CreateResponseSchema, req.body);
    const signal = abortOnClose(req, res);
    const prepared = await service.prepare(body, apiOwner(req), signal);
    const sink = body.stream ? new SseSink(res, o.keepAliveMs) : silentSink;
    const run = service.run(prepared, sink, signal);
    try {
      const response = await run.run();
      if (!body.stream) res.json(response);
    } catch (err) {
      const api = toApiError(err);
      if (!api || res.headersSent) throw err;
      if (run.sideEffects) res.setHeader('x-should-retry', 'false');
      sendError(res, api);
    } finally {
      sink.close();
    }
  });

  r.get('/:id', async (req, res) => {
    res.json((await owned(req)).response);
  });

  r.delete('/:id', async (req, res) => {
    const stored = await owned(req);
    await service.store.delete(stored.id);
    res.json({ id: stored.id, object: 'response.deleted', deleted: true });
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
