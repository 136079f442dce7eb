import diagnostics from 'node:diagnostics_channel';
import type * as OtelApi from '@opentelemetry/api';
import type { Request, RequestHandler } from 'express';

/**
 * OpenTelemetry traces (SPEC §14), on only when an OTLP endpoint is configured. Off, no
 * OpenTelemetry module is loaded and every helper here is a direct call of its callback.
 *
 * What a span may carry: methods, route templates, status codes, server labels, tool
 * names, model names, token counts, origins, ids. Never arguments, outputs, header values,
 * tokens, or URL paths.
 */

type Api = typeof OtelApi;
export type Span = OtelApi.Span;
type Attrs = Record<string, string | number | boolean | undefined>;

interface State {
  api: Api;
  tracer: OtelApi.Tracer;
  provider: { forceFlush(): Promise<void>; shutdown(): Promise<void> };
  unsubscribe: () => void;
}

let state: State | undefined;

export class TracingConfigError extends Error {}

export interface TracingConfig {
  /** Where spans go (the signal-specific endpoint, or the generic one + /v1/traces). */
  url: string;
  protocol: 'http/protobuf' | 'http/json';
}

const nonEmpty = (v: string | undefined) => (v && v.trim() ? v.trim() : undefined);

/** The exporter settings from the standard OTEL_* variables, or undefined when tracing is off. */
export function tracingConfig(env: NodeJS.ProcessEnv): TracingConfig | undefined {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_TRACES_EXPORTER && env.OTEL_TRACES_EXPORTER.split(',').every((e) => e.trim() === 'none')) return undefined;
  const specific = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const generic = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  if (!specific && !generic) return undefined;
  const url = specific ?? `${generic!.replace(/\/+$/, '')}/v1/traces`;
  if (!URL.canParse(url)) throw new TracingConfigError(`OTEL_EXPORTER_OTLP_${specific ? 'TRACES_' : ''}ENDPOINT is not a URL`);
  const protocol = nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL) ?? nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL) ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new TracingConfigError(`OTEL_EXPORTER_OTLP_PROTOCOL '${protocol}' is not supported: use http/protobuf or http/json`);
  }
  return { url, protocol };
}

export const tracingEnabled = (): boolean => state !== undefined;

/**
 * Starts the SDK when `env` names an OTLP endpoint; otherwise does nothing (and loads
 * nothing). Idempotent. Other OTEL_* variables (headers, timeout, compression, sampler,
 * batch sizes, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) are read by the SDK itself.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env, serviceVersion = '0.1.0'): boolean {
  if (state) return true;
  const config = tracingConfig(env);
  if (!config) return false;
  // Loaded here, not at the top: with tracing off none of this is ever required.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const api = require('@opentelemetry/api') as Api;
  const { NodeTracerProvider } = require('@opentelemetry/sdk-trace-node') as typeof import('@opentelemetry/sdk-trace-node');
  const { BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  const res = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
  const { OTLPTraceExporter } = (config.protocol === 'http/json'
    ? require('@opentelemetry/exporter-trace-otlp-http')
    : require('@opentelemetry/exporter-trace-otlp-proto')) as typeof import('@opentelemetry/exporter-trace-otlp-http');
  /* eslint-enable @typescript-eslint/no-require-imports */

  const serviceName = nonEmpty(env.OTEL_SERVICE_NAME);
  const resource = res
    .resourceFromAttributes({ 'service.name': 'mcp-broker', 'service.version': serviceVersion })
    .merge(res.detectResources({ detectors: [res.envDetector] }))
    .merge(serviceName ? res.resourceFromAttributes({ 'service.name': serviceName }) : null);
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: config.url }))],
  });
  // Trace context only: a caller's `baggage` is not forwarded to MCP servers or the model.
  provider.register({ propagator: new W3CTraceContextPropagator() });
  const tracer = api.trace.getTracer('mcp-broker', serviceVersion);
  state = { api, tracer, provider, unsubscribe: injectIntoUndici(api) };
  return true;
}

/** Exports what is buffered (tests, shutdown). */
export async function flushTracing(): Promise<void> {
  await state?.provider.forceFlush();
}

export async function stopTracing(): Promise<void> {
  const s = state;
  if (!s) return;
  state = undefined;
  s.unsubscribe();
  await s.provider.shutdown().catch(() => undefined);
  s.api.trace.disable();
  s.api.context.disable();
  s.api.propagation.disable();
}

/**
 * `traceparent` on every outgoing undici request made inside a span: MCP servers (the
 * SDK's fetch and any undici transport), the model upstream (the openai package's global
 * fetch is undici too) and webhook receivers. Hooked at the dispatcher through undici's
 * diagnostics channel, so no call site changes.
 */
