import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { ADMIN, APPROVER, KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startReceiver, WEBHOOK_SECRET } from './fixtures/webhookReceiver.js';
import { canonicalSha256 } from '../src/util/ids.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('approvals', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  const tool = { type: 'mcp', server_label: 'fx' };
  const args = { text: 'needs ok' };

  async function setup(o: { env?: Record<string, string>; approval?: object; tuning?: object } = {}) {
    mcp = await startMcpFixture();
    b = await startBroker({
      env: o.env,
      tuning: o.tuning,
      servers: [
        record('fx', mcp.url, { require_approval: 'always', approval: o.approval ?? { mode: 'caller' } }),
        record('other', mcp.url.replace('/mcp', '/mcp?x=1'), { require_approval: 'always' }),
      ],
    });
  }
  afterEach(async () => {
    await b?.close();
    await mcp?.close();
  });

  const request = async (key = KEY_A, a: object = args, name = 'echo') => {
    const r = await b.call('POST', '/v1/mcp/call', { token: key, body: { tool, name, arguments: a } });
    expect(r.body.type).toBe('mcp_approval_request');
    return r.body.id as string;
  };
  const decide = (id: string, body: object, token: string = APPROVER) => b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token, body });
  const execute = (id: string, extra: object = {}, key = KEY_A) =>
    b.call('POST', '/v1/mcp/call', { token: key, body: { tool, name: 'echo', approval_request_id: id, ...extra } });

  it('caller mode: request → caller approves → the stored arguments run once', async () => {
    await setup();
    const id = await request();
    expect(mcp.counters.calls.echo).toBeUndefined();
    const got = await b.call('GET', `/v1/mcp/approvals/${id}`);
    expect(got.body).toEqual({
      id,
      status: 'pending',
      server_label: 'fx',
      name: 'echo',
      arguments: JSON.stringify(args),
      arguments_sha256: canonicalSha256(args),
      created_at: expect.any(Number),
      expires_at: got.body.created_at + 900,
      decided_at: null,
      reason: null,
    });
    const pending = await execute(id);
    expect(pending.status).toBe(409);
    expect(pending.body.error.code).toBe('approval_pending');
    expect(pending.headers.get('x-should-retry')).toBe('false');

    const ok = await decide(id, { approve: true }, KEY_A);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', decided_at: expect.any(Number) });

    const ran = await execute(id);
    expect(ran.status).toBe(200);
    expect(ran.body).toMatchObject({ type: 'mcp_call', status: 'completed', output: 'echo: needs ok', approval_request_id: id, arguments: JSON.stringify(args) });
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`)).body.status).toBe('executed');

    const again = await execute(id);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ type: 'conflict_error', code: 'approval_already_used' });
    expect(again.headers.get('x-should-retry')).toBe('false');
    expect(mcp.counters.calls.echo).toBe(1);
  });

  it('an identical repeat call creates a new request', async () => {
    await setup();
    expect(await request()).not.toBe(await request());
  });

  it('execution runs the stored arguments; given arguments must hash to them', async () => {
    await setup();
    const id = await request();
    await decide(id, { approve: true });
    const changed = await execute(id, { arguments: { text: 'evil' } });
    expect(changed.status).toBe(409);
    expect(changed.body.error.code).toBe('approval_mismatch');
    const otherTool = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'whoami', approval_request_id: id } });
    expect(otherTool.status).toBe(409);
    expect(otherTool.body.error.code).toBe('approval_mismatch');
    const otherServer = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'other' }, name: 'echo', approval_request_id: id } });
    expect(otherServer.status).toBe(409);
    expect(otherServer.body.error.code).toBe('approval_mismatch');
    expect(mcp.counters.calls.echo).toBeUndefined();
    const same = await execute(id, { arguments: JSON.stringify({ text: 'needs ok' }) });
    expect(same.body).toMatchObject({ status: 'completed', output: 'echo: needs ok' });
  });

  it('twenty concurrent executions of one approval reach the MCP server once', async () => {
    await setup();
    const id = await request();
    await decide(id, { approve: true });
    const all = await Promise.all(Array.from({ length: 20 }, () => execute(id)));
    expect(all.filter((r) => r.status === 200)).toHaveLength(1);
    expect(all.filter((r) => r.status === 409 && r.body.error.code === 'approval_already_used')).toHaveLength(19);
    expect(mcp.counters.calls.echo).toBe(1);
  });

  it('another key sees 404 for the id everywhere', async () => {
    await setup();
    const id = await request(KEY_A);
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: KEY_B })).status).toBe(404);
    expect((await decide(id, { approve: true }, KEY_B)).status).toBe(404);
    await decide(id, { approve: true });
    const r = await execute(id, {}, KEY_B);
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ type: 'not_found_error', code: 'not_found' });
    expect((await b.call('GET', '/v1/mcp/approvals/mcpr_00000000000000000000000000000000')).status).toBe(404);
    expect((await b.call('GET', '/v1/mcp/approvals/%00bad')).status).toBe(404);
    expect((await execute('mcpr_nope')).status).toBe(404);
  });

  it('decisions are idempotent; a conflicting one is 409; a wrong hash is 409', async () => {
    await setup();
    const id = await request();
    const hash = canonicalSha256(args);
    const bad = await decide(id, { approve: true, arguments_sha256: '0'.repeat(64) });
    expect(bad.status).toBe(409);
    expect(bad.body.error.code).toBe('approval_mismatch');
    const first = await decide(id, { approve: true, arguments_sha256: hash, reason: 'fine' });
    expect(first.body).toMatchObject({ status: 'approved', reason: 'fine' });
    const same = await decide(id, { approve: true });
    expect(same.status).toBe(200);
    expect(same.body).toEqual(first.body);
    const conflict = await decide(id, { approve: false });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error.code).toBe('decision_conflict');
    expect(conflict.headers.get('x-should-retry')).toBe('false');
  });

  it('a caller denial has reason "cancelled by caller"; executing a denied request is 403', async () => {
    await setup();
    const id = await request();
    const d = await decide(id, { approve: false }, KEY_A);
    expect(d.body).toMatchObject({ status: 'denied', reason: 'cancelled by caller' });
    const r = await execute(id);
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ type: 'permission_error', code: 'approval_denied' });
  });

  it('webhook mode: only the approver may approve; the caller may still deny', async () => {
    await setup({ approval: { mode: 'webhook' } });
    const id = await request();
    const callerApprove = await decide(id, { approve: true }, KEY_A);
    expect(callerApprove.status).toBe(403);
    expect(callerApprove.body.error.code).toBe('approval_requires_approver');
    expect((await decide(id, { approve: true })).body.status).toBe('approved');
    const id2 = await request();
    expect((await decide(id2, { approve: false, reason: 'changed my mind' }, KEY_A)).body).toMatchObject({ status: 'denied', reason: 'changed my mind' });
  });

  it('expires after APPROVAL_TTL_S: 410 for decisions and execution', async () => {
    await setup({ env: { APPROVAL_TTL_S: '1' } });
    const id = await request();
    const approved = await request();
    await decide(approved, { approve: true });
    await sleep(1100);
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`)).body.status).toBe('expired');
    const d = await decide(id, { approve: true });
    expect(d.status).toBe(410);
    expect(d.body.error).toMatchObject({ type: 'invalid_request_error', code: 'approval_expired' });
    const e = await execute(approved);
    expect(e.status).toBe(410);
    expect(mcp.counters.calls.echo).toBeUndefined();
  });

  it('bounds pending requests per key with 429 and Retry-After', async () => {
    await setup({ env: { BROKER_MAX_PENDING_APPROVALS: '2' } });
    await request();
    await request();
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: args } });
    expect(r.status).toBe(429);
    expect(r.body.error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_pending_approvals' });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await request(KEY_B)).startsWith('mcpr_')).toBe(true); // per key
  });

  it('a long-polling GET returns as soon as the decision is recorded', async () => {
    await setup();
    const id = await request();
    const started = Date.now();
    const poll = b.call('GET', `/v1/mcp/approvals/${id}?wait_ms=20000`);
    await sleep(150);
    await decide(id, { approve: false });
    const r = await poll;
    expect(r.body.status).toBe('denied');
    expect(Date.now() - started).toBeLessThan(10_000);
    const timeout = await b.call('GET', `/v1/mcp/approvals/${await request()}?wait_ms=100`);
    expect(timeout.body.status).toBe('pending');
  });

  it('only the approver lists; bad bodies are 400', async () => {
    await setup();
    const id = await request();
    const list = await b.call('GET', '/v1/mcp/approvals?status=pending', { token: APPROVER });
    expect(list.body).toMatchObject({ object: 'list', data: [expect.objectContaining({ id, status: 'pending' })] });
    expect((await b.call('GET', '/v1/mcp/approvals?status=pending', { token: KEY_A })).status).toBe(401);
    expect((await b.call('GET', '/v1/mcp/approvals?status=nope', { token: APPROVER })).status).toBe(400);
    expect((await b.call('GET', '/v1/mcp/approvals', { token: ADMIN })).status).toBe(401);
    for (const body of [{}, { approve: 'yes' }, { approve: true, arguments_sha256: 'XYZ' }, { approve: true, extra: 1 }]) {
      const r = await decide(id, body);
      expect(r.status).toBe(400);
      expect(r.body.error.type).toBe('invalid_request_error');
    }
  });
});

