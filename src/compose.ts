import type { Express } from 'express';
import type { Logger } from 'pino';
import { ApprovalService } from './approvals/service.js';
import { WebhookDispatcher } from './approvals/webhooks.js';
import { Broker } from './broker/broker.js';
import { webhookEndpoints } from './broker/webhookEndpoints.js';
import { Catalog } from './catalog/catalog.js';
import { isLoopbackHost, maxInflightPerServer, type Env } from './config/env.js';
import { expansionEnv } from './config/expand.js';
import { stores } from './stores.js';
import type { ApprovalStore } from './approvals/store.js';
import type { ResponseStore } from './responses/store.js';
import { createApp, type Readiness } from './http/app.js';
import { Credentials } from './http/auth.js';
import type { KeyStore } from './keys/store.js';
import { AgentPool, parseCidrs } from './mcp/egress.js';
import { classifyUpstreamError } from './mcp/failure.js';
import { scrub } from './util/scrub.js';
import { UpstreamLimits } from './mcp/limits.js';
import { SessionPool } from './mcp/pool.js';
import { Upstreams } from './mcp/upstreams.js';
import { Metrics } from './obs/metrics.js';
import { traceModelCalls } from './obs/tracing.js';
import { SecretValues } from './obs/logger.js';
import { ResponsesService } from './responses/service.js';
import { BackgroundRuns } from './responses/background.js';
import { createResponseHandler, responsesRoutes } from './http/routes/responses.js';
import { OpenAIModelClient, type ModelClient } from './responses/upstream/client.js';
import { UndiciModelClient } from './responses/upstream/undiciClient.js';
import { ChatCompletionsAdapter } from './responses/upstream/chatCompletions.js';
import { ResponsesAdapter } from './responses/upstream/responsesApi.js';
import type { ModelAdapter } from './responses/upstream/types.js';
import { registeredServerKey, type RegistryStore } from './registry/store.js';
import { createOAuth } from './oauth/setup.js';
import type { ServerRecord } from './config/serverRecord.js';

export interface BrokerInstance {
  app: Express;
  broker: Broker;
  registry: RegistryStore;
  keys: KeyStore;
  approvalStore: ApprovalStore;
  responseStore: ResponseStore;
  readiness: Readiness;
  metrics: Metrics;
  close(): Promise<void>;
}

export interface ComposeOptions {
  env: Env;
  /** Where `${NAME}` references are read from. */
  processEnv: NodeJS.ProcessEnv;
  adminToken: string;
  logger: Logger;
  secrets: SecretValues;
  /** Tuning for tests: breaker threshold and half-open delay, session idle time. */
  tuning?: Partial<{
    breakerThreshold: number;
    breakerHalfOpenMs: number;
    sessionIdleMs: number;
    webhookBaseDelayMs: number;
    webhookLeaseMs: number;
    webhookPollMs: number;
    sseKeepAliveMs: number;
    /** Lease of a background response's instance (another instance calls it lost after this). */
    backgroundLeaseMs: number;
    oauthStateTtlMs: number;
  }>;
  /** The egress dispatchers; injected only by the benchmark's unguarded control. */
  agents?: AgentPool;
}

