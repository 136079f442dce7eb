import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore } from '../src/keys/fileStore.js';
import { mintKey, newKeyRecord } from '../src/keys/keys.js';
import { FileRegistryStore, parseServers, RegistryFile } from '../src/registry/fileStore.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { ADMIN, APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('/admin/keys: named API keys', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });
  const list = (token: string) => b.call('POST', '/v1/mcp/list_tools', { token, body: { tool: { type: 'mcp', server_label: 'fx' } } });

  beforeEach(async () => {
    mcp = await startMcpFixture();
    b = await startBroker({ servers: [record('fx', mcp.url)] });
  });
  afterEach(async () => {
    await b.close();
    await mcp.close();
  });

  it('creates a key shown once; views never carry the key or its hash', async () => {
    const created = await admin('POST', '/admin/keys', { name: 'team-a', grants: [{ server_label: 'fx' }], rate_limit_per_min: 100 });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body.key).toMatch(/^mcpb_[A-Za-z0-9_-]{20,}$/);
    expect(created.body).toEqual({
      name: 'team-a',
      grants: [{ server_label: 'fx' }],
      allow_inline_servers: false,
      rate_limit_per_min: 100,
      max_pending_approvals: null,
      created_at: expect.any(Number),
      key: created.body.key,
    });
    expect(Math.abs(created.body.created_at - Date.now() / 1000)).toBeLessThan(60);
    const key = created.body.key as string;

    const one = await admin('GET', '/admin/keys/TEAM-A');
    expect(one.status).toBe(200);
    const { key: _shown, ...view } = created.body;
    expect(one.body).toEqual(view);
    const all = await admin('GET', '/admin/keys');
    expect(all.body).toEqual({ object: 'list', data: [view] });
    for (const r of [one, all]) {
      expect(JSON.stringify(r.body)).not.toContain(key);
      expect(JSON.stringify(r.body)).not.toContain(sha(key));
    }

    const r = await list(key);
    expect(r.status).toBe(200);
    expect(r.body.type).toBe('mcp_list_tools');
    expect(b.logs.some((l) => l.includes('"key_name":"team-a"') && l.includes('api key created'))).toBe(true);
    expect(b.logs.join('')).not.toContain(key);
    expect(b.logs.join('')).not.toContain(sha(key));
  });

  it('409 key_name_taken, case-insensitively; 404 for unknown names', async () => {
    expect((await admin('POST', '/admin/keys', { name: 'dup', grants: '*' })).status).toBe(201);
    const again = await admin('POST', '/admin/keys', { name: 'DUP', grants: '*' });
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ type: 'conflict_error', code: 'key_name_taken', param: 'name' });
    for (const [m, p] of [['GET', '/admin/keys/nope'], ['PUT', '/admin/keys/nope'], ['DELETE', '/admin/keys/nope'], ['POST', '/admin/keys/nope/rotate']] as const) {
      const res = await admin(m, p, m === 'PUT' ? { grants: '*' } : undefined);
      expect(res.status).toBe(404);
      expect(res.body.error.type).toBe('not_found_error');
    }
  });

  it.each([
    [{ grants: '*' }, 'missing_required_parameter', 'name'],
    [{ name: 'x' }, 'missing_required_parameter', 'grants'],
    [{ name: 'a b', grants: '*' }, 'invalid_value', 'name'],
    [{ name: 'x'.repeat(65), grants: '*' }, 'invalid_value', 'name'],
    [{ name: 'x', grants: 'all' }, 'invalid_value', 'grants'],
    [{ name: 'x', grants: [{ server_label: 'fx', extra: 1 }] }, 'invalid_value', 'grants[0].extra'],
    [{ name: 'x', grants: [{ server_label: 'fx' }, { server_label: 'FX' }] }, 'invalid_value', 'grants[1].server_label'],
    [{ name: 'x', grants: [{ server_label: 'fx', require_approval: 'sometimes' }] }, 'invalid_value', 'grants[0].require_approval'],
    [{ name: 'x', grants: '*', rate_limit_per_min: 0 }, 'invalid_value', 'rate_limit_per_min'],
    [{ name: 'x', grants: '*', max_pending_approvals: 1.5 }, 'invalid_value', 'max_pending_approvals'],
    [{ name: 'x', grants: '*', key: 'mcpb_chosen_by_the_admin_000' }, 'invalid_value', 'key'],
  ])('POST %j → 400 %s naming %s', async (body, code, param) => {
    const r = await admin('POST', '/admin/keys', body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code, param });
  });

  it('PUT replaces settings (name must match the path); the key keeps working with new grants', async () => {
    const { key } = (await admin('POST', '/admin/keys', { name: 'k', grants: [{ server_label: 'fx' }] })).body;
    const mismatch = await admin('PUT', '/admin/keys/k', { name: 'other', grants: '*' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error.param).toBe('name');
    const put = await admin('PUT', '/admin/keys/k', { grants: [{ server_label: 'fx', allowed_tools: ['echo'] }], max_pending_approvals: 3 });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ name: 'k', grants: [{ server_label: 'fx', allowed_tools: ['echo'] }], max_pending_approvals: 3, allow_inline_servers: false });
    expect(put.body.key).toBeUndefined();
    const r = await list(key);
    expect(r.body.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
  });

  it('admin routes refuse every API key; a named key is refused as admin and approver', async () => {
    const { key } = (await admin('POST', '/admin/keys', { name: 'k', grants: '*' })).body;
    for (const token of [key, KEY_A, APPROVER, null, 'mcpb_not_a_key_at_all_000000']) {
      for (const path of ['/admin/keys', '/admin/servers']) {
        const r = await b.call('GET', path, { token });
        expect(r.status).toBe(401);
        expect(r.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
        expect(r.headers.get('www-authenticate')).toBe('Bearer');
      }
    }
    expect((await b.call('GET', '/v1/mcp/approvals?status=pending', { token: key })).status).toBe(401);
    expect((await b.call('GET', '/v1/mcp/approvals?status=pending', { token: APPROVER })).status).toBe(200);
    expect((await list('mcpb_not_a_key_at_all_000000')).status).toBe(401);
    expect((await list(ADMIN)).status).toBe(401);
  });

  it('delete: the key gets 401 at once', async () => {
    const { key } = (await admin('POST', '/admin/keys', { name: 'gone', grants: '*' })).body;
    expect((await list(key)).status).toBe(200);
    const del = await admin('DELETE', '/admin/keys/GONE');
    expect(del.status).toBe(200);
    expect(del.body).toEqual({ name: 'gone', deleted: true });
    const r = await list(key);
    expect(r.status).toBe(401);
    expect(r.body.error.type).toBe('authentication_error');
    expect((await admin('GET', '/admin/keys')).body.data).toEqual([]);
    // A key re-created under the same name is a new key.
    const again = await admin('POST', '/admin/keys', { name: 'gone', grants: '*' });
    expect(again.status).toBe(201);
    expect((await list(key)).status).toBe(401);
    expect((await list(again.body.key)).status).toBe(200);
  });

  it('rotate without grace: the old key is refused at once, the new one works', async () => {
    const { key: old } = (await admin('POST', '/admin/keys', { name: 'r', grants: '*' })).body;
    const rot = await admin('POST', '/admin/keys/r/rotate');
    expect(rot.status).toBe(200);
    expect(rot.headers.get('cache-control')).toBe('no-store');
    expect(rot.body).toMatchObject({ name: 'r', grants: '*' });
    expect(rot.body.key).toMatch(/^mcpb_/);
    expect(rot.body.key).not.toBe(old);
    expect((await list(old)).status).toBe(401);
    expect((await list(rot.body.key)).status).toBe(200);
  });

  it('rotate with grace: the old key works grace_s more seconds, then 401', async () => {
    const { key: old } = (await admin('POST', '/admin/keys', { name: 'r', grants: '*' })).body;
    const rot = await admin('POST', '/admin/keys/r/rotate', { grace_s: 1 });
    expect(rot.status).toBe(200);
    expect((await list(old)).status).toBe(200);
    expect((await list(rot.body.key)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await list(old)).status).toBe(401);
    expect((await list(rot.body.key)).status).toBe(200);
    // A second rotation without grace ends every older key.
    const again = await admin('POST', '/admin/keys/r/rotate', { grace_s: 0 });
    expect((await list(rot.body.key)).status).toBe(401);
    expect((await list(again.body.key)).status).toBe(200);
    const bad = await admin('POST', '/admin/keys/r/rotate', { grace_s: -1 });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('grace_s');
  });

  it('keys survive a restart; the file (mode 0600) holds hashes, never a key', async () => {
    const { key } = (await admin('POST', '/admin/keys', { name: 'keep', grants: [{ server_label: 'fx' }] })).body;
    const { key: rotatedOut } = (await admin('POST', '/admin/keys', { name: 'other', grants: '*' })).body;
    const { key: current } = (await admin('POST', '/admin/keys/other/rotate', { grace_s: 3600 })).body;
    await admin('POST', '/admin/servers', record('later', mcp.url)); // the servers writer keeps the keys
    const text = readFileSync(b.configPath, 'utf8');
    expect(statSync(b.configPath).mode & 0o777).toBe(0o600);
    for (const k of [key, rotatedOut, current]) {
      expect(text).not.toContain(k);
      expect(text).not.toContain(k.slice(5));
    }
    expect(text).toContain(sha(key));
    const disk = JSON.parse(text);
    expect(Object.keys(disk)).toEqual(['servers', 'keys']);
    expect(disk.servers.map((s: { server_label: string }) => s.server_label)).toEqual(['fx', 'later']);
    expect(disk.keys.map((k: { name: string }) => k.name)).toEqual(['keep', 'other']);

    const path = b.configPath;
    await b.close();
    b = await startBroker({ env: { BROKER_CONFIG: path } });
    expect((await list(key)).status).toBe(200);
    expect((await list(rotatedOut)).status).toBe(200); // still in its grace
    expect((await list(current)).status).toBe(200);
    expect((await admin('GET', '/admin/keys')).body.data.map((k: { name: string }) => k.name)).toEqual(['keep', 'other']);
  });

  it('rate_limit_per_min: every /v1/* request counts; beyond it 429 with Retry-After; nothing reaches upstream', async () => {
    const { key } = (await admin('POST', '/admin/keys', { name: 'lim', grants: '*', rate_limit_per_min: 3 })).body;
    const { key: other } = (await admin('POST', '/admin/keys', { name: 'free', grants: '*' })).body;
    expect((await list(key)).status).toBe(200);
    expect((await b.call('GET', '/v1/mcp/approvals/mcpr_unknown', { token: key })).status).toBe(404);
    expect((await b.call('GET', '/v1/responses/resp_unknown', { token: key })).status).toBe(404);
    const seen = mcp.counters.headers.length;
    const r = await b.call('POST', '/v1/mcp/call', { token: key, body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'x' } } });
    expect(r.status).toBe(429);
    expect(r.body).toEqual({ error: { type: 'rate_limit_error', code: 'rate_limit_exceeded', param: null, message: expect.stringContaining('3 requests per minute') } });
    const after = r.headers.get('retry-after')!;
    expect(after).toMatch(/^\d+$/);
    expect(Number(after)).toBeGreaterThanOrEqual(1);
    expect(Number(after)).toBeLessThanOrEqual(60);
    expect(mcp.counters.headers.length).toBe(seen);
    expect(mcp.counters.calls.echo).toBeUndefined();
    // Refused before the body is read; a bad credential is 401, not counted against anyone.
    expect((await b.call('POST', '/v1/mcp/call', { token: key, body: '{not json' })).status).toBe(429);
    expect((await b.call('POST', '/v1/mcp/call', { token: 'mcpb_wrong_wrong_wrong_wrong_00', body: '{' })).status).toBe(401);
    // Other keys have their own buckets (or none).
    for (let i = 0; i < 5; i++) expect((await list(other)).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await list(KEY_A)).status).toBe(200);
    // Raising the limit applies to the next request.
    await admin('PUT', '/admin/keys/lim', { grants: '*', rate_limit_per_min: null });
    expect((await list(key)).status).toBe(200);
  });
});

