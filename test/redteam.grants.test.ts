import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, APPROVER, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startReceiver, WEBHOOK_SECRET } from './fixtures/webhookReceiver.js';

const until = async (cond: () => Promise<boolean> | boolean, ms = 5000, what = 'condition') => {
  for (const end = Date.now() + ms; !(await cond()); ) {
    if (Date.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const TERMINAL = ['completed', 'failed', 'cancelled', 'incomplete'];
/** A run whose key was deleted ends failed (`api_key_deleted`), which the broker logs. */
const stopped = (b: TestBroker) => b.logs.some((l) => l.includes('api_key_deleted'));

/**
 * Red team, seams between named keys and background responses: key B (tenant B) against
 * key A's background work, and A's own background work after an admin deletes or narrows A.
 */
describe('red team: grants × background responses', () => {
  let crm: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let keyA: string;
  let keyB: string;
  const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });
  const crmTool = { type: 'mcp', server_label: 'crm', require_approval: 'never' };
  const get = async (id: string, token: string) => (await b.call('GET', `/v1/responses/${id}`, { token })).body;

  beforeEach(async () => {
    crm = await startMcpFixture();
    model = await startFakeModel();
    b = await startBroker({ env: { UPSTREAM_BASE_URL: model.url }, servers: [record('crm', crm.url), record('dice', crm.url)] });
    keyA = (await admin('POST', '/admin/keys', { name: 'tenant-a', grants: [{ server_label: 'crm' }] })).body.key;
    keyB = (await admin('POST', '/admin/keys', { name: 'tenant-b', grants: [{ server_label: 'dice' }] })).body.key;
  });
  afterEach(async () => {
    await b.close();
    await model.close();
    await crm.close();
  });

  it("key B cannot read, stream, list input of, cancel, delete or continue key A's background response", async () => {
    model.push({ text: 'slow', delayMs: 800 });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'secret-a', tools: [crmTool], background: true } });
    expect(started.status).toBe(200);
    const id = started.body.id as string;
    const missing = 'resp_' + '0'.repeat(48);
    for (const [method, path] of [
      ['GET', `/v1/responses/${id}`],
      ['GET', `/v1/responses/${id}?stream=true&starting_after=-1`],
      ['GET', `/v1/responses/${id}/input_items`],
      ['POST', `/v1/responses/${id}/cancel`],
      ['DELETE', `/v1/responses/${id}`],
    ] as const) {
      const r = await b.call(method, path, { token: keyB });
      const m = await b.call(method, path.replace(id, missing), { token: keyB });
      expect([path, r.status, r.body.error?.code]).toEqual([path, 404, 'not_found']);
      expect(r.body.error.message.replace(id, 'X')).toBe(m.body.error.message.replace(missing, 'X'));
    }
    const cont = await b.call('POST', '/v1/responses', { token: keyB, body: { model: 'm', input: 'x', previous_response_id: id } });
    expect(cont.status).toBe(400);
    expect(cont.body.error.param).toBe('previous_response_id');
    // A's run was not disturbed by any of it.
    await until(async () => TERMINAL.includes((await get(id, keyA)).status), 8000, 'A finished');
    expect((await get(id, keyA)).status).toBe('completed');
  });

  it("a deleted key's running background response stops reaching its servers", async () => {
    // Turn 1 is slow: the admin deletes key A meanwhile; turn 1 then asks for a crm call.
    model.push({ calls: [{ name: 'echo', arguments: { text: 'after delete' } }], delayMs: 700 }, { text: 'done' });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'x', tools: [crmTool], background: true } });
    expect(started.status).toBe(200);
    await until(() => model.requests.length >= 1, 5000, 'model reached');
    expect((await admin('DELETE', '/admin/keys/tenant-a')).status).toBe(200);
    // The deleted key cannot look at it any more: watch the model, whose second turn follows the (refused) call.
    await until(() => stopped(b) || crm.counters.calls.echo !== undefined, 8000, 'run ended');
    expect(crm.counters.calls.echo).toBeUndefined();
  });

  it("a deleted key's background response stops at its next model turn: it ends failed, the model is not asked again", async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 600 } }] }, { text: 'never asked' });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'x', tools: [crmTool], background: true } });
    const id = started.body.id as string;
    await until(() => (crm.counters.calls.slow ?? 0) >= 1, 5000, 'slow call started');
    expect((await admin('DELETE', '/admin/keys/tenant-a')).status).toBe(200);
    // Nobody can read it any more (its key is gone): the model shows whether it went on.
    await until(() => stopped(b), 8000, 'run ended');
    expect(model.requests.length).toBe(1);
    expect((await b.call('GET', `/v1/responses/${id}`, { token: keyB })).status).toBe(404);
  });

  it('a key narrowed while its background response runs: the narrowed grant applies to later calls', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'after narrowing' } }], delayMs: 700 }, { text: 'done' });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'x', tools: [crmTool], background: true } });
    const id = started.body.id as string;
    await until(() => model.requests.length >= 1, 5000, 'model reached');
    const put = await admin('PUT', '/admin/keys/tenant-a', { grants: [{ server_label: 'crm', allowed_tools: ['add'] }] });
    expect(put.status).toBe(200);
    await until(async () => TERMINAL.includes((await get(id, keyA)).status), 8000, 'A finished');
    expect(crm.counters.calls.echo).toBeUndefined();
    const done = await get(id, keyA);
    const call = done.output.find((i: { type: string }) => i.type === 'mcp_call');
    expect(call?.error).toBeTruthy();
  });

  it('a streamed background run of a deleted key: the resume stream is refused to the deleted key', async () => {
    model.push({ text: 'slow', delayMs: 600 });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'x', background: true } });
    const id = started.body.id as string;
    await admin('DELETE', '/admin/keys/tenant-a');
    const res = await fetch(`${b.url}/v1/responses/${id}?stream=true&starting_after=-1`, { headers: { authorization: `Bearer ${keyA}` } });
    expect(res.status).toBe(401);
    await res.text();
  });
});

