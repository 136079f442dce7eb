import { writeFileSync } from 'node:fs';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';
import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';

const until = async (cond: () => Promise<boolean> | boolean, ms: number) => {
  for (const end = Date.now() + ms; !(await cond()); ) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('named keys on two instances sharing Redis', () => {
  let redis: RedisFixture;
  let mcp: McpFixture;
  let a: TestBroker;
  let b: TestBroker;
  const list = (inst: TestBroker, token: string, label = 'fx') => inst.call('POST', '/v1/mcp/list_tools', { token, body: { tool: { type: 'mcp', server_label: label } } });
  const works = (inst: TestBroker, token: string) => async () => (await list(inst, token)).status === 200;
  const refused = (inst: TestBroker, token: string) => async () => (await list(inst, token)).status === 401;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.close();
  });
  beforeEach(async () => {
    await redis.flush();
    mcp = await startMcpFixture();
    const env = { BROKER_STORE: redis.url };
    a = await startBroker({ env, servers: [record('fx', mcp.url), record('other', mcp.url)] });
    b = await startBroker({ env });
  });
  afterEach(async () => {
    await a?.close();
    await b?.close();
    await mcp.close();
  });

  it('created on A, used on B; deleted on A, refused on B within a second', async () => {
    const created = await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'shared', grants: [{ server_label: 'fx' }] } });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    await until(works(b, key), 1000);
    expect((await b.call('GET', '/admin/keys/shared', { token: ADMIN })).body.grants).toEqual([{ server_label: 'fx' }]);
    expect((await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'SHARED', grants: '*' } })).body.error.code).toBe('key_name_taken');
    // Grants apply on B too: `other` is invisible.
    expect((await list(b, key, 'other')).body.error.code).toBe('unknown_server_label');

    expect((await a.call('DELETE', '/admin/keys/shared', { token: ADMIN })).status).toBe(200);
    expect((await list(a, key)).status).toBe(401);
    await until(refused(b, key), 1000);
    expect((await b.call('GET', '/admin/keys/shared', { token: ADMIN })).status).toBe(404);
  });

  it('rotated on B without grace: the old key is refused on A within a second; PUT on B narrows on A', async () => {
    const old = (await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'rot', grants: '*' } })).body.key as string;
    await until(works(b, old), 1000);
    const rot = await b.call('POST', '/admin/keys/rot/rotate', { token: ADMIN, body: {} });
    expect(rot.status).toBe(200);
    await until(refused(a, old), 1000);
    await until(works(a, rot.body.key), 1000);
    await b.call('PUT', '/admin/keys/rot', { token: ADMIN, body: { grants: [{ server_label: 'other' }] } });
    await until(async () => (await list(a, rot.body.key)).status === 404, 1000);
    expect((await list(a, rot.body.key, 'other')).status).toBe(200);
  });

  it('rate_limit_per_min is one bucket across instances', async () => {
    const key = (await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'lim', grants: '*', rate_limit_per_min: 4 } })).body.key as string;
    await until(works(b, key), 1000); // one token spent here
    let ok = 1;
    const statuses: number[] = [];
    for (const inst of [a, b, a, b]) {
      const r = await list(inst, key);
      statuses.push(r.status);
      if (r.status === 200) ok++;
    }
    expect(ok).toBe(4);
    expect(statuses[statuses.length - 1]).toBe(429);
    const r = await list(a, key);
    expect(r.status).toBe(429);
    expect(r.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    const after = Number(r.headers.get('retry-after'));
    expect(Number.isInteger(after) && after >= 1 && after <= 60).toBe(true);
  });

  it('keys live in Redis: a new instance has them; the file’s keys are imported only into an empty store', async () => {
    const key = (await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'kept', grants: '*' } })).body.key as string;
    await b.close();
    // This file's keys section is ignored: the store already has keys.
    writeFileSync(b.configPath, JSON.stringify({ keys: [{ name: 'from-file', grants: '*', id: `key_${'0'.repeat(32)}`, created_at: 1, hashes: [{ sha256: 'a'.repeat(64), expires_at_ms: null }] }] }));
    b = await startBroker({ env: { BROKER_STORE: redis.url, BROKER_CONFIG: b.configPath } });
    expect((await list(b, key)).status).toBe(200);
    expect((await b.call('GET', '/admin/keys', { token: ADMIN })).body.data.map((k: { name: string }) => k.name)).toEqual(['kept']);
  });

  it('an embedded broker’s keys move into an empty Redis with its file', async () => {
    const solo = await startBroker({ servers: [record('fx', mcp.url)] });
    const key = (await solo.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'moved', grants: [{ server_label: 'fx' }] } })).body.key as string;
    await solo.close();
    await a.close();
    await b.close();
    await redis.flush();
    a = await startBroker({ env: { BROKER_STORE: redis.url, BROKER_CONFIG: solo.configPath } });
    b = await startBroker({ env: { BROKER_STORE: redis.url } });
    expect((await list(a, key)).status).toBe(200);
    expect((await list(b, key)).status).toBe(200);
  });

  it('Redis down: a rate-limited key gets 503 store_unavailable, never an unlimited pass; admin writes 503', async () => {
    const limited = (await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'lim', grants: '*', rate_limit_per_min: 100 } })).body.key as string;
    expect((await list(a, limited)).status).toBe(200);
    await redis.stop();
    try {
      await until(async () => (await fetch(`${a.url}/readyz`)).status === 503, 5000);
      const r = await list(a, limited);
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('store_unavailable');
      const w = await a.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'new', grants: '*' } });
      expect(w.status).toBe(503);
      expect(w.body.error.code).toBe('store_unavailable');
    } finally {
      await redis.start();
    }
    await until(async () => (await list(a, limited)).status === 200, 10_000);
  }, 30_000);
});