describe('what a key owns survives rotation, not deletion', () => {
  it('approvals made with the old key are the new key’s; a re-created name owns nothing', async () => {
    const mcp = await startMcpFixture();
    const b = await startBroker({ servers: [record('fx', mcp.url)] });
    try {
      const { key: old } = (await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'own', grants: '*' } })).body;
      const gated = { tool: { type: 'mcp', server_label: 'fx', require_approval: 'always' }, name: 'echo', arguments: { text: 'mine' } };
      const id = (await b.call('POST', '/v1/mcp/call', { token: old, body: gated })).body.id as string;
      expect(id).toMatch(/^mcpr_/);
      const { key: rotatedKey } = (await b.call('POST', '/admin/keys/own/rotate', { token: ADMIN })).body;
      expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: rotatedKey })).body.status).toBe('pending');
      expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: KEY_A })).status).toBe(404);
      await b.call('DELETE', '/admin/keys/own', { token: ADMIN });
      const { key: fresh } = (await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'own', grants: '*' } })).body;
      expect((await b.call('GET', `/v1/mcp/approvals/${id}`, { token: fresh })).status).toBe(404);
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});

describe('open mode ends with the first named key', () => {
  it('no BROKER_API_KEYS: anonymous until a named key exists, then keys are required', async () => {
    const mcp = await startMcpFixture();
    const b = await startBroker({ env: { BROKER_API_KEYS: '' }, servers: [record('fx', mcp.url), record('other', mcp.url)] });
    try {
      const list = (token: string | null, label = 'fx') => b.call('POST', '/v1/mcp/list_tools', { token, body: { tool: { type: 'mcp', server_label: label } } });
      expect((await list(null)).status).toBe(200);
      const { key } = (await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'only-fx', grants: [{ server_label: 'fx' }] } })).body;
      expect((await list(null)).status).toBe(401);
      expect((await list('anything')).status).toBe(401);
      expect((await list(key)).status).toBe(200);
      expect((await list(key, 'other')).status).toBe(404);
      await b.call('DELETE', '/admin/keys/only-fx', { token: ADMIN });
      expect((await list(null)).status).toBe(200);
      expect((await list('anything')).status).toBe(200);
      // Open again, but a deleted named key is still refused, not served as anonymous.
      expect((await list(key)).status).toBe(401);
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});

