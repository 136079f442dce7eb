import { randomBytes } from 'node:crypto';
import { startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';

const CC_SECRET = `cc-secret-${randomBytes(12).toString('hex')}`;
const SECRET_KEY = randomBytes(32).toString('base64');

/**
 * Red team, OAuth tokens × outputs: a registered server with upstream OAuth whose tool
 * repeats the bearer token it was sent. The record's token is the broker's credential for
 * that server: it must be scrubbed from outputs like a static Authorization header is.
 */
describe('red team: upstream OAuth tokens never reach callers', () => {
  let as: AuthServer;
  let mcp: OAuthMcpServer;
  let model: FakeModel;
  let b: TestBroker;

  beforeAll(async () => {
    as = await startAuthServer({
      accessTokenTtlS: 300,
      clients: [{ client_id: 'cc-client', client_secret: CC_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'mcp:tools' }],
    });
    mcp = await startOAuthMcpServer({ issuer: as.issuer, leakyTool: true });
    model = await startFakeModel();
    b = await startBroker({
      env: { BROKER_SECRET_KEY: SECRET_KEY, BROKER_PUBLIC_URL: 'http://127.0.0.1:1', UPSTREAM_BASE_URL: model.url },
      processEnv: { CC_SECRET },
      servers: [record('cc', mcp.url, { oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' } })],
    });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
    await mcp.close();
    await as.close();
  });

  const expectClean = (where: string, value: unknown) => {
    const text = JSON.stringify(value);
    const tokens = [...new Set(mcp.stats.tokens)];
    expect(tokens.length).toBeGreaterThan(0);
    for (const t of tokens) expect([where, text.includes(t)]).toEqual([where, false]);
    expect([where, /eyJ[A-Za-z0-9_-]{10,}\.eyJ/.test(text)]).toEqual([where, false]);
  };

  it('broker API: the output and the tool error of a server echoing its token', async () => {
    const ok = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'cc', require_approval: 'never' }, name: 'leak_token', arguments: {} } });
    expect(ok.body).toMatchObject({ type: 'mcp_call', status: 'completed' });
    expect(ok.body.output).toMatch(/^you sent Bearer /);
    expectClean('output', ok.body);
    const failed = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'cc', require_approval: 'never' }, name: 'leak_token', arguments: { fail: true } } });
    expect(failed.body.status).toBe('failed');
    expectClean('tool error', failed.body);
  });

  it('/v1/responses: neither the caller nor the model sees the token', async () => {
    model.push({ calls: [{ name: 'leak_token', arguments: {} }] }, { text: 'done' });
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'cc', require_approval: 'never' }] } });
    expect(r.status).toBe(200);
    expect(r.body.output.some((i: { type: string }) => i.type === 'mcp_call')).toBe(true);
    expectClean('response', r.body);
    expectClean('model', model.requests);
    expectClean('admin view', (await b.call('GET', '/admin/servers/cc', { token: ADMIN })).body);
    expectClean('logs', b.logs);
  });
});