describe('red team: grants × approvals', () => {
  let crm: McpFixture;
  let model: FakeModel;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let b: TestBroker;
  let keyA: string;
  let keyB: string;
  const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });

  beforeEach(async () => {
    crm = await startMcpFixture();
    model = await startFakeModel();
    rx = await startReceiver([]);
    b = await startBroker({
      env: { UPSTREAM_BASE_URL: model.url },
      servers: [
        record('crm', crm.url, { require_approval: 'always' }),
        record('hooked', crm.url, { require_approval: 'always', approval: { mode: 'webhook', webhook_url: rx.url, webhook_secret: WEBHOOK_SECRET, wait_ms: 6000 } }),
        record('dice', crm.url, { require_approval: 'always' }),
      ],
    });
    keyA = (await admin('POST', '/admin/keys', { name: 'tenant-a', grants: [{ server_label: 'crm' }, { server_label: 'hooked' }] })).body.key;
    keyB = (await admin('POST', '/admin/keys', { name: 'tenant-b', grants: [{ server_label: 'dice' }] })).body.key;
  });
  afterEach(async () => {
    await b.close();
    await rx.close();
    await model.close();
    await crm.close();
  });

  it("B cannot read, decide or execute A's approval, nor answer it in /v1/responses; crm runs nothing", async () => {
    const asked = await b.call('POST', '/v1/mcp/call', { token: keyA, body: { tool: { type: 'mcp', server_label: 'crm' }, name: 'echo', arguments: { text: 'a' } } });
    expect(asked.body.type).toBe('mcp_approval_request');
    const id = asked.body.id as string;
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: keyB })).status).toBe(404);
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: keyB, body: { approve: true } })).status).toBe(404);
    for (const label of ['dice', 'crm']) {
      const r = await b.call('POST', '/v1/mcp/call', { token: keyB, body: { tool: { type: 'mcp', server_label: label }, name: 'echo', approval_request_id: id } });
      expect([label, r.status < 500, r.body.output ?? null]).toEqual([label, true, null]);
    }
    // Replayed in /v1/responses input, naming crm (ungranted) and then dice (granted, but the approval is A's and for crm).
    for (const label of ['crm', 'dice']) {
      const input = [
        { type: 'mcp_approval_request', id, server_label: label, name: 'echo', arguments: '{"text":"a"}' },
        { type: 'mcp_approval_response', approval_request_id: id, approve: true },
      ];
      const r = await b.call('POST', '/v1/responses', { token: keyB, body: { model: 'm', input, tools: [{ type: 'mcp', server_label: label }] } });
      expect([label, r.status]).toEqual([label, 400]);
    }
    expect(crm.counters.calls.echo).toBeUndefined();
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: keyA })).body.status).toBe('pending');
  });

  it("a background run waiting for the approver: its key is deleted, the approver approves, nothing runs", async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'approved after delete' } }] }, { text: 'done' });
    const started = await b.call('POST', '/v1/responses', { token: keyA, body: { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'hooked' }], background: true } });
    expect(started.status).toBe(200);
    await rx.waitFor(1, 5000);
    const pending = await b.call('GET', '/v1/mcp/approvals?status=pending', { token: APPROVER });
    const id = pending.body.data[0].id as string;
    expect((await admin('DELETE', '/admin/keys/tenant-a')).status).toBe(200);
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: APPROVER, body: { approve: true } })).status).toBe(200);
    await until(() => stopped(b) || crm.counters.calls.echo !== undefined, 8000, 'run ended');
    expect(crm.counters.calls.echo).toBeUndefined();
  });
});