describe('off loopback there is no open mode', () => {
  it('HOST 0.0.0.0 with named keys alone: deleting the last key leaves /v1 closed (401), never anonymous', async () => {
    const mcp = await startMcpFixture();
    // The fixture listens on 127.0.0.1 whatever HOST says; HOST decides whether open mode may engage.
    const b = await startBroker({ env: { BROKER_API_KEYS: '', HOST: '0.0.0.0' }, servers: [record('fx', mcp.url)] });
    try {
      const list = (token: string | null) => b.call('POST', '/v1/mcp/list_tools', { token, body: { tool: { type: 'mcp', server_label: 'fx' } } });
      expect((await list(null)).status).toBe(401);
      const { key } = (await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'only', grants: '*' } })).body;
      expect((await list(key)).status).toBe(200);
      await b.call('DELETE', '/admin/keys/only', { token: ADMIN });
      expect((await list(null)).status).toBe(401);
      expect((await list('anything')).status).toBe(401);
      expect((await list(key)).status).toBe(401);
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});

describe('the registry file with a keys section', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keys-file-'));
  const write = (name: string, data: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(data));
    return p;
  };
  const good = { name: 'k', grants: '*', id: `key_${'1'.repeat(32)}`, created_at: 1, hashes: [{ sha256: 'a'.repeat(64), expires_at_ms: null }] };

  it.each([
    ['keys not a list', { keys: {} }, /invalid field keys/],
    ['bad grant', { keys: [{ ...good, grants: [{ server_label: 'a b' }] }] }, /key "k", field grants/],
    ['a key in clear instead of hashes', { keys: [{ ...good, hashes: undefined, key: 'mcpb_x' }] }, /key "k", field/],
    ['duplicate names', { keys: [good, { ...good, name: 'K' }] }, /appears twice/],
    ['unknown section', { servers: [], tokens: [] }, /unknown field "tokens"/],
  ])('refuses %s at start, naming key and field', async (_name, data, msg) => {
    await expect(RegistryFile.open(write(`${_name}.json`, data)).then((f) => FileKeyStore.on(f))).rejects.toThrow(msg);
  });

  it('servers and keys share one serialized writer: every acknowledged write of either is on disk', async () => {
    const p = join(dir, 'both.json');
    const file = await RegistryFile.open(p);
    const servers = FileRegistryStore.on(file);
    const keys = FileKeyStore.on(file);
    await Promise.all([
      ...Array.from({ length: 15 }, (_, i) => servers.create({ server_label: `s${i}`, server_url: 'http://a.example/mcp', transport: 'auto', headers: {}, require_approval: 'always', allowed_tools: null, approval: { mode: 'caller', wait_ms: 0 }, allow_private_network: false, tool_cache_ttl_s: 300, call_timeout_ms: 30000 })),
      ...Array.from({ length: 15 }, (_, i) => keys.create(newKeyRecord({ name: `k${i}`, grants: '*', allow_inline_servers: false, rate_limit_per_min: null, max_pending_approvals: null }, mintKey().sha256))),
      keys.create(newKeyRecord({ name: 'K0', grants: '*', allow_inline_servers: false, rate_limit_per_min: null, max_pending_approvals: null }, mintKey().sha256)).catch((e: Error) => e.message),
    ]);
    const again = await RegistryFile.open(p);
    expect(parseServers(again).map((s) => s.server_label).sort()).toEqual(Array.from({ length: 15 }, (_, i) => `s${i}`).sort());
    expect((await FileKeyStore.on(again).list()).map((k) => k.name).sort()).toEqual(Array.from({ length: 15 }, (_, i) => `k${i}`).sort());
  });
});
