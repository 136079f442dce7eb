import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './fixtures/otlpReceiver.js';
import { startReceiver, WEBHOOK_SECRET } from './fixtures/webhookReceiver.js';
import { startRedis } from './fixtures/redis.js';
import { KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import type { Request } from 'express';
import { mountOf } from '../src/http/mounts.js';
import { flushTracing, routeTemplate, startTracing, stopTracing, tracingConfig, tracingEnabled } from '../src/obs/tracing.js';

const SERVER = 2;
const CLIENT = 3;

const CANARY = {
  argument: 'CANARY-ARG-6f1d2c',
  header: 'CANARY-HDR-93ab7e',
  authorization: 'CANARY-AUTH-0c55d1',
  recordHeader: 'CANARY-RECHDR-7d2f10',
  urlPath: 'CANARY-QUERY-4be0aa',
  input: 'CANARY-INPUT-e5a8c3',
  output: 'CANARY-OUTPUT-2c9f47',
};

const caller = () => {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
};

const traceIdOf = (traceparent: unknown) => (typeof traceparent === 'string' ? traceparent.split('-')[1] : undefined);

describe('tracing configuration', () => {
  it('is off unless an OTLP endpoint is set; honours the protocol variables', () => {
    expect(tracingConfig({})).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toEqual({ url: 'http://c:4318/v1/traces', protocol: 'http/protobuf' });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/x', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://d' })).toEqual({ url: 'http://c:4318/x', protocol: 'http/protobuf' });
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })?.protocol).toBe('http/json');
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' })?.protocol).toBe('http/protobuf');
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_EXPORTER: 'none' })).toBeUndefined();
    expect(() => tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/grpc.*not supported/);
    expect(() => tracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/not a URL/);
  });

  it('http.route is the template: mounted routers, and after an error left the router', () => {
    const req = (baseUrl: string, path: string | undefined, originalUrl: string) => ({ baseUrl, route: path === undefined ? undefined : { path }, originalUrl }) as unknown as Request;
    const table: Array<[Request, string | undefined]> = [
      [req('/admin', '/servers/:label', '/admin/servers/crm'), '/admin/servers/:label'],
      [req('/v1/responses', '/', '/v1/responses'), '/v1/responses'],
      [req('', '/healthz', '/healthz'), '/healthz'],
      [req('', '/servers/:label/refresh', '/admin/servers/crm/refresh?x=1'), '/admin/servers/:label/refresh'],
      [req('', '/:id', '/v1/mcp/approvals/mcpr_1'), '/v1/mcp/approvals/:id'],
      [req('', undefined, '/no/such/path'), undefined],
    ];
    for (const [r, want] of table) expect(routeTemplate(r)).toBe(want);
    // With the app's mounts (what the app passes): the prefix is a mount, never URL text.
    expect(routeTemplate(req('', '/{*path}', '/console/a/b/c'), mountOf)).toBe('/console/{*path}');
    expect(routeTemplate(req('', '/:id', '/v1/mcp/approvals/mcpr_1'), mountOf)).toBe('/v1/mcp/approvals/:id');
    expect(routeTemplate(req('', '/healthz', '/healthz'), mountOf)).toBe('/healthz');
  });

  it('off: nothing of the SDK is loaded (a fresh process loading the whole broker)', () => {
    // (@opentelemetry/api itself is loaded by prom-client.)
    const script = `require('./src/compose.ts');
      const on = require('./src/obs/tracing.ts').startTracing({});
      const sdk = Object.keys(require.cache).filter((k) => /@opentelemetry\\/(?!api\\/)/.test(k));
      const all = Object.keys(require.cache).length;
      process.stdout.write(JSON.stringify({ on, sdk, all }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: join(__dirname, '..'), env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: '' } });
    const r = JSON.parse(out.toString()) as { on: boolean; sdk: string[]; all: number };
    expect(r.on).toBe(false);
    expect(r.all).toBeGreaterThan(100);
    expect(r.sdk).toEqual([]);
    expect(tracingEnabled()).toBe(false);
  });
});

describe('OpenTelemetry traces exported over OTLP/HTTP', () => {
  let otlp: OtlpReceiver;
  let mcp: McpFixture;
  let model: FakeModel;
  let hooks: Awaited<ReturnType<typeof startReceiver>>;
  let b: TestBroker;

  beforeAll(async () => {
    otlp = await startOtlpReceiver();
    expect(startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'broker-under-test' })).toBe(true);
    mcp = await startMcpFixture();
    model = await startFakeModel();
    hooks = await startReceiver();
    b = await startBroker({
      env: { UPSTREAM_BASE_URL: model.url },
      servers: [
        record('fx', `${mcp.url}?token=${CANARY.urlPath}`, { transport: 'streamable_http', headers: { 'x-team': CANARY.recordHeader } }),
        record('hooked', mcp.url, {
          transport: 'streamable_http',
          require_approval: 'always',
          approval: { mode: 'webhook', webhook_url: hooks.url, webhook_secret: WEBHOOK_SECRET },
        }),
      ],
    });
  });
  afterAll(async () => {
    await b?.close();
    await hooks?.close();
    await model?.close();
    await mcp?.close();
    await stopTracing();
    await otlp?.close();
  });

  /** Flushes until `done` holds for the trace's spans (the server span ends as its response finishes). */
  async function spansOf(traceId: string, done: (s: ReceivedSpan[]) => boolean): Promise<ReceivedSpan[]> {
    const end = Date.now() + 10_000;
    for (;;) {
      await flushTracing();
      const spans = otlp.spans().filter((s) => s.traceId === traceId);
      if (done(spans) || Date.now() > end) return spans;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const secretsIn = (text: string) => [...Object.values(CANARY), KEY_A].filter((c) => text.includes(c));

  it('a /v1/mcp/call: SERVER span continuing the caller, CLIENT spans per MCP request; the MCP server gets the trace', async () => {
    const t = caller();
    const seenBefore = mcp.counters.headers.length;
    const r = await b.call('POST', '/v1/mcp/call', {
      headers: { traceparent: t.traceparent, 'x-canary': CANARY.header },
      body: {
        tool: { type: 'mcp', server_label: 'fx', authorization: CANARY.authorization, headers: { 'x-caller': CANARY.header } },
        name: 'echo',
        arguments: { text: CANARY.argument },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.output).toBe(`echo: ${CANARY.argument}`);

    const spans = await spansOf(t.traceId, (s) => s.some((x) => x.kind === SERVER) && s.some((x) => x.name === 'tools/call echo'));
    const server = spans.find((s) => s.kind === SERVER)!;
    expect(server).toMatchObject({
      name: 'POST /v1/mcp/call',
      parentSpanId: t.spanId,
      attributes: { 'http.route': '/v1/mcp/call', 'http.request.method': 'POST', 'http.response.status_code': 200 },
      resource: { 'service.name': 'broker-under-test' },
    });
    const list = spans.find((s) => s.name === 'tools/list')!;
    const call = spans.find((s) => s.name === 'tools/call echo')!;
    for (const s of [list, call]) {
      expect(s.kind).toBe(CLIENT);
      expect(s.parentSpanId).toBe(server.spanId);
      expect(s.attributes).toMatchObject({ 'mcp.server.label': 'fx', 'server.address': '127.0.0.1', 'server.port': mcp.port, 'url.origin': `http://127.0.0.1:${mcp.port}`, 'mcp.outcome': 'ok' });
    }
    expect(list.attributes['mcp.method.name']).toBe('tools/list');
    expect(call.attributes).toMatchObject({ 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': 'echo', 'gen_ai.operation.name': 'execute_tool' });

    // The MCP server saw the caller's trace, each request parented by an MCP span.
    const upstream = mcp.counters.headers.slice(seenBefore).map((h) => h.traceparent);
    expect(upstream.length).toBeGreaterThan(0);
    expect(upstream.every((tp) => traceIdOf(tp) === t.traceId)).toBe(true);
    const parents = new Set(upstream.map((tp) => String(tp).split('-')[2]));
    expect([...parents].every((p) => p === list.spanId || p === call.spanId)).toBe(true);

    // No argument, output, header value, token, key or URL path in any span.
    expect(secretsIn(JSON.stringify(spans))).toEqual([]);
  });

  it('the SDK transport (BROKER_MCP_TRANSPORT=sdk) carries the trace too', async () => {
    const sdk = await startBroker({ env: { BROKER_MCP_TRANSPORT: 'sdk' }, servers: [record('fx', mcp.url, { transport: 'streamable_http' })] });
    try {
      const t = caller();
      const before = mcp.counters.headers.length;
      const r = await sdk.call('POST', '/v1/mcp/call', { headers: { traceparent: t.traceparent }, body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'x' } } });
      expect(r.status).toBe(200);
      const spans = await spansOf(t.traceId, (s) => s.some((x) => x.kind === SERVER) && s.some((x) => x.name === 'tools/call echo'));
      const call = spans.find((s) => s.name === 'tools/call echo')!;
      expect(call.parentSpanId).toBe(spans.find((s) => s.kind === SERVER)!.spanId);
      const saw = mcp.counters.headers.slice(before).map((h) => traceIdOf(h.traceparent));
      expect(saw.length).toBeGreaterThan(0);
      expect(saw.every((id) => id === t.traceId)).toBe(true);
    } finally {
      await sdk.close();
    }
  });

  it('a tool error and an unknown tool are visible as outcomes, not as text', async () => {
    const t = caller();
    const r = await b.call('POST', '/v1/mcp/call', { headers: { traceparent: t.traceparent }, body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'fail', arguments: {} } });
    expect(r.body.status).toBe('failed');
    const spans = await spansOf(t.traceId, (s) => s.some((x) => x.kind === SERVER));
    const call = spans.find((s) => s.name === 'tools/call fail')!;
    expect(call.attributes).toMatchObject({ 'mcp.outcome': 'tool_error', 'error.type': 'tool_error' });
    expect(call.status.code).toBe(2);
    expect(JSON.stringify(spans)).not.toContain('it broke');
  });

  it('a /v1/responses turn: model CLIENT spans with GenAI attributes and usage; model and MCP server see the same trace', async () => {
    const t = caller();
    const modelBefore = model.requests.length;
    const mcpBefore = mcp.counters.headers.length;
    model.push({ calls: [{ name: 'echo', arguments: { text: CANARY.argument } }], usage: { input: 21, output: 7 } }, { text: CANARY.output, usage: { input: 30, output: 4 } });
    const r = await b.call('POST', '/v1/responses', {
      headers: { traceparent: t.traceparent, 'x-canary': CANARY.header },
      body: { model: 'test-model', input: CANARY.input, tools: [{ type: 'mcp', server_label: 'fx', require_approval: 'never', authorization: CANARY.authorization }] },
    });
    expect(r.status).toBe(200);
    expect(r.body.output.at(-1).content[0].text).toBe(CANARY.output);

    const spans = await spansOf(t.traceId, (s) => s.some((x) => x.kind === SERVER) && s.filter((x) => x.name === 'chat test-model').length === 2);
    const server = spans.find((s) => s.kind === SERVER)!;
    expect(server).toMatchObject({ name: 'POST /v1/responses', parentSpanId: t.spanId, attributes: { 'http.route': '/v1/responses', 'http.response.status_code': 200 } });
    const chats = spans.filter((s) => s.name === 'chat test-model');
    expect(chats).toHaveLength(2);
    for (const c of chats) {
      expect(c.kind).toBe(CLIENT);
      expect(c.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai', 'gen_ai.request.model': 'test-model', 'server.address': '127.0.0.1' });
    }
    expect(chats.map((c) => [c.attributes['gen_ai.usage.input_tokens'], c.attributes['gen_ai.usage.output_tokens']]).sort()).toEqual([[21, 7], [30, 4]]);
    expect(spans.find((s) => s.name === 'tools/call echo')?.attributes['mcp.server.label']).toBe('fx');

    const modelSaw = model.requests.slice(modelBefore).map((q) => q.headers.traceparent);
    expect(modelSaw).toHaveLength(2);
    expect(modelSaw.map(traceIdOf)).toEqual([t.traceId, t.traceId]);
    expect(modelSaw.map((tp) => String(tp).split('-')[2]).sort()).toEqual(chats.map((c) => c.spanId).sort());
    const mcpSaw = mcp.counters.headers.slice(mcpBefore).map((h) => traceIdOf(h.traceparent));
    expect(mcpSaw.length).toBeGreaterThan(0);
    expect(mcpSaw.every((id) => id === t.traceId)).toBe(true);

    expect(secretsIn(JSON.stringify(spans))).toEqual([]);
  });

  it('an approval wait and a webhook delivery are spans; a request without traceparent starts a new trace', async () => {
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'hooked' }, name: 'echo', arguments: { text: CANARY.argument } } });
    expect(r.body.type).toBe('mcp_approval_request');
    await hooks.waitFor(1);
    const t = caller();
    const w = await b.call('GET', `/v1/mcp/approvals/${r.body.id}?wait_ms=50`, { headers: { traceparent: t.traceparent } });
    expect(w.body.status).toBe('pending');

    const spans = await spansOf(t.traceId, (s) => s.some((x) => x.name === 'mcp.approval.wait') && s.some((x) => x.kind === SERVER));
    const server = spans.find((s) => s.kind === SERVER)!;
    expect(server.attributes['http.route']).toBe('/v1/mcp/approvals/:id');
    const wait = spans.find((s) => s.name === 'mcp.approval.wait')!;
    expect(wait).toMatchObject({ parentSpanId: server.spanId, attributes: { 'mcp.approval.id': r.body.id, 'mcp.approval.wait_ms': 50, 'mcp.approval.status': 'pending' } });

    let delivery: ReceivedSpan | undefined;
    for (let i = 0; i < 100 && !delivery; i++) {
      await flushTracing();
      delivery = otlp.spans().find((s) => s.name === 'webhook approval.requested');
      if (!delivery) await new Promise((res) => setTimeout(res, 50));
    }
    expect(delivery).toMatchObject({ kind: CLIENT, attributes: { 'webhook.event.type': 'approval.requested', 'webhook.attempt': 1, 'webhook.outcome': 'done' } });
    // The POST carried the trace of its delivery span.
    expect(traceIdOf(hooks.deliveries[0]!.headers.traceparent)).toBe(delivery!.traceId);

    const untraced = otlp.spans().filter((s) => s.kind === SERVER && s.attributes['http.route'] === '/v1/mcp/call' && s.parentSpanId === '');
    expect(untraced.length).toBeGreaterThan(0);
    expect(secretsIn(JSON.stringify(otlp.spans()))).toEqual([]);
    // Nothing in any export, anywhere: not in span names, resource or events either.
    expect(secretsIn(otlp.requests.map((q) => q.body.toString()).join('\n'))).toEqual([]);
  });

  it('every webhook attempt continues the trace of the request that queued it, retries from the Redis queue too', async () => {
    const redis = await startRedis();
    // The first attempt answers 503: the retry is picked up later by the queue's poll, outside any request.
    const hooks2 = await startReceiver([{ status: 503 }]);
    const shared = await startBroker({
      env: { BROKER_STORE: redis.url },
      tuning: { webhookBaseDelayMs: 20, webhookPollMs: 50 },
      servers: [record('hooked', mcp.url, { require_approval: 'always', approval: { mode: 'webhook', webhook_url: hooks2.url, webhook_secret: WEBHOOK_SECRET } })],
    });
    try {
      const t = caller();
      const r = await shared.call('POST', '/v1/mcp/call', { headers: { traceparent: t.traceparent }, body: { tool: { type: 'mcp', server_label: 'hooked' }, name: 'echo', arguments: { text: 'x' } } });
      expect(r.body.type).toBe('mcp_approval_request');
      await hooks2.waitFor(2);
      const spans = await spansOf(t.traceId, (s) => s.filter((x) => x.name === 'webhook approval.requested').length >= 2);
      const attempts = spans.filter((s) => s.name === 'webhook approval.requested').map((s) => [s.attributes['webhook.attempt'], s.attributes['webhook.outcome']]);
      expect(attempts.sort()).toEqual([
        [1, 'retry'],
        [2, 'done'],
      ]);
      // The receiver saw that trace on both attempts.
      expect(hooks2.deliveries.map((d) => traceIdOf(d.headers.traceparent))).toEqual([t.traceId, t.traceId]);
    } finally {
      await shared.close();
      await hooks2.close();
      await redis.close();
    }
  });

  it('an error keeps the route template, not the path; an unmatched path has no http.route', async () => {
    const t = caller();
    const r = await b.call('GET', '/admin/servers/some-secret-label', { token: 'wrong', headers: { traceparent: t.traceparent } });
    expect(r.status).toBe(401);
    const u = caller();
    expect((await b.call('GET', `/no/such/${CANARY.urlPath}`, { headers: { traceparent: u.traceparent } })).status).toBe(404);
    const [s401] = await spansOf(t.traceId, (s) => s.length > 0);
    expect(s401!.attributes['http.response.status_code']).toBe(401);
    expect(JSON.stringify(s401)).not.toContain('some-secret-label');
    const [s404] = await spansOf(u.traceId, (s) => s.length > 0);
    expect(s404).toMatchObject({ name: 'GET', attributes: { 'http.response.status_code': 404 } });
    expect(s404!.attributes['http.route']).toBeUndefined();
    expect(JSON.stringify(s404)).not.toContain(CANARY.urlPath);
  });
});

