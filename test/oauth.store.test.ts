import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { parseSecretKey, SecretBox } from '../src/oauth/crypto.js';
import { FileKv, MemoryKv, RedisKv, SecretStore, type SealedKv } from '../src/oauth/store.js';
import { RedisConnection } from '../src/store/redis.js';
import { FileRegistryStore, RegistryFile } from '../src/registry/fileStore.js';
import { createOAuth } from '../src/oauth/setup.js';
import { parseEnv } from '../src/config/env.js';
import { AgentPool } from '../src/mcp/egress.js';
import { SecretValues } from '../src/obs/logger.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';

describe('SecretBox (AES-256-GCM)', () => {
  const box = new SecretBox(randomBytes(32));

  test('round trip; a fresh IV per write', () => {
    const a = box.seal('srv:crm:tokens', 'hello');
    const b = box.seal('srv:crm:tokens', 'hello');
    expect(a).not.toBe(b);
    expect(a.split('.')[1]).not.toBe(b.split('.')[1]);
    expect(box.open('srv:crm:tokens', a)).toBe('hello');
    expect(a).not.toContain('hello');
  });

  test('the label is authenticated: a value moved to another label does not open', () => {
    const sealed = box.seal('srv:crm:tokens', 'secret');
    expect(() => box.open('srv:other:tokens', sealed)).toThrow();
  });

  test('tampering, another key, or garbage fail', () => {
    const sealed = box.seal('k', 'secret');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[2]!, 'base64url');
    ct[0]! ^= 1;
    expect(() => box.open('k', [parts[0], parts[1], ct.toString('base64url'), parts[3]].join('.'))).toThrow();
    expect(() => new SecretBox(randomBytes(32)).open('k', sealed)).toThrow();
    expect(() => box.open('k', 'not-sealed')).toThrow();
  });

  test('BROKER_SECRET_KEY must be 32 bytes of base64', () => {
    expect(parseSecretKey(randomBytes(32).toString('base64')).length).toBe(32);
    expect(parseSecretKey(randomBytes(32).toString('base64url')).length).toBe(32);
    expect(() => parseSecretKey(randomBytes(16).toString('base64'))).toThrow(/BROKER_SECRET_KEY/);
  });
});

async function exercise(kv: SealedKv) {
  const store = new SecretStore(kv, new SecretBox(randomBytes(32)));
  await store.set('srv:a:tokens', { access_token: 'tok-a' });
  await store.set('srv:b:tokens', { access_token: 'tok-b' });
  expect(await store.get('srv:a:tokens')).toEqual({ access_token: 'tok-a' });
  // Single use.
  await store.set('state:xyz', { label: 'a' }, 60_000);
  const takes = await Promise.all([store.take('state:xyz'), store.take('state:xyz'), store.take('state:xyz')]);
  expect(takes.filter(Boolean)).toEqual([{ label: 'a' }]);
  // Expiry.
  await store.set('state:short', { label: 'a' }, 50);
  await new Promise((r) => setTimeout(r, 120));
  expect(await store.take('state:short')).toBeUndefined();
  await store.deletePrefix('srv:a:');
  expect(await store.get('srv:a:tokens')).toBeUndefined();
  expect(await store.get('srv:b:tokens')).toEqual({ access_token: 'tok-b' });
  await store.close();
}

test('MemoryKv', () => exercise(new MemoryKv()));

