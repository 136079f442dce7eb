import OpenAI from 'openai';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';

/**
 * Two tenants: key A is granted `crm` (its own MCP server) and `dice`; key B only `dice`.
 * B must never reach crm: not its listing, tools, approvals or responses — and the crm
 * server must see nothing at all from B.
 */
describe('grants: key B never reaches what only key A is granted', () => {
  let crm: McpFixture;
  let dice: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let keyA: string;
  let keyB: string;
  const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });
  const tool = (label: string, extra: Record<string, unknown> = {}) => ({ type: 'mcp', server_label: label, ...extra });
  const list = (token: string, label: string, extra?: Record<string, unknown>) => b.call('POST', '/v1/mcp/list_tools', { token, body: { tool: tool(label, extra) } });
  const call = (token: string, label: string, name: string, args?: unknown, extra: Record<string, unknown> = {}) =>
    b.call('POST', '/v1/mcp/call', { token, body: { tool: tool(label), name, ...(args === undefined ? {} : { arguments: args }), ...extra } });
  const crmSeen = () => crm.counters.headers.length;
  const names = (item: { tools: Array<{ name: string }> }) => item.tools.map((t) => t.name).sort();

  beforeEach(async () => {
    crm = await startMcpFixture();
    dice = await startMcpFixture();
    model = await startFakeModel();
    b = await startBroker({
      env: { UPSTREAM_BASE_URL: model.url, BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true' },
      servers: [record('crm', crm.url), record('crm-gated', crm.url, { require_approval: 'always' }), record('dice', dice.url)],
    });
    keyA = (await admin('POST', '/admin/keys', { name: 'tenant-a', grants: [{ server_label: 'crm' }, { server_label: 'CRM-gated' }, { server_label: 'dice' }] })).body.key;
    keyB = (await admin('POST', '/admin/keys', { name: 'tenant-b', grants: [{ server_label: 'dice' }] })).body.key;
  });
  afterEach(async () => {
    await b.close();
    await model.close();
    await crm.close();
    await dice.close();
  });

  it('listing: an ungranted label is the same 404 as a missing one; crm sees nothing', async () => {
    expect((await list(keyA, 'crm')).status).toBe(200);
    const before = crmSeen();
    const hidden = await list(keyB, 'crm');
    const missing = await list(keyB, 'nope');
    expect(hidden.status).toBe(404);
    expect(hidden.body).toEqual({ error: { ...missing.body.error, message: missing.body.error.message.replace("'nope'", "'crm'") } });
    expect(hidden.body.error).toMatchObject({ type: 'not_found_error', code: 'unknown_server_label', param: 'tool.server_label' });
    expect([...hidden.headers.keys()].sort()).toEqual([...missing.headers.keys()].sort());
    expect((await list(keyB, 'dice')).status).toBe(200);
    expect(crmSeen()).toBe(before);
  });

  it('calls: B cannot call crm (nothing sent); A can; BROKER_API_KEYS still reach everything', async () => {
    const before = crmSeen();
    const r = await call(keyB, 'crm', 'echo', { text: 'from b' });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('unknown_server_label');
    expect(crmSeen()).toBe(before);
    expect(crm.counters.calls.echo).toBeUndefined();
    expect((await call(keyA, 'crm', 'echo', { text: 'a' })).body).toMatchObject({ type: 'mcp_call', output: 'echo: a', status: 'completed' });
    expect((await call(KEY_A, 'crm', 'echo', { text: 'env' })).body).toMatchObject({ output: 'echo: env' });
    expect((await call(keyB, 'dice', 'echo', { text: 'b' })).body).toMatchObject({ output: 'echo: b' });
  });

  it('a server_url with an ungranted registered label is an inline server, refused without allow_inline_servers', async () => {
    for (const label of ['crm', 'nope']) {
      const r = await list(keyB, label, { server_url: crm.url });
      expect(r.status).toBe(403);
      expect(r.body.error).toEqual({ type: 'permission_error', code: 'permission_denied', param: 'tool.server_url', message: expect.any(String) });
    }
    // A granted label with a server_url is still the usual conflict.
    expect((await list(keyB, 'dice', { server_url: dice.url })).body.error.code).toBe('server_label_conflict');
    expect(crm.counters.headers.length).toBe(0);
  });

  it('inline servers only with allow_inline_servers', async () => {
    const inl = { server_url: crm.url, require_approval: 'never' };
    const c = (await admin('POST', '/admin/keys', { name: 'inliner', grants: [], allow_inline_servers: true })).body.key;
    const r = await b.call('POST', '/v1/mcp/call', { token: c, body: { tool: tool('mine', inl), name: 'echo', arguments: { text: 'inline' } } });
    expect(r.body).toMatchObject({ type: 'mcp_call', output: 'echo: inline' });
    // Its grants are empty: registered servers stay invisible, even crm through its own URL label.
    expect((await list(c, 'dice')).body.error.code).toBe('unknown_server_label');
    const refused = await b.call('POST', '/v1/mcp/call', { token: keyB, body: { tool: tool('mine', inl), name: 'echo', arguments: { text: 'inline' } } });
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'permission_denied', param: 'tool.server_url' });
    expect(crm.counters.calls.echo).toBe(1);
    // In /v1/responses the param names the tool.
    const resp = await b.call('POST', '/v1/responses', { token: keyB, body: { model: 'm', input: 'x', tools: [tool('mine', inl)] } });
    expect(resp.status).toBe(403);
    expect(resp.body.error).toMatchObject({ type: 'permission_error', code: 'permission_denied', param: 'tools[0].server_url' });
    expect(model.requests).toHaveLength(0);
  });

  it('the broker-wide switch still wins: BROKER_ALLOW_INLINE_SERVERS=false → 400 inline_servers_disabled', async () => {
    const path = b.configPath;
    await b.close();
    b = await startBroker({ env: { BROKER_CONFIG: path, BROKER_ALLOW_INLINE_SERVERS: 'false' } });
    const c = (await admin('POST', '/admin/keys', { name: 'inliner', grants: '*', allow_inline_servers: true })).body.key;
    const r = await list(c, 'mine', { server_url: crm.url });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('inline_servers_disabled');
  });

  it('approvals: B cannot read, decide or execute A’s; A creates, decides and executes', async () => {
    const req = await call(keyA, 'crm-gated', 'echo', { text: 'secret' });
    expect(req.body).toMatchObject({ type: 'mcp_approval_request', server_label: 'crm-gated', name: 'echo' });
    const id = req.body.id as string;
    const before = crmSeen();
    const calls = crm.counters.calls.echo ?? 0;

    const read = await b.call('GET', `/v1/mcp/approvals/${id}`, { token: keyB });
    const unknown = await b.call('GET', '/v1/mcp/approvals/mcpr_00000000000000000000000000000000', { token: keyB });
    expect(read.status).toBe(404);
    expect(read.body.error.code).toBe(unknown.body.error.code);
    expect((await b.call('GET', `/v1/mcp/approvals/${id}?wait_ms=50`, { token: keyB })).status).toBe(404);
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: keyB, body: { approve: true } })).status).toBe(404);
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: keyB, body: { approve: false } })).status).toBe(404);
    // Executing through crm-gated: not granted → unknown label; through dice (granted): not B's id.
    const viaCrm = await call(keyB, 'crm-gated', 'echo', undefined, { approval_request_id: id });
    expect(viaCrm.status).toBe(404);
    expect(viaCrm.body.error.code).toBe('unknown_server_label');
    const viaDice = await call(keyB, 'dice', 'echo', undefined, { approval_request_id: id });
    expect(viaDice.status).toBe(404);
    expect(viaDice.body.error.code).toBe('not_found');
    expect(crmSeen()).toBe(before);
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: keyA })).body.status).toBe('pending');

    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: keyA, body: { approve: true } })).body.status).toBe('approved');
    const ran = await call(keyA, 'crm-gated', 'echo', undefined, { approval_request_id: id });
    expect(ran.body).toMatchObject({ type: 'mcp_call', output: 'echo: secret', approval_request_id: id });
    expect(crm.counters.calls.echo).toBe(calls + 1);
  });

  it('a grant taken away hides the key’s own approvals and stops their execution', async () => {
    const id = (await call(keyA, 'crm-gated', 'echo', { text: 'x' })).body.id as string;
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: APPROVER, body: { approve: true } })).status).toBe(200);
    expect((await admin('PUT', '/admin/keys/tenant-a', { grants: [{ server_label: 'dice' }] })).status).toBe(200);
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: keyA })).status).toBe(404);
    expect((await b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: keyA, body: { approve: false } })).status).toBe(404);
    const ran = await call(keyA, 'crm-gated', 'echo', undefined, { approval_request_id: id });
    expect(ran.status).toBe(404);
    expect(ran.body.error.code).toBe('unknown_server_label');
    expect(crm.counters.calls.echo).toBeUndefined();
    // The approver still sees it.
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: APPROVER })).body.status).toBe('approved');
  });

  it('grant narrowing by allowed_tools: listing, calls (nothing sent), and with the caller layer', async () => {
    await admin('PUT', '/admin/keys/tenant-b', { grants: [{ server_label: 'dice', allowed_tools: { tool_names: ['echo', 'add', 'whoami'] } }] });
    expect(names((await list(keyB, 'dice')).body)).toEqual(['add', 'echo', 'whoami']);
    // The caller narrows further; it cannot widen.
    expect(names((await list(keyB, 'dice', { allowed_tools: ['echo', 'slow'] })).body)).toEqual(['echo']);
    expect(names((await list(keyB, 'dice', { allowed_tools: { read_only: true } })).body)).toEqual(['add', 'whoami']);
    const refused = await call(keyB, 'dice', 'slow', { ms: 1 });
    expect(refused.body).toMatchObject({ type: 'mcp_call', status: 'failed', error: { type: 'mcp_protocol_error', code: -32602 } });
    expect(dice.counters.calls.slow).toBeUndefined();
    // The record narrows too: all three layers hold.
    await admin('PUT', '/admin/servers/dice', record('dice', dice.url, { allowed_tools: { read_only: true } }));
    expect(names((await list(keyB, 'dice')).body)).toEqual(['add', 'whoami']);
    // Key A (no narrowing on dice) sees what the record allows.
    expect(names((await list(keyA, 'dice')).body)).toEqual(['add', 'picture', 'slow', 'whoami']);
  });

  it('grant narrowing by require_approval: the grant can require, never waive', async () => {
    await admin('PUT', '/admin/keys/tenant-b', { grants: [{ server_label: 'dice', require_approval: { never: { read_only: true } } }] });
    const free = await call(keyB, 'dice', 'add', { a: 1, b: 2 });
    expect(free.body).toMatchObject({ type: 'mcp_call', status: 'completed' });
    const gated = await call(keyB, 'dice', 'echo', { text: 'needs approval' });
    expect(gated.body.type).toBe('mcp_approval_request');
    expect(dice.counters.calls.echo).toBeUndefined();
    // The caller asking for "never" does not lower it.
    const stillGated = await b.call('POST', '/v1/mcp/call', { token: keyB, body: { tool: tool('dice', { require_approval: 'never' }), name: 'echo', arguments: { text: 'x' } } });
    expect(stillGated.body.type).toBe('mcp_approval_request');
    // A grant saying "never" cannot waive the record's "always".
    await admin('PUT', '/admin/keys/tenant-a', { grants: [{ server_label: 'crm-gated', require_approval: 'never' }] });
    expect((await call(keyA, 'crm-gated', 'echo', { text: 'x' })).body.type).toBe('mcp_approval_request');
  });

  it('max_pending_approvals per key; other keys keep their own bound', async () => {
    await admin('PUT', '/admin/keys/tenant-b', { grants: [{ server_label: 'dice', require_approval: 'always' }], max_pending_approvals: 2 });
    expect((await call(keyB, 'dice', 'echo', { text: '1' })).body.type).toBe('mcp_approval_request');
    expect((await call(keyB, 'dice', 'echo', { text: '2' })).body.type).toBe('mcp_approval_request');
    const third = await call(keyB, 'dice', 'echo', { text: '3' });
    expect(third.status).toBe(429);
    expect(third.body.error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_pending_approvals' });
    expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    for (let i = 0; i < 3; i++) expect((await call(keyA, 'crm-gated', 'echo', { text: String(i) })).body.type).toBe('mcp_approval_request');
  });

  it('/v1/responses: ungranted label, previous_response_id, response ids and approvals of A stay A’s', async () => {
    const clientA = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: keyA, maxRetries: 0 });
    model.push({ calls: [{ name: 'echo', arguments: { text: 'tenant a data' } }] }, { text: 'done' });
    const r1 = await clientA.responses.create({ model: 'm', input: 'go', tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] });
    expect(r1.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
    model.push({ calls: [{ name: 'echo', arguments: { text: 'gated' } }] });
    const r2 = await clientA.responses.create({ model: 'm', input: 'go', tools: [{ type: 'mcp', server_label: 'crm-gated' }] });
    const approval = r2.output.find((i) => i.type === 'mcp_approval_request') as { id: string };
    expect(approval.id).toMatch(/^mcpr_/);
    const seen = crmSeen();
    const modelCalls = model.requests.length;

    const asB = (body: unknown) => b.call('POST', '/v1/responses', { token: keyB, body });
    const hidden = await asB({ model: 'm', input: 'x', tools: [tool('crm')] });
    const missing = await asB({ model: 'm', input: 'x', tools: [tool('nope')] });
    expect(hidden.status).toBe(400);
    expect(hidden.body.error).toMatchObject({ type: 'invalid_request_error', code: 'unknown_server_label', param: 'tools[0].server_label' });
    expect(hidden.body.error.message).toBe(missing.body.error.message.replace("'nope'", "'crm'"));
    const prev = await asB({ model: 'm', input: 'x', previous_response_id: r1.id, tools: [tool('dice')] });
    expect(prev.status).toBe(400);
    expect(prev.body.error.code).toBe('previous_response_not_found');
    for (const path of [`/v1/responses/${r1.id}`, `/v1/responses/${r1.id}/input_items`]) {
      expect((await b.call('GET', path, { token: keyB })).status).toBe(404);
    }
    expect((await b.call('DELETE', `/v1/responses/${r1.id}`, { token: keyB })).status).toBe(404);
    // A's approval request answered by B: with crm-gated (not granted) or with dice (granted).
    const answer = { type: 'mcp_approval_response', approval_request_id: approval.id, approve: true };
    const replayed = { type: 'mcp_approval_request', id: approval.id, server_label: 'crm-gated', name: 'echo', arguments: '{"text":"gated"}' };
    const viaCrm = await asB({ model: 'm', input: [replayed, answer], tools: [tool('crm-gated')] });
    expect(viaCrm.status).toBe(400);
    expect(viaCrm.body.error.type).toBe('invalid_request_error');
    const viaDice = await asB({ model: 'm', input: [{ ...replayed, server_label: 'dice' }, answer], tools: [tool('dice')] });
    expect(viaDice.status).toBe(400);
    const viaPrev = await asB({ model: 'm', previous_response_id: r2.id, input: [answer], tools: [tool('dice')] });
    expect(viaPrev.status).toBe(400);

    expect(crmSeen()).toBe(seen);
    expect(model.requests).toHaveLength(modelCalls);
    expect((await b.call('GET', `/v1/mcp/approvals/${approval.id}`, { token: keyA })).body.status).toBe('pending');
    expect((await b.call('GET', `/v1/responses/${r1.id}`, { token: keyA })).status).toBe(200);
  });

  it('/v1/responses: a narrowed grant applies to the tools and to a reused listing (previous_response_id)', async () => {
    const clientA = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: keyA, maxRetries: 0 });
    model.push({ text: 'first' });
    const r1 = await clientA.responses.create({ model: 'm', input: 'hi', tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] });
    expect(model.requests[0]!.body.tools.map((t: any) => t.function.name)).toEqual(expect.arrayContaining(['echo', 'add', 'slow']));
    await admin('PUT', '/admin/keys/tenant-a', { grants: [{ server_label: 'crm', allowed_tools: ['echo'], require_approval: 'always' }] });
    model.push({ calls: [{ name: 'echo', arguments: { text: 'y' } }] });
    const r2 = await clientA.responses.create({ model: 'm', input: 'again', previous_response_id: r1.id, tools: [{ type: 'mcp', server_label: 'crm', require_approval: 'never' }] });
    expect(model.requests[1]!.body.tools.map((t: any) => t.function.name)).toEqual(['echo']);
    expect(r2.output.map((i) => i.type)).toEqual(['mcp_approval_request']);
    expect((r2.tools[0] as any).require_approval).toBe('always');
    expect(crm.counters.calls.echo).toBeUndefined();
  });
});
