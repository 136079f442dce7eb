import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';

const CC_SECRET = `cc-secret-${randomBytes(12).toString('hex')}`;
const SECRET_KEY = randomBytes(32).toString('base64');

/**
 * Red team, OAuth tokens × failures: a registered server with upstream OAuth that fails
 * `initialize`, `tools/list` or `tools/call` with an error echoing every bearer token it was
 * sent (raw, in a header dump, URL-encoded, in the error's data). The token the broker used —
 * and, after a renewal, the old one next to the new one — must not reach a 424, an item's
 * error, Responses' output, the model, the admin status (last_error) or the logs.
 */
describe('red team: upstream OAuth tokens never reach callers through failure texts', () => {
  let as: AuthServer;
  let lst: OAuthMcpServer;
  let init: OAuthMcpServer;
  let model: FakeModel;
  let b: TestBroker;
  const oauth = { grant: 'client_credentials' as const, client_id: 'cc-client', client_secret: '${CC_SECRET}' };

  beforeAll(async () => {
    as = await startAuthServer({
      accessTokenTtlS: 300,
      clients: [{ client_id: 'cc-client', client_secret: CC_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'mcp:tools' }],
    });
    lst = await startOAuthMcpServer({ issuer: as.issuer });
    init = await startOAuthMcpServer({ issuer: as.issuer });
    model = await startFakeModel();
    b = await startBroker({
      env: { BROKER_SECRET_KEY: SECRET_KEY, BROKER_PUBLIC_URL: 'http://127.0.0.1:1', UPSTREAM_BASE_URL: model.url },
      processEnv: { CC_SECRET },
      servers: [record('lst', lst.url, { oauth }), record('init', init.url, { oauth, protocol: '2025-11-25' }), record('auto', init.url, { oauth })],
    });
  });
  afterAll(async () => {
    await b?.close();
    await model?.close();
    await lst?.close();
    await init?.close();
    await as?.close();
  });

  const tokensOf = (...servers: OAuthMcpServer[]) => [...new Set(servers.flatMap((s) => s.stats.tokens))];
  const expectClean = (where: string, value: unknown, tokens: string[]) => {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) {
      for (const form of [t, encodeURIComponent(t), t.slice(0, 40)]) expect([where, text.includes(form)]).toEqual([where, false]);
    }
    expect([where, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(text)]).toEqual([where, false]);
  };
  const listTools = (label: string) => b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: label } } });

  it('tools/list failing with the token: 424 (broker API and /v1/responses), last_error, logs', async () => {
    lst.leakOn.add('tools/list');
    const r = await listTools('lst');
    expect(r.status).toBe(424);
    expect(r.body.error.message).toMatch(/^Error retrieving tool list from MCP server: 'lst'\. MCP error -32603: tools\/list refused/);
    expect(r.body.error.message).toContain('<redacted>');
    expect(lst.methods).toContain('tools/list');
    expectClean('list_tools 424', r.body, tokensOf(lst));

    const call = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'lst', require_approval: 'never' }, name: 'whoami', arguments: {} } });
    expect(call.status).toBe(424);
    expectClean('call 424', call.body, tokensOf(lst));

    const resp = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'lst', require_approval: 'never' }] } });
    expect(resp.status).toBe(424);
    expectClean('responses 424', resp.body, tokensOf(lst));

    const admin = await b.call('GET', '/admin/servers/lst', { token: ADMIN });
    expect(admin.status).toBe(200);
    expect(JSON.stringify(admin.body)).toContain('tools/list refused');
    expectClean('admin view', admin.body, tokensOf(lst));
    expectClean('logs', b.logs.join('\n'), tokensOf(lst));
  });

  it.each([
    ['2025-11-25', 'initialize', 'init'],
    ['auto', 'server/discover', 'auto'],
  ])('session set-up failing with the token (protocol %s, %s: an HTTP 500 with a JSON-RPC error body)', async (_protocol, method, label) => {
    init.leakOn.add(method);
    init.leakOn.add('initialize');
    const r = await listTools(label);
    expect(r.status).toBe(424);
    expect(init.methods).toContain(method);
    expect(init.stats.tokens.length).toBeGreaterThan(0);
    expectClean('initialize 424', r.body, tokensOf(init));
    const admin = await b.call('GET', `/admin/servers/${label}`, { token: ADMIN });
    expectClean('admin view', admin.body, tokensOf(init));
    expectClean('logs', b.logs.join('\n'), tokensOf(init));
    init.leakOn.clear();
    expect((await listTools(label)).status).toBe(200);
  });

  it('after a renewal the old token and the new one are both scrubbed (listing and call failures)', async () => {
    const before = tokensOf(lst);
    expect(before.length).toBeGreaterThan(0);
    // The server revokes what it was sent: the broker renews (after its 2 s debounce) and retries.
    for (const t of before) lst.revoked.add(t);
    await new Promise((r) => setTimeout(r, 2100));
    const r = await listTools('lst');
    expect(r.status).toBe(424);
    const all = tokensOf(lst);
    expect(all.length).toBeGreaterThan(before.length);
    expectClean('424 after renewal', r.body, all);
    const admin = await b.call('GET', '/admin/servers/lst', { token: ADMIN });
    expectClean('admin view after renewal', admin.body, all);

    // A listing that works, then a tools/call failing with every token (item error, Responses, model).
    lst.leakOn.clear();
    expect((await listTools('lst')).status).toBe(200);
    lst.leakOn.add('tools/call');
    const call = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'lst', require_approval: 'never' }, name: 'whoami', arguments: {} } });
    expect(call.status).toBe(200);
    expect(call.body).toMatchObject({ type: 'mcp_call', status: 'failed', error: { type: 'mcp_protocol_error', code: -32603 } });
    expect(call.body.error.message).toContain('tools/call refused');
    expectClean('mcp_call error', call.body, tokensOf(lst));

    model.push({ calls: [{ name: 'whoami', arguments: {} }] }, { text: 'done' });
    const resp = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'lst', require_approval: 'never' }] } });
    expect(resp.status).toBe(200);
    expect(resp.body.output.some((i: { type: string; status?: string }) => i.type === 'mcp_call' && i.status === 'failed')).toBe(true);
    expectClean('responses output', resp.body, tokensOf(lst));
    expectClean('model', model.requests, tokensOf(lst));
    expectClean('logs', b.logs.join('\n'), tokensOf(lst, init));
  });
});

