import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { ServerRecordSchema, type ServerRecordInput } from '../src/config/serverRecord.js';
import { AgentPool } from '../src/mcp/egress.js';
import { SecretBox } from '../src/oauth/crypto.js';
import { guardedFetchFor } from '../src/oauth/guardedFetch.js';
import { OAuthManager } from '../src/oauth/manager.js';
import { MemoryKv, SecretStore } from '../src/oauth/store.js';
import { SecretValues } from '../src/obs/logger.js';
import { driveAuthorization, startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';

jest.setTimeout(60_000);

const CC_SECRET = `cc-secret-${randomBytes(8).toString('hex')}`;
let as: AuthServer;
let mcp: OAuthMcpServer;
const agents = new AgentPool();

beforeAll(async () => {
  as = await startAuthServer({
    accessTokenTtlS: 300,
    clients: [{ client_id: 'cc-client', client_secret: CC_SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'mcp:tools' }],
  });
  mcp = await startOAuthMcpServer({ issuer: as.issuer });
});
afterAll(async () => {
  await mcp?.close();
  await as?.close();
  await agents.close();
});

function manager() {
  return new OAuthManager({
    store: new SecretStore(new MemoryKv(), new SecretBox(randomBytes(32))),
    persistent: true,
    publicUrl: 'http://127.0.0.1:1',
    fetchFor: guardedFetchFor(agents),
    env: { CC_SECRET },
    logger: pino({ level: 'silent' }),
    secrets: new SecretValues(),
  });
}

const rec = (o: Partial<ServerRecordInput>) =>
  ServerRecordSchema.parse({ server_label: 'prot', server_url: mcp.url, allow_private_network: true, ...o });

test('client_credentials through the SDK v2 client: discovery, resource, token cached across sessions', async () => {
  const m = manager();
  const record = rec({ oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' } });
  const before = await as.stats();
  for (let i = 0; i < 2; i++) {
    const client = new Client({ name: 't', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: m.authProviderFor(record, { allowPrivate: true, allowCidrs: [] }) });
    await client.connect(transport);
    const r = await client.callTool({ name: 'whoami', arguments: {} });
    expect((r.content as Array<{ text: string }>)[0]!.text).toBe('authorized');
    await client.close();
  }
  const after = await as.stats();
  expect(after.grants.client_credentials! - (before.grants.client_credentials ?? 0)).toBe(1);
  expect(after.resources).toContain(mcp.resource);
  const status = await m.status(record);
  expect(status).toMatchObject({ state: 'connected', scope: 'mcp:tools' });
  expect(status!.expires_at).toBeGreaterThan(Date.now() / 1000);
});

test('authorization_code with dynamic client registration, PKCE S256, single-use state, refresh', async () => {
  const m = manager();
  const record = rec({ server_label: 'code', oauth: { grant: 'authorization_code' } });
  const egress = { allowPrivate: true, allowCidrs: [] };
  expect(await m.status(record)).toMatchObject({ state: 'needs_authorization' });
  const before = await as.stats();
  const url = new URL(await m.authorize(record));
  expect(url.searchParams.get('code_challenge_method')).toBe('S256');
  expect(url.searchParams.get('resource')).toBe(mcp.resource);
  const state = url.searchParams.get('state')!;
  expect(state.length).toBeGreaterThanOrEqual(40);
  const cb = await driveAuthorization(url.href, m.callbackUrl);
  expect(cb.searchParams.get('state')).toBe(state);
  const label = await m.complete(state, cb.searchParams.get('code')!, cb.searchParams.get('iss') ?? undefined, async () => record);
  expect(label).toBe('code');
  // Reused state: refused.
  expect(await m.complete(state, cb.searchParams.get('code')!, undefined, async () => record)).toBeUndefined();
  const after = await as.stats();
  expect(after.registrations - before.registrations).toBe(1);
  expect(await m.status(record)).toMatchObject({ state: 'connected' });

  const client = new Client({ name: 't', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: m.authProviderFor(record, egress) }));
  const r = await client.callTool({ name: 'echo', arguments: { text: 'hi' } });
  expect((r.content as Array<{ text: string }>)[0]!.text).toBe('echo: hi');
  await client.close();
});

describe('egress guard on OAuth URLs', () => {
  test('metadata on a private address is refused when the record does not allow private networks', async () => {
    const m = manager();
    const record = rec({ server_label: 'guarded', allow_private_network: false, oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' } });
    const metadataBefore = mcp.stats.metadata;
    const tokensBefore = (await as.stats()).token;
    const client = new Client({ name: 't', version: '1' });
    // The MCP request itself goes out unguarded here; only the OAuth requests meet the guard.
    const transport = new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: m.authProviderFor(record, { allowPrivate: false, allowCidrs: [] }) });
    await expect(client.connect(transport)).rejects.toThrow(/egress policy/);
    await client.close().catch(() => undefined);
    expect(mcp.stats.metadata).toBe(metadataBefore);
    expect((await as.stats()).token).toBe(tokensBefore);
    expect(await m.status(record)).toMatchObject({ state: 'error', error: expect.stringMatching(/egress/) });
  });

  test.each([
    ['data:', 'data:application/json,%7B%22access_token%22%3A%22stolen%22%2C%22token_type%22%3A%22bearer%22%7D'],
    ['file:', 'file:///etc/passwd'],
  ])('a hostile server whose metadata names a %s token endpoint gets no request and no token', async (_name, tokenEndpoint) => {
    const { createServer } = await import('node:http');
    const seen: string[] = [];
    const server = createServer((req, res) => {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/.well-known/oauth-protected-resource')) return res.end(JSON.stringify({ resource: `${base}/mcp`, authorization_servers: [base] }));
      if (req.url === '/.well-known/oauth-authorization-server') {
        return res.end(
          JSON.stringify({ issuer: base, authorization_endpoint: `${base}/authorize`, token_endpoint: tokenEndpoint, response_types_supported: ['code'], grant_types_supported: ['client_credentials'] }),
        );
      }
      res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"` });
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
      const m = manager();
      const record = ServerRecordSchema.parse({
        server_label: 'hostile',
        server_url: url,
        allow_private_network: true,
        oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' },
      });
      const client = new Client({ name: 't', version: '1' });
      await expect(client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: m.authProviderFor(record, { allowPrivate: true, allowCidrs: [] }) }))).rejects.toThrow(/OAuth/);
      await client.close().catch(() => undefined);
      expect(seen.some((s) => /Bearer/.test(s))).toBe(false);
      expect(seen.join('\n')).not.toContain(CC_SECRET);
      expect((await m.status(record))!.state).toBe('error');
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    }
  });
});

