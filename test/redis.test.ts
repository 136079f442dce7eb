import OpenAI from 'openai';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';
import { startReceiver, WEBHOOK_SECRET } from './fixtures/webhookReceiver.js';
import { ADMIN, APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';

const until = async (cond: () => Promise<boolean> | boolean, ms = 3000) => {
  for (const end = Date.now() + ms; !(await cond()); ) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('several instances on one Redis', () => {
  let redis: RedisFixture;
  let mcp: McpFixture;
  let model: FakeModel;
  let a: TestBroker;
  let b: TestBroker;
  const tool = { type: 'mcp', server_label: 'fx' };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.close();
  });
  beforeEach(async () => {
    await redis.flush();
    mcp = await startMcpFixture();
    model = await startFakeModel();
    const env = { BROKER_STORE: redis.url, UPSTREAM_BASE_URL: model.url };
    const tuning = { webhookLeaseMs: 800, webhookPollMs: 50, webhookBaseDelayMs: 100 };
    a = await startBroker({ env, tuning, servers: [record('fx', mcp.url), record('gated', mcp.url, { require_approval: 'always' })] });
    b = await startBroker({ env, tuning, servers: [record('ignored', mcp.url)] });
  });
  afterEach(async () => {
    await a?.close();
    await b?.close();
    await model.close();
    await mcp.close();
  });

  it('imports servers.config.json only into an empty store', async () => {
    const labels = (await b.call('GET', '/admin/servers', { token: ADMIN })).body.data.map((s: { server_label: string }) => s.server_label).sort();
    expect(labels).toEqual(['fx', 'gated']);
  });

  it('a server registered on A is visible and used on B', async () => {
    const created = await a.call('POST', '/admin/servers', { token: ADMIN, body: record('late', mcp.url) });
    expect(created.status).toBe(201);
    await until(async () => (await b.call('GET', '/admin/servers/late', { token: ADMIN })).status === 200, 1000);
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'late' }, name: 'echo', arguments: { text: 'on b' } } });
    expect(r.body).toMatchObject({ status: 'completed', output: 'echo: on b' });
    const dup = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('LATE', mcp.url) });
    expect(dup.status).toBe(409);
  });

  it('a PUT on A drops the listing cached on B within a second', async () => {
    expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).headers.get('x-mcp-cache')).toBe('miss');
    expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).headers.get('x-mcp-cache')).toBe('hit');
    await a.call('PUT', '/admin/servers/fx', { token: ADMIN, body: record('fx', mcp.url, { allowed_tools: ['echo'] }) });
    await until(async () => (await b.call('GET', '/admin/servers/fx', { token: ADMIN })).body.allowed_tools?.[0] === 'echo', 1000);
    const after = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
    expect(after.headers.get('x-mcp-cache')).toBe('miss');
    expect(after.body.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
  });

  it('list_changed seen only by A drops the listing cached on B', async () => {
    await a.call('POST', '/v1/mcp/list_tools', { body: { tool } }); // A's session is the server's first
    await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
    expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).headers.get('x-mcp-cache')).toBe('hit');
    mcp.notifyFirstSession();
    await until(async () => (await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).headers.get('x-mcp-cache') === 'miss', 1000);
  });

  it('approval created on A, decided on B, executed on A; a long-poll on A sees B decide', async () => {
    const gated = { type: 'mcp', server_label: 'gated' };
    const req = await a.call('POST', '/v1/mcp/call', { body: { tool: gated, name: 'echo', arguments: { text: 'shared' } } });
    const poll = a.call('GET', `/v1/mcp/approvals/${req.body.id}?wait_ms=10000`);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    expect((await b.call('POST', `/v1/mcp/approvals/${req.body.id}/decision`, { token: APPROVER, body: { approve: true } })).body.status).toBe('approved');
    expect((await poll).body.status).toBe('approved');
    expect(Date.now() - started).toBeLessThan(1000);
    const run = await a.call('POST', '/v1/mcp/call', { body: { tool: gated, name: 'echo', approval_request_id: req.body.id } });
    expect(run.body).toMatchObject({ output: 'echo: shared', approval_request_id: req.body.id });
    expect((await b.call('GET', `/v1/mcp/approvals/${req.body.id}`)).body.status).toBe('executed');
  });

  it('twenty concurrent executions split across both instances reach the server once', async () => {
    const gated = { type: 'mcp', server_label: 'gated' };
    const req = await a.call('POST', '/v1/mcp/call', { body: { tool: gated, name: 'echo', arguments: { text: 'race' } } });
    await b.call('POST', `/v1/mcp/approvals/${req.body.id}/decision`, { token: APPROVER, body: { approve: true } });
    const all = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).call('POST', '/v1/mcp/call', { body: { tool: gated, name: 'echo', approval_request_id: req.body.id } })));
    expect(all.filter((r) => r.status === 200)).toHaveLength(1);
    expect(all.filter((r) => r.body.error?.code === 'approval_already_used')).toHaveLength(19);
    expect(mcp.counters.calls.echo).toBe(1);
  });

  it('a response created on A continues on B with previous_response_id, with no new listing', async () => {
    const ca = new OpenAI({ baseURL: `${a.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
    const cb = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
    model.push({ calls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: 'two' }, { text: 'still two' });
    const fx = { type: 'mcp' as const, server_label: 'fx', require_approval: 'never' as const };
    const r1 = await ca.responses.create({ model: 'm', input: 'add', tools: [fx] });
    const lists = mcp.counters.list;
    const r2 = await cb.responses.create({ model: 'm', input: 'and now?', tools: [fx], previous_response_id: r1.id });
    expect(r2.output.map((i) => i.type)).toEqual(['message']);
    expect(mcp.counters.list).toBe(lists);
    expect(model.requests[2]!.body.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'tool', 'assistant', 'user']);
    expect((await cb.responses.retrieve(r1.id)).id).toBe(r1.id);
  });

  it('each webhook event is delivered by one instance, and its retries survive that instance', async () => {
    const rx = await startReceiver([{ status: 503 }]);
    try {
      await a.call('POST', '/admin/servers', {
        token: ADMIN,
        body: record('hooked', mcp.url, { require_approval: 'always', approval: { mode: 'webhook', webhook_url: rx.url, webhook_secret: WEBHOOK_SECRET } }),
      });
      await until(async () => (await b.call('GET', '/admin/servers/hooked', { token: ADMIN })).status === 200, 1000);
      await a.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'hooked' }, name: 'echo', arguments: { text: 'w' } } });
      await rx.waitFor(1);
      await a.close(); // dies after the first (failed) attempt; B takes the retry
      a = undefined as unknown as TestBroker;
      await rx.waitFor(2, 8000);
      await new Promise((r) => setTimeout(r, 500));
      expect(rx.deliveries).toHaveLength(2);
      expect(rx.deliveries.every((d) => d.verified)).toBe(true);
      expect(new Set(rx.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
    } finally {
      await rx.close();
    }
  });
});

describe('Redis outage', () => {
  it('readyz 503 and store_unavailable while Redis is down; stateless calls go on; recovery after restart', async () => {
    const redis = await startRedis();
    const mcp = await startMcpFixture();
    const b = await startBroker({ env: { BROKER_STORE: redis.url }, servers: [record('fx', mcp.url), record('gated', mcp.url, { require_approval: 'always' })] });
    try {
      const tool = { type: 'mcp', server_label: 'fx' };
      const req = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', arguments: { text: 'x' } } });
      expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
      await redis.stop();
      await new Promise((r) => setTimeout(r, 300));
      const ready = await fetch(`${b.url}/readyz`);
      expect(ready.status).toBe(503);
      expect((await ready.json()).error.code).toBe('store_unavailable');
      const approval = await b.call('GET', `/v1/mcp/approvals/${req.body.id}`);
      expect(approval.status).toBe(503);
      expect(approval.body.error).toMatchObject({ type: 'server_error', code: 'store_unavailable' });
      const gated = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', arguments: { text: 'y' } } });
      expect(gated.status).toBe(503);
      const admin = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('new', mcp.url) });
      expect(admin.status).toBe(503);
      // A call that needs no stored state is still served.
      const free = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'z' } } });
      expect(free.body).toMatchObject({ status: 'completed', output: 'echo: z' });

      await redis.start();
      await until(async () => (await fetch(`${b.url}/readyz`)).status === 200, 8000);
      const back = await b.call('GET', `/v1/mcp/approvals/${req.body.id}`);
      expect(back.body.status).toBe('pending');
    } finally {
      await b.close();
      await mcp.close();
      await redis.close();
    }
  }, 30_000);
});
