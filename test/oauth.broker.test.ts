import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startBrokerProcess } from './fixtures/child.js';
import { driveAuthorization, startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';

jest.setTimeout(90_000);

const TTL_S = 4;
const CC_SECRET = `cc-secret-${randomBytes(12).toString('hex')}`;
const SECRET_KEY = randomBytes(32).toString('base64');
/** The callback origin handed to the authorization server; the test plays the browser. */
const PUBLIC = 'http://127.0.0.1:1';

let as: AuthServer;
let mcp: OAuthMcpServer;

beforeAll(async () => {
  as = await startAuthServer({
    accessTokenTtlS: TTL_S,
    clients: [{ client_id: 'cc-client', client_secret: CC_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'mcp:tools' }],
  });
  mcp = await startOAuthMcpServer({ issuer: as.issuer });
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const admin = { token: ADMIN };
const tool = (label: string) => ({ type: 'mcp', server_label: label });
const ccRecord = (label = 'cc') => record(label, mcp.url, { oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' } });

function start(extra: Parameters<typeof startBroker>[0] = {}): Promise<TestBroker> {
  return startBroker({
    ...extra,
    env: { BROKER_SECRET_KEY: SECRET_KEY, BROKER_PUBLIC_URL: PUBLIC, ...extra.env },
    processEnv: { CC_SECRET, ...extra.processEnv },
  });
}

/** Everything a leak could hide in: tokens the MCP server saw, the client secret. */
function secretsSeen(): string[] {
  return [...new Set(mcp.stats.tokens), CC_SECRET];
}

function expectNoSecrets(where: string, text: string) {
  for (const s of secretsSeen()) {
    if (text.includes(s)) throw new Error(`${where} contains a secret (${s.slice(0, 12)}…)`);
  }
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
}

/** SPEC §12: the tokens live in the registry file's "oauth" section, sealed; no other file holds them. */
function expectSealedInRegistryFile(configPath: string) {
  const text = readFileSync(configPath, 'utf8');
  expectNoSecrets('registry file', text);
  expect(statSync(configPath).mode & 0o777).toBe(0o600);
  const section = JSON.parse(text).oauth as Record<string, { v: string }>;
  // (The record's own oauth.client_secret is a ${NAME} reference, checked by expectNoSecrets.)
  expect(JSON.stringify(section)).not.toMatch(/access_token|client_secret|refresh_token|code_verifier/);
  expect(Object.keys(section).some((k) => k.endsWith(':tokens'))).toBe(true);
  for (const e of Object.values(section)) expect(e.v).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
  expect(existsSync(`${configPath}.oauth.json`)).toBe(false);
}

describe('client_credentials', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await start();
  });
  afterAll(() => b.close());

  test('registered with oauth: discovery, resource, token shared, renewed before expiry with no failed call', async () => {
    const created = await b.call('POST', '/admin/servers', { ...admin, body: ccRecord() });
    expect(created.status).toBe(201);
    expect(created.body.oauth).toEqual({ grant: 'client_credentials', client_id: 'cc-client', client_secret: '<redacted>' });

    const before = await as.stats();
    const list = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: tool('cc') } });
    expect(list.status).toBe(200);
    expect(list.body.tools.map((t: { name: string }) => t.name).sort()).toEqual(['echo', 'whoami']);
    for (let i = 0; i < 3; i++) {
      const r = await b.call('POST', '/v1/mcp/call', { body: { tool: tool('cc'), name: 'whoami', arguments: {} } });
      expect(r.status).toBe(200);
      expect(JSON.stringify(r.body)).toContain('authorized');
    }
    let stats = await as.stats();
    expect(stats.grants.client_credentials! - (before.grants.client_credentials ?? 0)).toBe(1);
    // RFC 8707: the protected-resource document's `resource`, exactly; the scope from the challenge.
    expect(stats.resources.at(-1)).toBe(mcp.resource);
    expect(stats.scopes.at(-1)).toBe('mcp:tools');
    expect(stats.authMethods.at(-1)).toBe('client_secret_basic');

    const view = await b.call('GET', '/admin/servers/cc', admin);
    expect(view.body.status.oauth).toMatchObject({ state: 'connected', scope: 'mcp:tools' });
    expect(view.body.status.oauth.expires_at).toBeGreaterThan(Date.now() / 1000);

    // Past the token's lifetime: renewed before the request goes out, so the server refuses nothing.
    const refusedBefore = mcp.stats.unauthorized;
    await sleep(TTL_S * 1000 + 300);
    const after = await b.call('POST', '/v1/mcp/call', { body: { tool: tool('cc'), name: 'echo', arguments: { text: 'later' } } });
    expect(after.status).toBe(200);
    expect(JSON.stringify(after.body)).toContain('echo: later');
    expect(mcp.stats.unauthorized).toBe(refusedBefore);
    stats = await as.stats();
    expect(stats.grants.client_credentials! - (before.grants.client_credentials ?? 0)).toBe(2);

    expectNoSecrets('views', JSON.stringify([(await b.call('GET', '/admin/servers', admin)).body, (await b.call('GET', '/admin/servers/cc', admin)).body]));
    expectNoSecrets('logs', b.logs.join(''));
    expectSealedInRegistryFile(b.configPath);
  });

  test("the record's token wins over a caller's authorization", async () => {
    const callerToken = `caller-${randomBytes(8).toString('hex')}`;
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { ...tool('cc'), authorization: callerToken }, name: 'whoami', arguments: {} } });
    expect(r.status).toBe(200);
    expect(mcp.stats.tokens).not.toContain(callerToken);
  });

  test('a record with both oauth and an Authorization header is refused', async () => {
    const r = await b.call('POST', '/admin/servers', {
      ...admin,
      body: { ...ccRecord('both'), headers: { authorization: 'Bearer static-token-123' } },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('oauth');
    expect(r.body.error.message).toMatch(/Authorization/);
  });

  test('a wrong client secret: 424 http_error 401, status error, the secret in no output', async () => {
    const bad = `wrong-${randomBytes(8).toString('hex')}`;
    const b2 = await start({ servers: [record('ccbad', mcp.url, { oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${BAD_SECRET}' } })], processEnv: { BAD_SECRET: bad } });
    try {
      const r = await b2.call('POST', '/v1/mcp/list_tools', { body: { tool: tool('ccbad') } });
      expect(r.status).toBe(424);
      expect(r.body.error.code).toBe('http_error');
      expect(r.body.error.message).toMatch(/OAuth/);
      const view = await b2.call('GET', '/admin/servers/ccbad', admin);
      expect(view.body.status.oauth.state).toBe('error');
      const everything = JSON.stringify([r.body, view.body]) + b2.logs.join('');
      expect(everything).not.toContain(bad);
    } finally {
      await b2.close();
    }
  });
});

describe('authorization_code', () => {
  let b: TestBroker;
  beforeAll(async () => {
    b = await start({ tuning: { oauthStateTtlMs: 1500 } });
  });
  afterAll(() => b.close());

  async function authorize(label: string) {
    const r = await b.call('POST', `/admin/servers/${label}/oauth/authorize`, admin);
    expect(r.status).toBe(200);
    return new URL(r.body.authorization_url);
  }
  /** The browser's last hop, to the broker's real address. */
  const toBroker = (cb: URL) => `${b.url}${cb.pathname}${cb.search}`;

  test('needs authorization → admin authorizes (DCR, PKCE S256) → connected; refresh with no failed call', async () => {
    expect((await b.call('POST', '/admin/servers', { ...admin, body: record('code', mcp.url, { oauth: { grant: 'authorization_code' } }) })).status).toBe(201);
    const denied = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: tool('code') } });
    expect(denied.status).toBe(424);
    expect(denied.body.error.code).toBe('http_error');
    expect(denied.body.error.message).toMatch(/401/);
    expect(denied.body.error.message).toMatch(/admin must authorize/);
    expect((await b.call('GET', '/admin/servers/code', admin)).body.status.oauth.state).toBe('needs_authorization');

    const before = await as.stats();
    const url = await authorize('code');
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');
    expect(url.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(url.searchParams.get('resource')).toBe(mcp.resource);
    expect(url.searchParams.get('redirect_uri')).toBe(`${PUBLIC}/oauth/callback`);
    const cb = await driveAuthorization(url.href, `${PUBLIC}/oauth/callback`);
    const done = await fetch(toBroker(cb));
    expect(done.status).toBe(200);
    expect(done.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    expect((await done.text()).toLowerCase()).toContain('connected');
    expect((await as.stats()).registrations - before.registrations).toBe(1);

    // The state is single use.
    const again = await fetch(toBroker(cb));
    expect(again.status).toBe(400);
    expect((await again.json()).error.param).toBe('state');

    const view = await b.call('GET', '/admin/servers/code', admin);
    expect(view.body.status.oauth).toMatchObject({ state: 'connected' });
    const call = await b.call('POST', '/v1/mcp/call', { body: { tool: tool('code'), name: 'echo', arguments: { text: 'code grant' } } });
    expect(call.status).toBe(200);
    expect(JSON.stringify(call.body)).toContain('echo: code grant');

    const refused = mcp.stats.unauthorized;
    const refreshes = (await as.stats()).grants.refresh_token ?? 0;
    await sleep(TTL_S * 1000 + 300);
    const later = await b.call('POST', '/v1/mcp/call', { body: { tool: tool('code'), name: 'whoami', arguments: {} } });
    expect(later.status).toBe(200);
    expect(mcp.stats.unauthorized).toBe(refused);
    expect((await as.stats()).grants.refresh_token ?? 0).toBe(refreshes + 1);

    const all = JSON.stringify([(await b.call('GET', '/admin/servers', admin)).body, (await b.call('GET', '/admin/servers/code', admin)).body]);
    expectNoSecrets('views', all);
    expectNoSecrets('logs', b.logs.join(''));
    expectSealedInRegistryFile(b.configPath);
  });

  test('unknown, missing and expired state are refused with 400', async () => {
    expect((await fetch(`${b.url}/oauth/callback?code=abc&state=${randomBytes(32).toString('base64url')}`)).status).toBe(400);
    expect((await fetch(`${b.url}/oauth/callback?code=abc`)).status).toBe(400);
    expect((await b.call('POST', '/admin/servers', { ...admin, body: record('late', mcp.url, { oauth: { grant: 'authorization_code' } }) })).status).toBe(201);
    const url = await authorize('late');
    const cb = await driveAuthorization(url.href, `${PUBLIC}/oauth/callback`);
    await sleep(1800);
    const r = await fetch(toBroker(cb));
    expect(r.status).toBe(400);
    expect((await r.json()).error.param).toBe('state');
    expect((await b.call('GET', '/admin/servers/late', admin)).body.status.oauth.state).toBe('needs_authorization');
    // Waiting for an admin is not the server failing: the breaker stays closed.
    for (let i = 0; i < 7; i++) {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: tool('late') } });
      expect(r.status).toBe(424);
      expect(r.body.error.message).toMatch(/admin must authorize/);
    }
  });

  test('authorize on a server without an authorization_code grant is 400; unknown label 404', async () => {
    expect((await b.call('POST', '/admin/servers', { ...admin, body: record('plain', mcp.url) })).status).toBe(201);
    expect((await b.call('POST', '/admin/servers/plain/oauth/authorize', admin)).status).toBe(400);
    expect((await b.call('POST', '/admin/servers/nope/oauth/authorize', admin)).status).toBe(404);
    expect((await b.call('POST', '/admin/servers/plain/oauth/authorize', { token: null })).status).toBe(401);
  });
});

describe('BROKER_SECRET_KEY', () => {
  test('start-up is refused with an authorization_code record and no key, naming the variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oauth-'));
    const config = join(dir, 'servers.config.json');
    writeFileSync(config, JSON.stringify({ servers: [record('code', mcp.url, { oauth: { grant: 'authorization_code' } })] }));
    await expect(startBrokerProcess({ BROKER_CONFIG: config, BROKER_ADMIN_TOKEN: ADMIN, BROKER_SECRET_KEY: '' })).rejects.toThrow(/BROKER_SECRET_KEY/);
  });

  test('without a key an authorization_code record is refused at the admin API (400)', async () => {
    const b = await startBroker({ env: { BROKER_PUBLIC_URL: PUBLIC } });
    try {
      const r = await b.call('POST', '/admin/servers', { ...admin, body: record('code', mcp.url, { oauth: { grant: 'authorization_code' } }) });
      expect(r.status).toBe(400);
      expect(r.body.error.message).toMatch(/BROKER_SECRET_KEY/);
    } finally {
      await b.close();
    }
  });

  test('a key of the wrong length is refused', async () => {
    await expect(startBroker({ env: { BROKER_SECRET_KEY: randomBytes(16).toString('base64') } })).rejects.toThrow(/BROKER_SECRET_KEY/);
  });
});
