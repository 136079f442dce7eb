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
import { startAuthServer, type AuthServer } from './fixtures/authServer.js';
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