function injectIntoUndici(api: Api): () => void {
  const onCreate = (message: unknown) => {
    const request = (message as { request?: { headers?: unknown; addHeader?: (k: string, v: string) => void } }).request;
    if (!request?.addHeader) return;
    const active = api.context.active();
    const span = api.trace.getSpan(active);
    if (!span || !api.isSpanContextValid(span.spanContext())) return;
    if (hasHeader(request.headers, 'traceparent')) return;
    const carrier: Record<string, string> = {};
    api.propagation.inject(active, carrier);
    for (const [k, v] of Object.entries(carrier)) request.addHeader(k, v);
  };
  diagnostics.subscribe('undici:request:create', onCreate);
  return () => diagnostics.unsubscribe('undici:request:create', onCreate);
}

function hasHeader(headers: unknown, name: string): boolean {
  if (typeof headers === 'string') return new RegExp(`(^|\\r\\n)${name}:`, 'i').test(headers);
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i];
      if (Array.isArray(h) ? String(h[0]).toLowerCase() === name : i % 2 === 0 && String(h).toLowerCase() === name) return true;
    }
  }
  return false;
}

const KIND = { server: 1, client: 2, internal: 0 } as const;

function clean(attrs: Attrs): OtelApi.Attributes {
  const out: OtelApi.Attributes = {};
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) out[k] = v;
  return out;
}

/** `error.type` only: messages can quote upstream text, arguments or URLs. */
function errorType(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown; constructor?: { name?: string } };
  if (typeof e?.code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(e.code)) return e.code;
  const name = e?.constructor?.name ?? (typeof e?.name === 'string' ? e.name : undefined);
  return name && name !== 'Object' ? name : '_OTHER';
}

/**
 * Runs `fn` inside a span (the active one becomes its parent). Off: just `fn(undefined)`.
 * A thrown error marks the span failed with `error.type` and is rethrown.
 */