describe('FileKv: the "oauth" section of the registry file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oauth-kv-'));

  test('mode 0600, one writer with the other sections, sealed values only, reopens', async () => {
    const path = join(dir, 'servers.config.json');
    writeFileSync(path, JSON.stringify({ servers: [{ server_label: 'crm', server_url: 'http://a.example/mcp' }] }));
    const file = await RegistryFile.open(path);
    await exercise(FileKv.on(file));
    const key = randomBytes(32);
    const s1 = new SecretStore(FileKv.on(file), new SecretBox(key));
    const registry = FileRegistryStore.on(file);
    // Writes of two sections interleaved: every one lands, none undoes another.
    await Promise.all([
      ...Array.from({ length: 10 }, (_, i) => s1.set(`srv:c${i}:tokens`, { access_token: `tok-c${i}` })),
      registry.setPins('crm', { echo: 'a'.repeat(64) }),
    ]);
    await s1.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    for (const t of ['tok-a', 'tok-b', 'tok-c', 'access_token']) expect(text).not.toContain(t);
    const doc = JSON.parse(text);
    expect(Object.keys(doc)).toEqual(['servers', 'oauth']);
    expect(doc.servers[0].pinned_tools).toEqual({ echo: 'a'.repeat(64) });
    expect(Object.keys(doc.oauth).sort()).toEqual([...Array.from({ length: 10 }, (_, i) => `srv:c${i}:tokens`), 'srv:b:tokens'].sort());
    for (const e of Object.values(doc.oauth) as Array<{ v: string }>) expect(e.v).toMatch(/^v1\./);
    // No temp file is left beside it.
    expect(readdirSync(dir).filter((n) => n.includes('.tmp'))).toEqual([]);
    const s2 = new SecretStore(FileKv.on(await RegistryFile.open(path)), new SecretBox(key));
    expect(await s2.get('srv:c3:tokens')).toEqual({ access_token: 'tok-c3' });
  });

  test('a take is single use even against a write in flight', async () => {
    const path = join(dir, 'take.json');
    const file = await RegistryFile.open(path);
    const store = new SecretStore(FileKv.on(file), new SecretBox(randomBytes(32)));
    await store.set('state:s1', { label: 'a' }, 60_000);
    const other = store.set('srv:x:tokens', { access_token: 'x' });
    const [t1, t2] = await Promise.all([store.take('state:s1'), store.take('state:s1'), other]);
    expect([t1, t2].filter(Boolean)).toEqual([{ label: 'a' }]);
    expect(await store.take('state:s1')).toBeUndefined();
    expect(JSON.parse(readFileSync(path, 'utf8')).oauth['state:s1']).toBeUndefined();
  });

  test('an older <BROKER_CONFIG>.oauth.json is moved into the section once, then removed', async () => {
    const path = join(dir, 'legacy.json');
    const key = randomBytes(32);
    const box = new SecretBox(key);
    const sealed = box.seal('srv:crm:tokens', JSON.stringify({ access_token: 'tok-legacy' }));
    writeFileSync(`${path}.oauth.json`, JSON.stringify({ version: 1, entries: { 'srv:crm:tokens': { v: sealed } } }), { mode: 0o600 });
    const file = await RegistryFile.open(path);
    const env = parseEnv({ BROKER_CONFIG: path, BROKER_SECRET_KEY: key.toString('base64') });
    const logger = pino({ level: 'silent' });
    const agents = new AgentPool();
    const oauth = await createOAuth({ env, conn: undefined, file, registry: FileRegistryStore.on(file), agents, publicUrl: 'http://127.0.0.1:1', processEnv: {}, logger, secrets: new SecretValues() });
    await oauth.close();
    await agents.close();
    expect(existsSync(`${path}.oauth.json`)).toBe(false);
    const doc = JSON.parse(readFileSync(path, 'utf8'));
    expect(doc.oauth['srv:crm:tokens'].v).toBe(sealed);
    expect(JSON.parse(box.open('srv:crm:tokens', doc.oauth['srv:crm:tokens'].v))).toEqual({ access_token: 'tok-legacy' });
  });

  test('a plaintext value in the section is refused at start-up', async () => {
    const path = join(dir, 'plain.json');
    writeFileSync(path, JSON.stringify({ oauth: { 'srv:a:tokens': { v: '{"access_token":"plain"}' } } }));
    const file = await RegistryFile.open(path);
    expect(() => FileKv.on(file)).toThrow(/invalid field oauth, entry "srv:a:tokens": not a sealed value/);
  });
});

describe('RedisKv', () => {
  let redis: RedisFixture;
  let conn: RedisConnection;
  beforeAll(async () => {
    redis = await startRedis();
    conn = new RedisConnection(redis.url, pino({ level: 'silent' }));
    await conn.connect();
  });
  afterAll(async () => {
    await conn?.close();
    await redis?.close();
  });
  test('same contract on a real redis-server; only sealed values stored', async () => {
    await exercise(new RedisKv(conn));
    const store = new SecretStore(new RedisKv(conn), new SecretBox(randomBytes(32)));
    await store.set('srv:d:tokens', { access_token: 'tok-d' });
    const raw = await conn.cmd.get(conn.key('oauth', 'srv:d:tokens'));
    expect(raw).toMatch(/^v1\./);
    expect(raw).not.toContain('tok-d');
  });
});
