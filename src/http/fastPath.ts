import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * The three hot routes — POST /v1/mcp/call, /v1/mcp/list_tools, /v1/responses — run their
 * middleware and handler without express's per-request machinery: no prototype swap of
 * req/res, no finalhandler, no walk of the router stack (every app.use layer's path match,
 * then the mounted router's). Same functions, same order, same error handler as the express
 * mounts in app.ts; a request whose URL is not exactly one of these paths (query string,
 * trailing slash, other case, other method) goes through express unchanged.
 *
 * Measured before writing this (bench "profile" runs, broker CPU per request): express's
 * app.handle + router were 0.33–0.39 ms of a 3.3 ms /v1/mcp/call and of a 1 ms cached
 * list_tools; in-process the same handler chain costs 0.55 ms CPU per request under express
 * against 0.19 ms for a bare node:http answer. The README's benchmark table has the A/B.
 *
 * Handlers here must use node's req/res API only (res.setHeader/end, sendJson, sendError),
 * never express's res.json/res.status: the whole test suite runs these routes on this path.
 */
export type HotRoutes = Record<string, { route: string; chain: RequestHandler[] }>;

export interface FastPathOptions {
  routes: HotRoutes;
  /** The app's error handler (an OpenAI error body for anything a chain passes on). */
  onError: (err: unknown, req: Request, res: Response) => void;
  /** Observes the request once it finished, under the route's metric label. */
  observe: (route: string, req: IncomingMessage, res: ServerResponse, started: number) => void;
}

/** Runs `chain` as express would: next() → the next function, next(err) or a rejection → onError. */
export function runChain(chain: readonly RequestHandler[], req: Request, res: Response, onError: (err: unknown) => void): void {
  let i = 0;
  let failed = false;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    onError(err);
  };
  const next: NextFunction = (err?: unknown) => {
    if (failed) return;
    if (err !== undefined && err !== null && err !== 'route' && err !== 'router') return fail(err);
    const fn = chain[i++];
    // Falling off the end: no handler answered (never the case for the hot chains).
    if (!fn) return fail(Object.assign(new Error('no handler answered'), { status: 500 }));
    try {
      const r = fn(req, res, next) as unknown;
      if (r && typeof (r as Promise<unknown>).then === 'function') (r as Promise<unknown>).then(undefined, fail);
    } catch (e) {
      fail(e);
    }
  };
  next();
}

/** Puts the hot routes in front of `app`: its handle() serves them directly, the rest as before. */
export function installFastPath(app: Express, o: FastPathOptions): void {
  const table = new Map(Object.entries(o.routes));
  const app_ = app as unknown as { handle: (req: IncomingMessage, res: ServerResponse, cb?: unknown) => void };
  const slow = app_.handle;
  app_.handle = function handle(this: unknown, req: IncomingMessage, res: ServerResponse, cb?: unknown) {
    const hot = req.method === 'POST' ? table.get(req.url ?? '') : undefined;
    if (!hot) return slow.call(this, req, res, cb);
    const started = performance.now();
    res.once('finish', () => o.observe(hot.route, req, res, started));
    const rq = req as Request;
    const rs = res as Response;
    runChain(hot.chain, rq, rs, (err) => {
      try {
        o.onError(err, rq, rs);
      } catch {
        lastResort(res);
      }
    });
  };
}

/** The error handler itself threw: as express's finalhandler would, a 500 (or the socket ends), never a hang or a crash. */
function lastResort(res: ServerResponse): void {
  if (res.headersSent) return void res.destroy();
  const body = '{"error":{"message":"Internal server error.","type":"server_error","param":null,"code":null}}';
  res.statusCode = 500;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