export function withSpan<T>(
  name: string,
  kind: keyof typeof KIND,
  attrs: Attrs,
  fn: (span: Span | undefined) => Promise<T>,
  onResult?: (span: Span, result: T) => void,
  onError?: (span: Span, err: unknown) => void,
): Promise<T> {
  const s = state;
  if (!s) return fn(undefined);
  return s.tracer.startActiveSpan(name, { kind: KIND[kind], attributes: clean(attrs) }, async (span) => {
    try {
      const result = await fn(span);
      onResult?.(span, result);
      return result;
    } catch (err) {
      span.setAttribute('error.type', errorType(err));
      span.setStatus({ code: s.api.SpanStatusCode.ERROR });
      onError?.(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

function originAttrs(origin: string | undefined): Attrs {
  if (!origin) return {};
  try {
    const u = new URL(origin);
    return { 'server.address': u.hostname.replace(/^\[|\]$/g, ''), 'server.port': Number(u.port || (u.protocol === 'https:' ? 443 : 80)), 'url.origin': u.origin };
  } catch {
    return {};
  }
}

/** The MCP-facing span: one per MCP request the broker sends (OTel MCP semantic conventions). */
export function mcpSpan<T>(
  method: 'tools/list' | 'tools/call' | (string & {}),
  target: { origin: string; server_label?: string },
  tool: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (!state) return fn();
  const attrs: Attrs = {
    'mcp.method.name': method,
    'mcp.server.label': target.server_label,
    'gen_ai.tool.name': tool,
    'gen_ai.operation.name': method === 'tools/call' ? 'execute_tool' : undefined,
    'network.transport': 'tcp',
    'network.protocol.name': 'http',
    ...originAttrs(target.origin),
  };
  const api = state.api;
  return withSpan(
    tool ? `${method} ${tool}` : method,
    'client',
    attrs,
    fn,
    (span, result) => {
      const isError = (result as { isError?: unknown } | undefined)?.isError === true;
      span.setAttribute('mcp.outcome', isError ? 'tool_error' : 'ok');
      if (isError) {
        span.setAttribute('error.type', 'tool_error');
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      }
    },
    (span, err) => span.setAttribute('mcp.outcome', mcpOutcome(err)),
  );
}

/** Coarse, like the metrics' outcome label: a JSON-RPC error has a numeric code. */
function mcpOutcome(err: unknown): string {
  const e = err as { code?: unknown; constructor?: { name?: string } };
  if (e?.constructor?.name === 'BrokerCapacityError') return 'capacity';
  return typeof e?.code === 'number' && e.code < 0 ? 'protocol_error' : 'transport_error';
}

interface TurnUsage {
  input_tokens?: number;
  output_tokens?: number;
  input_tokens_details?: { cached_tokens?: number };
}

/**
 * Wraps a model adapter so that every turn is a CLIENT span (OTel GenAI conventions):
 * operation, provider, requested model, token usage. Off: the adapter itself.
 */
export function traceModelCalls<A extends { turn(req: { model: string }, ...rest: never[]): Promise<{ usage?: TurnUsage | null }> }>(
  adapter: A,
  o: { provider: string; baseUrl?: string },
): A {
  if (!state) return adapter;
  const inner = adapter.turn.bind(adapter) as (req: { model: string }, ...rest: unknown[]) => Promise<{ usage?: TurnUsage | null }>;
  let origin: string | undefined;
  try {
    origin = o.baseUrl ? new URL(o.baseUrl).origin : undefined;
  } catch {
    origin = undefined;
  }
  const turn = (req: { model: string }, ...rest: unknown[]) =>
    withSpan(
      `chat ${req.model}`,
      'client',
      { 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': o.provider, 'gen_ai.system': o.provider, 'gen_ai.request.model': req.model, ...originAttrs(origin) },
      () => inner(req, ...rest),
      (span, result) => {
        const u = result?.usage;
        if (!u) return;
        if (typeof u.input_tokens === 'number') span.setAttribute('gen_ai.usage.input_tokens', u.input_tokens);
        if (typeof u.output_tokens === 'number') span.setAttribute('gen_ai.usage.output_tokens', u.output_tokens);
        const cached = u.input_tokens_details?.cached_tokens;
        if (typeof cached === 'number') span.setAttribute('gen_ai.usage.cache_read.input_tokens', cached);
      },
    );
  return Object.assign(Object.create(adapter) as A, { turn });
}

/** A wait for an approval decision (long-poll or webhook-mode `wait_ms`). */
export function approvalWaitSpan<T extends { status?: string }>(id: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  if (!state) return fn();
  return withSpan('mcp.approval.wait', 'internal', { 'mcp.approval.id': id, 'mcp.approval.wait_ms': waitMs }, fn, (span, r) => {
    if (typeof r?.status === 'string') span.setAttribute('mcp.approval.status', r.status);
  });
}

/** The active span's `traceparent` (for work queued now and run later, maybe elsewhere), if tracing and in a span. */
export function activeTraceparent(): string | undefined {
  const s = state;
  if (!s) return undefined;
  const active = s.api.context.active();
  const span = s.api.trace.getSpan(active);
  if (!span || !s.api.isSpanContextValid(span.spanContext())) return undefined;
  const carrier: Record<string, string> = {};
  s.api.propagation.inject(active, carrier);
  return carrier.traceparent;
}

/**
 * One webhook delivery attempt, in the trace of the request that queued it: `job.traceparent`
 * survives the Redis queue (and any instance picking the job up), where no async context does.
 * `retryIn` is what the attempt answered (undefined: done).
 */
export function webhookSpan<T extends number | undefined>(job: { id: string; type: string; attempt: number; traceparent?: string }, fn: () => Promise<T>): Promise<T> {
  const s = state;
  if (!s) return fn();
  const parent = job.traceparent ? s.api.propagation.extract(s.api.ROOT_CONTEXT, { traceparent: job.traceparent }) : s.api.context.active();
  return s.api.context.with(parent, () =>
    withSpan(
      `webhook ${job.type}`,
      'client',
      { 'webhook.id': job.id, 'webhook.event.type': job.type, 'webhook.attempt': job.attempt + 1 },
      fn,
      (span, retryIn) => span.setAttribute('webhook.outcome', retryIn === undefined ? 'done' : 'retry'),
    ),
  );
}

/** The matched route template, e.g. `/admin/servers/:label` (never the actual path). */
export function routeTemplate(req: Request, mountOf?: (originalUrl: string) => string): string | undefined {
  const path = req.route?.path;
  if (typeof path !== 'string') return undefined;
  if (req.baseUrl) return `${req.baseUrl}${path === '/' ? '' : path}` || '/';
  // After an error left the router express has reset baseUrl: the mount prefix is the app's
  // mount the path is under (bounded), else the leading segments of the actual path.
  if (mountOf) return `${mountOf(req.originalUrl)}${path === '/' ? '' : path}` || '/';
  const actual = (req.originalUrl.split('?')[0] ?? '').split('/').filter(Boolean);
  const tmpl = path.split('/').filter(Boolean);
  const prefix = actual.slice(0, Math.max(0, actual.length - tmpl.length));
  return `/${[...prefix, ...tmpl].join('/')}`;
}

/**
 * A SERVER span per request: the caller's `traceparent` continued, `http.route` the route
 * template (`route` when the caller knows it: the fast path's routes, which express never
 * matched). Undefined when tracing is off (the app installs nothing).
 */
export function serverSpans(o: { route?: string; mountOf?: (originalUrl: string) => string } = {}): RequestHandler | undefined {
  const route = o.route;
  const s = state;
  if (!s) return undefined;
  const { api, tracer } = s;
  return (req, res, next) => {
    const parent = api.propagation.extract(api.ROOT_CONTEXT, req.headers);
    const span = tracer.startSpan(
      req.method,
      {
        kind: KIND.server,
        // express's req.protocol without 'trust proxy' (never set here), readable on a plain request too.
        attributes: { 'http.request.method': req.method, 'url.scheme': (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http', 'network.protocol.version': req.httpVersion },
      },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      const template = route ?? routeTemplate(req, o.mountOf);
      if (template) {
        span.setAttribute('http.route', template);
        span.updateName(`${req.method} ${template}`);
      }
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) {
        span.setAttribute('error.type', String(res.statusCode));
        span.setStatus({ code: api.SpanStatusCode.ERROR });
      }
      if (!res.writableFinished) span.setAttribute('http.request.aborted', true);
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    api.context.with(api.trace.setSpan(parent, span), next);
  };
}