describe('http/protobuf export', () => {
  it('sends protobuf to /v1/traces with the span in it', async () => {
    const otlp = await startOtlpReceiver();
    const mcp = await startMcpFixture();
    expect(startTracing({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${otlp.url}/v1/traces` })).toBe(true);
    const b = await startBroker({ servers: [record('fx', mcp.url, { transport: 'streamable_http' })] });
    try {
      const t = caller();
      const r = await b.call('POST', '/v1/mcp/list_tools', { headers: { traceparent: t.traceparent }, body: { tool: { type: 'mcp', server_label: 'fx' } } });
      expect(r.status).toBe(200);
      const id = Buffer.from(t.traceId, 'hex');
      for (let i = 0; i < 100 && !otlp.requests.some((q) => q.body.includes(id) && q.body.includes('POST /v1/mcp/list_tools')); i++) {
        await flushTracing();
        await new Promise((res) => setTimeout(res, 50));
      }
      const hit = otlp.requests.find((q) => q.body.includes(id) && q.body.includes('POST /v1/mcp/list_tools'));
      expect(hit).toMatchObject({ path: '/v1/traces', contentType: 'application/x-protobuf' });
      expect(hit!.body.includes('tools/list')).toBe(true);
    } finally {
      await b.close();
      await mcp.close();
      await stopTracing();
      await otlp.close();
    }
  });
});