describe('approval webhooks', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  afterEach(async () => {
    await b?.close();
    await mcp?.close();
  });
  const setup = async (hookUrl: string, tuning?: object) => {
    mcp = await startMcpFixture();
    b = await startBroker({
      tuning,
      servers: [record('fx', mcp.url, { require_approval: 'always', headers: { 'X-Secret': 'hdr-secret-value' }, approval: { mode: 'webhook', webhook_url: hookUrl, webhook_secret: WEBHOOK_SECRET } })],
    });
  };
  const request = async () => (await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'x' } } })).body.id as string;

  it('signs approval.requested per Standard Webhooks with origin only and no credentials', async () => {
    const rx = await startReceiver();
    try {
      await setup(rx.url);
      const id = await request();
      await rx.waitFor(1);
      const d = rx.deliveries[0]!;
      expect(d.verified).toBe(true);
      expect(d.body).toEqual({
        type: 'approval.requested',
        timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: {
          id,
          server_label: 'fx',
          server_origin: new URL(mcp.url).origin,
          name: 'echo',
          arguments: '{"text":"x"}',
          arguments_sha256: canonicalSha256({ text: 'x' }),
          expires_at: expect.any(Number),
          decision_url: `${b.instance.broker.d.publicUrl}/v1/mcp/approvals/${id}/decision`,
        },
      });
      const raw = JSON.stringify(d);
      for (const s of ['hdr-secret-value', KEY_A, mcp.url, WEBHOOK_SECRET]) expect(raw).not.toContain(s);
    } finally {
      await rx.close();
    }
  });

  it('retries 500, 500 then 200 with one webhook-id and fresh timestamps', async () => {
    const rx = await startReceiver([{ status: 500 }, { status: 503, headers: { 'retry-after': '1' } }, { status: 200 }]);
    try {
      await setup(rx.url, { webhookBaseDelayMs: 1000 });
      await request();
      await rx.waitFor(3, 15_000);
      await sleep(300);
      expect(rx.deliveries).toHaveLength(3);
      expect(new Set(rx.deliveries.map((d) => d.headers['webhook-id'])).size).toBe(1);
      expect(rx.deliveries.every((d) => d.verified)).toBe(true);
      const ts = rx.deliveries.map((d) => Number(d.headers['webhook-timestamp']));
      expect(ts[1]! >= ts[0]! && ts[2]! > ts[0]!).toBe(true);
    } finally {
      await rx.close();
    }
  }, 30_000);

  it('does not follow a 302 and does not retry it', async () => {
    const rx = await startReceiver([{ status: 302, headers: { location: '/elsewhere' } }]);
    try {
      await setup(rx.url, { webhookBaseDelayMs: 50 });
      await request();
      await rx.waitFor(1);
      await sleep(500);
      expect(rx.deliveries.map((d) => d.path)).toEqual(['/hook']);
    } finally {
      await rx.close();
    }
  });

  it('410 disables the endpoint until an admin change', async () => {
    const rx = await startReceiver([{ status: 410 }]);
    try {
      await setup(rx.url, { webhookBaseDelayMs: 50 });
      await request();
      await rx.waitFor(1);
      await sleep(100);
      await request();
      await sleep(300);
      expect(rx.deliveries).toHaveLength(1);
      await b.call('PUT', '/admin/servers/fx', {
        token: ADMIN,
        body: record('fx', mcp.url, { require_approval: 'always', approval: { mode: 'webhook', webhook_url: rx.url, webhook_secret: WEBHOOK_SECRET } }),
      });
      await request();
      await rx.waitFor(2);
    } finally {
      await rx.close();
    }
  });

  it('an approver answering the POST with {approve:true} decides at once', async () => {
    const rx = await startReceiver([{ status: 200, body: { approve: true, reason: 'auto' } }]);
    try {
      await setup(rx.url);
      const id = await request();
      const r = await b.call('GET', `/v1/mcp/approvals/${id}?wait_ms=5000`);
      expect(r.body).toMatchObject({ status: 'approved', reason: 'auto' });
      const ran = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', approval_request_id: id } });
      expect(ran.body).toMatchObject({ type: 'mcp_call', output: 'echo: x', approval_request_id: id });
    } finally {
      await rx.close();
    }
  });
});