/**
 * SPEC §10: every upstream failure is logged once at warn, naming origins, never a URL path.
 * An OAuth server whose metadata fails: the path of its issuer (a tenant name here) must not
 * reach the log, the 424 or the admin status, and the failure is one warn line.
 */
describe('an OAuth failure is logged once, with origins only', () => {
  it('authorization server metadata answering 500', async () => {
    const tenant = `tenant-${randomBytes(6).toString('hex')}`;
    let port = 0;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url!.startsWith('/.well-known/oauth-protected-resource')) {
          res.writeHead(200, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ resource: `http://127.0.0.1:${port}/mcp/${tenant}`, authorization_servers: [`http://127.0.0.1:${port}/${tenant}`] }));
        }
        if (req.url!.startsWith('/.well-known/')) {
          res.writeHead(500);
          return res.end();
        }
        res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="http://127.0.0.1:${port}/.well-known/oauth-protected-resource/mcp/${tenant}"` });
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    const b = await startBroker({
      env: { BROKER_SECRET_KEY: SECRET_KEY, BROKER_PUBLIC_URL: 'http://127.0.0.1:1' },
      processEnv: { CC_SECRET },
      servers: [record('crm', `http://127.0.0.1:${port}/mcp/${tenant}`, { oauth: { grant: 'client_credentials', client_id: 'broker', client_secret: '${CC_SECRET}' } })],
    });
    try {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'crm' } } });
      expect(r.status).toBe(424);
      const view = await b.call('GET', '/admin/servers/crm', { token: ADMIN });
      const warns = b.logs.flatMap((l) => l.split('\n')).filter((l) => l.includes('"level":40'));
      expect(warns).toHaveLength(1);
      expect(warns[0]).toContain('"server_label":"crm"');
      for (const [where, text] of [['logs', b.logs.join('')], ['424', JSON.stringify(r.body)], ['status', JSON.stringify(view.body.status)]] as const) {
        expect([where, text.includes(tenant)]).toEqual([where, false]);
      }
      expect(r.body.error.message).toContain(`http://127.0.0.1:${port}`);
    } finally {
      await b.close();
      await new Promise((r) => server.close(r));
    }
  });
});
