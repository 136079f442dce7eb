import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type Express, type Request, type RequestHandler, type Router } from 'express';
import type { Logger } from 'pino';
import type { ApprovalService } from '../approvals/service.js';
import type { Broker } from '../broker/broker.js';
import { UpstreamError } from '../errors/index.js';
import type { Metrics } from '../obs/metrics.js';
import { serverSpans } from '../obs/tracing.js';
import { approvalVisibility, authenticate, bindCaller, limitRate, type Credentials } from './auth.js';
import type { RateLimiter } from '../keys/rateLimit.js';
import type { KeyStore } from '../keys/store.js';
import { jsonBody } from './body.js';
import { errorHandler, notFoundRoute, sendError } from './errorHandler.js';
import { adminRoutes } from './routes/admin.js';
import { approvalRoutes } from './routes/approvals.js';
import { consoleAdminRoutes, consoleRoutes } from './routes/console.js';
import { keyRoutes } from './routes/keys.js';
import { callHandler, listToolsHandler, mcpRoutes } from './routes/mcp.js';
import { installFastPath, type HotRoutes } from './fastPath.js';
import { MOUNT, mountOf } from './mounts.js';
import { openapiRoute } from './routes/openapi.js';
import { adminOAuthRoutes, oauthPublicRoutes } from './routes/oauth.js';
import type { OAuthManager } from '../oauth/manager.js';

export interface Readiness {
  loaded: boolean;
  draining: boolean;
  /** The shared store answers (always true when embedded). */
  storeHealthy: () => boolean;
}

export interface AppDeps {
  broker: Broker;
  approvals: ApprovalService;
  credentials: Credentials;
  keys: KeyStore;
  rateLimiter: RateLimiter;
  metrics: Metrics;
  logger: Logger;
  readiness: Readiness;
  maxBodyBytes: number;
  /** Serve the hot routes outside express (fastPath.ts; default on). */
  fastPath?: boolean;
  /** Upstream OAuth (SPEC §12). */
  oauth?: OAuthManager;
  /** The Responses layer's routes (and POST / on its own, for the fast path), when built. */
  responses?: { routes: Router; create: RequestHandler };
}

function timing(metrics: Metrics): RequestHandler {
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      observe(metrics, metricRoute(req), req, res, started);
    });
    next();
  };
}

/**
 * `${baseUrl}${route.path}`, or 'unmatched'. After a request left a mounted router express
 * has reset baseUrl: the prefix is then its mount (mounts.ts), never text from the URL.
 */
function metricRoute(req: Request): string {
  const path = req.route?.path;
  if (typeof path !== 'string') return 'unmatched';
  if (req.baseUrl) return `${req.baseUrl}${path}`;
  return `${mountOf(req.originalUrl)}${path}`;
}

function observe(metrics: Metrics, route: string, req: IncomingMessage, res: ServerResponse, started: number) {
  metrics.httpDuration.observe({ method: req.method!, route, status: String(res.statusCode) }, (performance.now() - started) / 1000);
}

/** Wires real parts into an express app; no module-level state, so tests build many. */
export function createApp(d: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const spans = serverSpans({ mountOf });
  if (spans) app.use(spans);
  app.use(timing(d.metrics));

  app.get('/openapi.json', openapiRoute());
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', (_req, res) => {
    if (!d.readiness.loaded || d.readiness.draining) {
      return sendError(res, new UpstreamError(503, d.readiness.draining ? 'shutting_down' : 'not_ready', 'The broker is not ready.'));
    }
    if (!d.readiness.storeHealthy()) return sendError(res, new UpstreamError(503, 'store_unavailable', 'The shared state store is unavailable.'));
    res.json({ status: 'ready' });
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('content-type', d.metrics.registry.contentType);
    res.send(await d.metrics.registry.metrics());
  });

  // Authentication runs before the body is read: no credential → 401 even for a bad body.
  const json = jsonBody(d.maxBodyBytes, { bindContext: spans !== undefined });
  // Every /v1/* request of a named key counts toward its rate limit; grants bind after the body.
  const limit = limitRate(d.rateLimiter);
  app.use(MOUNT.console, consoleRoutes());
  if (d.oauth) app.use(MOUNT.oauth, oauthPublicRoutes(d.broker.d.registry, d.oauth));
  const admin = [adminRoutes(d.broker, d.oauth), keyRoutes(d.keys, d.logger), consoleAdminRoutes(d.broker)];
  if (d.oauth) admin.push(adminOAuthRoutes(d.broker.d.registry, d.oauth));
  app.use(MOUNT.admin, authenticate(d.credentials, ['admin']), json, ...admin);
  app.use(MOUNT.approvals, authenticate(d.credentials, ['api', 'approver']), limit, json, approvalVisibility(d.approvals), approvalRoutes(d.approvals));
  const api = [authenticate(d.credentials, ['api']), limit, json, bindCaller];
  app.use(MOUNT.mcp, ...api, mcpRoutes(d.broker));
  if (d.responses) app.use(MOUNT.responses, ...api, d.responses.routes);

  const onError = errorHandler(d.logger);
  app.use(notFoundRoute);
  app.use(onError);

  // The same chains for the hot routes, outside express (fastPath.ts), each with its own
  // server span first when tracing is on.
  if (d.fastPath !== false) {
    const hot = (route: string, spanRoute: string, handler: RequestHandler) => {
      const span = spans && serverSpans({ route: spanRoute });
      return { route, chain: [...(span ? [span] : []), ...api, handler] };
    };
    const routes: HotRoutes = {
      '/v1/mcp/call': hot('/v1/mcp/call', '/v1/mcp/call', callHandler(d.broker)),
      '/v1/mcp/list_tools': hot('/v1/mcp/list_tools', '/v1/mcp/list_tools', listToolsHandler(d.broker)),
    };
    if (d.responses) routes['/v1/responses'] = hot('/v1/responses/', '/v1/responses', d.responses.create);
    installFastPath(app, { routes, onError: (err, req, res) => onError(err, req, res, () => undefined), observe: (route, req, res, t) => observe(d.metrics, route, req, res, t) });
  }
  return app;
}
