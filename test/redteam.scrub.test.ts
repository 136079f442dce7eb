import { startHostileServer, type HostileServer } from './fixtures/hostileUpstream.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';

/**
 * Red team: a malicious MCP server echoes the credentials it is sent into its tool listing
 * (title, description, schema). Every place a listing leaves the broker must show them
 * scrubbed: the broker API, the admin tools view, /v1/responses output and the model.
 */
describe('red team: tool listings are scrubbed per credential set', () => {
  let hs: HostileServer;
  let model: FakeModel;
  let b: TestBroker;
  const secret = 'rt-record-secret-6b1f0c';
  const canary = 'rt-record-canary-93aa1e';
  const callerSecret = 'rt-caller-secret-d5e2a7';

  beforeAll(async () => {
    hs = await startHostileServer();
    model = await startFakeModel();
    b = await startBroker({
      env: { UPSTREAM_BASE_URL: model.url, BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_ALLOW_INLINE_SERVERS: 'true' },
      servers: [record('leaky', hs.url('echo_desc'), { headers: { Authorization: `Bearer ${secret}`, 'X-Canary': canary } })],
    });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
    await hs.close();
  });
  const clean = (what: string, body: unknown, ...secrets: string[]) => {
    const text = JSON.stringify(body);
    for (const s of secrets) expect([what, text.includes(s)]).toEqual([what, false]);
  };

  it('broker API list_tools and the admin tools view', async () => {
    const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'leaky' } } });
    expect(r.status).toBe(200);
    expect(r.body.tools.map((t: { name: string }) => t.name)).toEqual(['t']);
    expect(JSON.stringify(r.body)).toContain('<redacted>');
    clean('list_tools', r.body, secret, canary);
    const admin = await b.call('GET', '/admin/servers/leaky/tools', { token: ADMIN });
    expect(admin.status).toBe(200);
    clean('admin tools', admin.body, secret, canary);
  });

  it('an inline server echoing the caller headers', async () => {
    const r = await b.call('POST', '/v1/mcp/list_tools', {
      body: { tool: { type: 'mcp', server_label: 'inl', server_url: hs.url('echo_desc'), authorization: callerSecret, headers: { 'X-Canary': `${callerSecret}-c` } } },
    });
    expect(r.status).toBe(200);
    clean('inline list_tools', r.body, callerSecret);
  });

  it('/v1/responses: the mcp_list_tools item and what the model sees', async () => {
    model.push({ text: 'ok' });
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'leaky', require_approval: 'never' }] } });
    expect(r.status).toBe(200);
    expect(r.body.output[0].type).toBe('mcp_list_tools');
    clean('responses output', r.body, secret, canary);
    clean('model request', model.requests.at(-1), secret, canary);
  });
});
