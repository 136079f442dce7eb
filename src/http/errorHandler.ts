import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError, InvalidRequestError, NotFoundError, PayloadTooLargeError } from '../errors/index.js';
import { sendJson } from './body.js';

/** The one place an error becomes an OpenAI error body. */
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  const e = err as { type?: string; status?: number; expose?: boolean };
  if (e?.type === 'entity.too.large') return new PayloadTooLargeError('payload_too_large', 'The request body is too large.');
  if (e?.type === 'entity.parse.failed') return new InvalidRequestError('invalid_json', 'The request body is not valid JSON.');
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported') {
    return new InvalidRequestError('invalid_value', 'Unsupported request body encoding.');
  }
  // The router's decodeURIComponent of a malformed %-escape in a path parameter.
  if (err instanceof URIError) return new InvalidRequestError('invalid_value', 'The request path is not validly percent-encoded.');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.expose) {
    return new InvalidRequestError('invalid_value', 'The request could not be read.');
  }
  return undefined;
}

export function errorBody(err: ApiError) {
  return { error: { message: err.message, type: err.type, param: err.param, code: err.code } };
}

/** Node's response API only: also used on the fast path (fastPath.ts), where res is not express's. */
export function sendError(res: Parameters<RequestHandler>[1], err: ApiError): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  if (err.noRetry) res.setHeader('x-should-retry', 'false');
  sendJson(res, errorBody(err), err.status);
}

/** The request's path for logs: express's req.path, or the raw URL's on the fast path. */
const pathOf = (req: Request): string => (req as { path?: string }).path ?? (req.url ?? '').split('?')[0]!;

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const api = toApiError(err);
    if (res.headersSent) {
      logger.warn({ route: pathOf(req), err: (err as Error)?.message }, 'error after response started');
      res.end();
      return;
    }
    if (api) return sendError(res, api);
    logger.error({ err, route: pathOf(req) }, 'unhandled error');
    sendJson(res, { error: { message: 'Internal server error.', type: 'server_error', param: null, code: null } }, 500);
  };
}

export const notFoundRoute: RequestHandler = (req, _res, next) => {
  next(new NotFoundError('not_found', `No route for ${req.method} ${req.path}.`));
};
