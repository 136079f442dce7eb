import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { driveAuthorization, startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';

jest.setTimeout(90_000);

const PUBLIC = 'http://127.0.0.1:1';
const admin = { token: ADMIN };
const tool = { type: 'mcp', server_label: 'code' };

let redis: RedisFixture;
let as: AuthServer;
let mcp: OAuthMcpServer;
let a: TestBroker;
let b: TestBroker;

beforeAll(async () => {
  redis = await startRedis();
  as = await startAuthServer({ accessTokenTtlS: 300 });
  mcp = await startOAuthMcpServer({ issuer: as.issuer });
  const env = { BROKER_STORE: redis.url, BROKER_SECRET_KEY: randomBytes(32).toString('base64'), BROKER_PUBLIC_URL: PUBLIC };
  a = await startBroker({ env });
  b = await startBroker({ env });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  await mcp?.close();
  await as?.close();
  await redis?.close();
});

test('authorized through one instance, the callback on another, tokens used by both; Redis holds only sealed values', async () => {
  expect((await a.call('POST', '/admin/servers', { ...admin, body: record('code', mcp.url, { oauth: { grant: 'authorization_code' } }) })).status).toBe(201);
  // B learns of A's record over pub/sub (SPEC §9: within a second): poll, bounded.
  let before = 0;
  for (const end = Date.now() + 3000; before !== 424 && Date.now() < end; ) {
    before = (await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).status;
    if (before !== 424) await new Promise((r) => setTimeout(r, 25));
  }
  expect(before).toBe(424);

  const started = await a.call('POST', '/admin/servers/code/oauth/authorize', admin);
  expect(started.status).toBe(200);
  const cb = await driveAuthorization(started.body.authorization_url, `${PUBLIC}/oauth/callback`);
  const done = await fetch(`${b.url}${cb.pathname}${cb.search}`);
  expect(done.status).toBe(200);

  for (const inst of [b, a]) {
    const r = await inst.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'both' } } });
    expect(r.status).toBe(200);
    expect(JSON.stringify(r.body)).toContain('echo: both');
    expect((await inst.call('GET', '/admin/servers/code', admin)).body.status.oauth.state).toBe('connected');
  }
  // One authorization served both instances.
  expect((await as.stats()).grants.authorization_code).toBe(1);

  const r = new Redis(redis.url);
  try {
    const keys = await r.keys('*oauth*');
    expect(keys.length).toBeGreaterThan(0);
    const values = await Promise.all(keys.map((k) => r.type(k).then((t) => (t === 'string' ? r.get(k) : ''))));
    const dump = values.join('\n');
    for (const t of new Set(mcp.stats.tokens)) expect(dump).not.toContain(t);
    expect(dump).not.toMatch(/access_token|refresh_token|client_secret/);
  } finally {
    r.disconnect();
  }
});