/** The composition root: every part built from configuration and wired together. */
export async function composeBroker(o: ComposeOptions): Promise<BrokerInstance> {
  const { env, logger } = o;
  const t = o.tuning ?? {};
  // `${NAME}` sees only what BROKER_EXPAND_ENV allows (never the broker's own secrets).
  const expandEnv = expansionEnv(o.processEnv, env.BROKER_EXPAND_ENV);
  o.secrets.addPermanent(o.adminToken, env.BROKER_APPROVER_TOKEN, env.UPSTREAM_API_KEY, env.APPROVAL_WEBHOOK_SECRET, ...env.BROKER_API_KEYS);

  const st = await stores(env, logger, { webhookLeaseMs: t.webhookLeaseMs, webhookPollMs: t.webhookPollMs });
  const { bus, registry, keys, approvals: approvalStore, responses: responseStore, deliveries: queue } = st;
  const agents = o.agents ?? new AgentPool();
  const limits = new UpstreamLimits({
    maxInflightPerServer: maxInflightPerServer(env),
    maxInflight: env.BROKER_MAX_INFLIGHT,
    breakerThreshold: t.breakerThreshold ?? 5,
    breakerHalfOpenMs: t.breakerHalfOpenMs ?? 10_000,
  });
  let catalog: Catalog | undefined;
  const pool = new SessionPool({
    idleMs: t.sessionIdleMs ?? 10 * 60_000,
    max: 5000,
    onToolsChanged: (key) => {
      catalog?.invalidateSession(key);
      // The server's tools changed for every instance and every credential set.
      bus.publish({ kind: 'tools_changed', serverKey: key.split('|')[0]! });
    },
    // Classified text only: an SDK message may carry the URL, its query or the server's body.
    onError: (key, err) => logger.debug({ session: key.split('|')[0]?.replace(/^inline:(https?:\/\/[^/]+).*/, 'inline:$1'), err: classifyUpstreamError(err, o.secrets.all()).message }, 'upstream session error'),
  });
  const publicUrl = (env.BROKER_PUBLIC_URL ?? `http://${env.HOST.includes(':') ? `[${env.HOST}]` : env.HOST}:${env.PORT}`).replace(/\/$/, '');
  // Upstream OAuth (SPEC §12): tokens sealed under BROKER_SECRET_KEY in the registry's store.
  const oauth = await createOAuth({ env, conn: st.conn, file: st.file, registry, agents, publicUrl, processEnv: o.processEnv, logger, secrets: o.secrets, stateTtlMs: t.oauthStateTtlMs }).catch(async (e) => {
    await st.close();
    throw e;
  });
  const upstreams = new Upstreams(pool, agents, limits, {
    authFor: (t) => {
      const r = t.record as ServerRecord | undefined;
      return r?.oauth ? oauth.authProviderFor(r, t.egress) : undefined;
    },
    maxUpstreamBytes: env.BROKER_MAX_UPSTREAM_BYTES,
    mcpTransport: env.BROKER_MCP_TRANSPORT,
    listing: { maxBytes: env.BROKER_MAX_LISTING_BYTES, maxTools: 10_000, maxPages: 100 },
    // Once per upstream failure; never a URL path, query, header value or argument.
    onFailure: (e) =>
      logger.warn(
        {
          server_label: e.server,
          method: e.method,
          kind: e.failure.kind === 'protocol' ? 'protocol_error' : e.failure.code,
          ...(e.failure.kind === 'protocol' ? { jsonrpc_code: e.failure.code } : { http_status: e.failure.status }),
          server_fault: e.server_fault,
        },
        'mcp upstream failure',
      ),
  });
  const approvals = new ApprovalService(approvalStore, {
    ttlS: env.APPROVAL_TTL_S,
    maxPendingPerKey: env.BROKER_MAX_PENDING_APPROVALS,
    maxBytesPerKey: env.BROKER_MAX_APPROVAL_BYTES,
  });
  const defaultWebhook = env.APPROVAL_WEBHOOK_URL ? { url: env.APPROVAL_WEBHOOK_URL, secret: env.APPROVAL_WEBHOOK_SECRET! } : undefined;
  const webhooks = new WebhookDispatcher({
    agent: agents.get({ allowPrivate: true, allowCidrs: [] }),
    logger: logger.child({ component: 'webhooks' }),
    queue,
    resolve: webhookEndpoints({ registry, env: expandEnv, defaultWebhook, logger }),
    // An approver may answer the POST itself: that is its decision.
    onAnswer: (id, answer) =>
      void approvals.decide(id, { kind: 'approver' }, answer).catch((e: Error) => logger.info({ approval: id, err: e.message }, 'webhook answer not applied')),
    baseDelayMs: t.webhookBaseDelayMs,
  });
  const metrics = new Metrics({
    openSessions: () => pool.size,
    pendingApprovals: () => approvalStore.pendingCount(),
    openBreakers: () => limits.openBreakers(),
    inflight: () => limits.inflightCount,
  });
  webhooks.onOutcome = (outcome) => metrics.webhookDeliveries.inc({ outcome });

  let broker: Broker | undefined;
  catalog = new Catalog(
    upstreams,
    registry,
    (e) => broker?.definitionChanged(e),
    (label, err) => logger.warn({ server_label: label, err: err.message }, 'tool pins not saved; will retry at the next listing'),
    // The listing cache holds at most 16 maximal listings' worth of definitions (128 MiB by default).
    { scrub: (text) => scrub(text, o.secrets.all()), maxBytes: 16 * env.BROKER_MAX_LISTING_BYTES },
  );
  broker = new Broker({
    registry,
    catalog,
    upstreams,
    approvals,
    webhooks,
    settings: {
      allowInline: env.BROKER_ALLOW_INLINE_SERVERS,
      allowHttp: env.BROKER_EGRESS_ALLOW_HTTP,
      allowCidrs: parseCidrs(env.BROKER_EGRESS_ALLOW_CIDRS),
      env: expandEnv,
    },
    publicUrl,
    approvalTtlS: env.APPROVAL_TTL_S,
    logger,
    metrics,
    secrets: o.secrets,
  });

  // An admin write drops the server's listings and sessions and re-enables webhook endpoints.
  bus.subscribe((e) => {
    if (e.kind === 'tools_changed') catalog!.invalidateServer(e.serverKey);
  });
  registry.onChange((label) => {
    const key = registeredServerKey(label);
    catalog!.invalidateServer(key);
    pool.drop(`${key}|`);
    webhooks.enableAll();
    void registry
      .get(label)
      .then((r) => oauth.forget(label, !r))
      .catch((e: Error) => logger.warn({ server_label: label, err: e.message }, 'OAuth state of a changed server not cleared'));
  });

  const readiness: Readiness = { loaded: true, draining: false, storeHealthy: () => st.healthy() };
  const credentials = new Credentials({ adminToken: o.adminToken, approverToken: env.BROKER_APPROVER_TOKEN, apiKeys: env.BROKER_API_KEYS, keys, allowOpenMode: isLoopbackHost(env.HOST) });
  let adapter: ModelAdapter | undefined;
  let modelClient: ModelClient | undefined;
  if (env.UPSTREAM_BASE_URL) {
    const mo = { baseURL: env.UPSTREAM_BASE_URL, apiKey: env.UPSTREAM_API_KEY ?? 'unset', timeoutMs: env.UPSTREAM_TIMEOUT_MS };
    const client = (modelClient = env.UPSTREAM_CLIENT === 'openai' ? new OpenAIModelClient(mo) : new UndiciModelClient(mo));
    adapter = env.UPSTREAM_API === 'responses' ? new ResponsesAdapter(client) : new ChatCompletionsAdapter(client);
    adapter = traceModelCalls(adapter, { provider: 'openai', baseUrl: env.UPSTREAM_BASE_URL });
  }
  const background = new BackgroundRuns({
    store: responseStore,
    bus,
    logger: logger.child({ component: 'background' }),
    leaseMs: t.backgroundLeaseMs ?? env.BROKER_BACKGROUND_LEASE_MS,
    maxRunning: env.BROKER_MAX_BACKGROUND_RESPONSES,
    maxPerOwner: env.BROKER_MAX_BACKGROUND_PER_KEY,
  });
  const responses = new ResponsesService({
    background,
    broker,
    metrics,
    approvals,
    adapter,
    store: responseStore,
    logger: logger.child({ component: 'responses' }),
    maxIterations: env.BROKER_MAX_ITERATIONS,
    maxMcpTools: env.BROKER_MAX_TOOLS_PER_REQUEST,
  });
  const app = createApp({
    broker,
    approvals,
    credentials,
    keys,
    rateLimiter: st.rateLimiter,
    metrics,
    logger,
    readiness,
    maxBodyBytes: env.BROKER_MAX_BODY_BYTES,
    fastPath: env.BROKER_HTTP_FAST_PATH === 'on',
    oauth,
    responses: { routes: responsesRoutes(responses, { keepAliveMs: t.sseKeepAliveMs }), create: createResponseHandler(responses, { keepAliveMs: t.sseKeepAliveMs }) },
  });

  return {
    app,
    broker,
    registry,
    keys,
    approvalStore,
    responseStore,
    readiness,
    metrics,
    async close() {
      // Background runs still going end here: failed, code instance_shutdown.
      background.abortAll();
      await Promise.race([background.drain(), new Promise((r) => setTimeout(r, 2000).unref())]);
      await webhooks.close();
      await upstreams.close();
      await modelClient?.close?.();
      await oauth.close();
      await st.close();
    },
  };
}