test('scope: the record first, else the WWW-Authenticate challenge', async () => {
  // The challenge asks for more than scopes_supported lists: which one is used shows the order.
  const greedy = await startOAuthMcpServer({ issuer: as.issuer, challengeScope: 'mcp:tools mcp:admin', scopesSupported: ['mcp:tools'] });
  try {
    const connect = async (scope?: string) => {
      const m = manager();
      const record = ServerRecordSchema.parse({
        server_label: 'greedy',
        server_url: greedy.url,
        allow_private_network: true,
        oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}', ...(scope ? { scope } : {}) },
      });
      const client = new Client({ name: 't', version: '1' });
      try {
        await client.connect(new StreamableHTTPClientTransport(new URL(greedy.url), { authProvider: m.authProviderFor(record, { allowPrivate: true, allowCidrs: [] }) }));
        return 'ok';
      } catch (e) {
        return String((e as Error).message);
      } finally {
        await client.close().catch(() => undefined);
      }
    };
    expect(await connect('mcp:tools')).toBe('ok');
    expect((await as.stats()).scopes.at(-1)).toBe('mcp:tools');
    // No record scope: the challenge's scope is what the token request asks for.
    await connect();
    expect((await as.stats()).scopes.at(-1)).toBe('mcp:tools mcp:admin');
  } finally {
    await greedy.close();
  }
});

test('an edited oauth config does not reuse tokens obtained for the old one', async () => {
  const store = new SecretStore(new MemoryKv(), new SecretBox(randomBytes(32)));
  const mk = () =>
    new OAuthManager({ store, persistent: true, publicUrl: 'http://127.0.0.1:1', fetchFor: guardedFetchFor(agents), env: { CC_SECRET }, logger: pino({ level: 'silent' }), secrets: new SecretValues() });
  const r1 = rec({ server_label: 'edit', oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}' } });
  const m1 = mk();
  const c1 = new Client({ name: 't', version: '1' });
  await c1.connect(new StreamableHTTPClientTransport(new URL(mcp.url), { authProvider: m1.authProviderFor(r1, { allowPrivate: true, allowCidrs: [] }) }));
  await c1.close();
  expect((await m1.status(r1))!.expires_at).not.toBeNull();
  const r2 = rec({ server_label: 'edit', oauth: { grant: 'client_credentials', client_id: 'cc-client', client_secret: '${CC_SECRET}', scope: 'mcp:tools' } });
  expect((await mk().status(r2))!.expires_at).toBeNull();
  expect((await mk().status(r1))!.expires_at).not.toBeNull();
});
