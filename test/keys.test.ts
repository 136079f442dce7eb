import { readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
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
});
