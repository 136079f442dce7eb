import { readFileSync, statSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { ADMIN, KEY_A, APPROVER, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { readServersFile, FileRegistryStore } from '../src/registry/fileStore.js';
import { startFaultServer } from './fixtures/faultServer.js';

describe('admin API', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  beforeEach(async () => {
    mcp = await startMcpFixture();
    b = await startBroker({ processEnv: { CRM_TOKEN: 'crm-secret-value-123' } });
  });
  afterEach(async () => {
    await b.close();
    await mcp.close();
  });
  const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });

  it('creates, reads, lists, replaces and deletes records; views redact secrets', async () => {
    const rec = record('crm', mcp.url, {
      headers: { Authorization: 'Bearer ${CRM_TOKEN}' },
      approval: { mode: 'webhook', webhook_url: 'http://127.0.0.1:9/hook', webhook_secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
    });
    const created = await admin('POST', '/admin/servers', rec);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      server_label: 'crm',
      server_url: mcp.url,
      headers: { Authorization: '<redacted>' },
      approval: { mode: 'webhook', webhook_secret: '<redacted>', wait_ms: 0 },
      transport: 'auto',
      require_approval: 'never',
      allowed_tools: null,
      tool_cache_ttl_s: 300,
      call_timeout_ms: 30000,
    });
    expect(JSON.stringify(created.body)).not.toContain('whsec_');

    const dup = await admin('POST', '/admin/servers', { ...rec, server_label: 'CRM' });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ type: 'conflict_error', code: 'server_label_taken' });

    const list = await admin('GET', '/admin/servers');
    expect(list.body).toMatchObject({ object: 'list', data: [{ server_label: 'crm' }] });

    // ${NAME} is expanded when used: the upstream sees the real token (and the caller never does).
    const who = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'Crm' }, name: 'whoami', arguments: {} } });
    expect(mcp.counters.headers.at(-1)?.authorization).toBe('Bearer crm-secret-value-123');
    expect(JSON.parse(who.body.output).authorization).toBe('<redacted>');

    const got = await admin('GET', '/admin/servers/CRM');
    expect(got.status).toBe(200);
    expect(got.body.status).toMatchObject({ tools_cached: true, last_error: null, transport_in_use: 'streamable_http', changed_tools: [] });
    expect(typeof got.body.status.cached_at).toBe('number');
    expect(JSON.stringify(got.body)).not.toContain('crm-secret-value-123');

    const put = await admin('PUT', '/admin/servers/crm', { server_url: mcp.url, allow_private_network: true, require_approval: 'always' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ server_label: 'crm', require_approval: 'always', headers: {} });
    const after = await admin('GET', '/admin/servers/crm');
    expect(after.body.status.tools_cached).toBe(false); // PUT dropped the listing

    const wrongLabel = await admin('PUT', '/admin/servers/crm', { server_label: 'other', server_url: mcp.url });
    expect(wrongLabel.status).toBe(400);
    const missing = await admin('PUT', '/admin/servers/ghost', record('ghost', mcp.url));
    expect(missing.status).toBe(404);

    const del = await admin('DELETE', '/admin/servers/crm');
    expect(del.body).toEqual({ server_label: 'crm', deleted: true });
    expect((await admin('DELETE', '/admin/servers/crm')).status).toBe(404);
    expect((await admin('GET', '/admin/servers/crm')).status).toBe(404);
    const gone = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'crm' } } });
    expect(gone.status).toBe(404);
  });

  it('PUT with "<redacted>" (what a view shows) keeps the stored secret; another origin needs it typed again', async () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const rec = record('crm', mcp.url, {
      headers: { Authorization: 'Bearer ${CRM_TOKEN}', 'X-Tenant': 'tenant-literal-4711' },
      approval: { mode: 'webhook', webhook_url: 'http://127.0.0.1:9/hook', webhook_secret: secret },
    });
    expect((await admin('POST', '/admin/servers', rec)).status).toBe(201);
    // The console's round trip: GET the view, change one field, PUT it all back.
    const { status: _s, ...view } = (await admin('GET', '/admin/servers/crm')).body;
    expect(view.headers).toEqual({ Authorization: '<redacted>', 'X-Tenant': '<redacted>' });
    const put = await admin('PUT', '/admin/servers/crm', { ...view, server_description: 'edited', headers: { authorization: '<redacted>', 'X-Tenant': '<redacted>', 'X-New': 'plain-value-1234' } });
    expect(put.status).toBe(200);
    expect(put.body.server_description).toBe('edited');
    expect(JSON.stringify(put.body)).not.toMatch(/crm-secret|tenant-literal|whsec_/);
    const file = readFileSync(b.configPath, 'utf8');
    expect(file).toContain('Bearer ${CRM_TOKEN}');
    expect(file).toContain('tenant-literal-4711');
    expect(file).toContain(secret);
    expect(file).not.toContain('<redacted>');
    await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'crm' }, name: 'whoami', arguments: {} } });
    expect(mcp.counters.headers.at(-1)).toMatchObject({ authorization: 'Bearer crm-secret-value-123', 'x-tenant': 'tenant-literal-4711', 'x-new': 'plain-value-1234' });

    // A value that was never stored, a POST of a copied view, or a kept secret for a new origin: 400 at the field.
    const unknown = await admin('PUT', '/admin/servers/crm', { ...view, headers: { 'X-Other': '<redacted>' } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'invalid_value', param: 'headers.X-Other' });
    const copied = await admin('POST', '/admin/servers', { ...view, server_label: 'copy' });
    expect(copied.status).toBe(400);
    expect(copied.body.error.param).toMatch(/^headers\./);
    const moved = await admin('PUT', '/admin/servers/crm', { ...view, server_url: mcp.url.replace('127.0.0.1', 'localhost') });
    expect(moved.status).toBe(400);
    expect(moved.body.error).toMatchObject({ code: 'invalid_value', param: 'headers.Authorization' });
    expect(moved.body.error.message).toMatch(/another origin/);
    expect(readFileSync(b.configPath, 'utf8')).toContain('tenant-literal-4711');
  });

  it('refresh returns a fresh listing', async () => {
    await admin('POST', '/admin/servers', record('fx', mcp.url));
    await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'fx' } } });
    const r = await admin('POST', '/admin/servers/fx/refresh');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'mcp_list_tools', server_label: 'fx' });
    expect(mcp.counters.list).toBe(2); // the first listing and one for the refresh
  });

  it.each([
    [{ server_url: 'http://x.example' }, 'missing_required_parameter', 'server_label'],
    [{ server_label: 'a b', server_url: 'http://x.example' }, 'invalid_value', 'server_label'],
    [{ server_label: 'a', server_url: 'ftp://x.example' }, 'invalid_value', 'server_url'],
    [{ server_label: 'a', server_url: 'http://x.example', transport: 'ws' }, 'invalid_value', 'transport'],
    [{ server_label: 'a', server_url: 'http://x.example', surprise: 1 }, 'invalid_value', 'surprise'],
    [{ server_label: 'a', server_url: 'http://x.example', approval: { wait_ms: 60001 } }, 'invalid_value', 'approval.wait_ms'],
    [{ server_label: 'a', server_url: 'http://x.example', headers: { 'Content-Type': 'x' } }, 'invalid_value', 'headers.Content-Type'],
    [{ server_label: 'a', server_url: 'http://x.example', headers: { A: 'Bearer ${NOT_SET_ANYWHERE}' } }, 'invalid_value', 'headers.A'],
    [{ server_label: 'a', server_url: 'http://127.0.0.1:1/mcp' }, 'egress_denied', 'server_url'],
    [{ server_label: 'a', server_url: 'http://localhost:1/mcp' }, 'egress_denied', 'server_url'],
    [{ server_label: 'a', server_url: 'http://169.254.169.254/', allow_private_network: true }, 'egress_denied', 'server_url'],
  ])('invalid record %j → 400 %s naming %s', async (body, code, param) => {
    const r = await admin('POST', '/admin/servers', body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code, param });
  });

  it('a missing ${NAME} is named in the error', async () => {
    const r = await admin('POST', '/admin/servers', { server_label: 'a', server_url: 'http://x.example', headers: { A: 'Bearer ${NOT_SET_ANYWHERE}' } });
    expect(r.body.error.message).toContain('NOT_SET_ANYWHERE');
  });

  it('a malformed percent-escape in a path is a 400, not a 500', async () => {
    for (const path of ['/admin/servers/%E0%A4%A', '/admin/keys/%E0%A4%A', '/admin/servers/%ZZ/refresh']) {
      const r = await b.call(path.endsWith('refresh') ? 'POST' : 'GET', path, { token: ADMIN });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value' });
    }
  });

  it('only the admin token opens /admin', async () => {
    for (const token of [null, KEY_A, APPROVER, 'nope']) {
      const r = await b.call('GET', '/admin/servers', { token });
      expect(r.status).toBe(401);
      expect(r.body.error.type).toBe('authentication_error');
    }
  });

  it('writes the file with mode 0600 and it survives a restart', async () => {
    await admin('POST', '/admin/servers', record('keep', mcp.url, { headers: { 'X-K': '${CRM_TOKEN}' } }));
    expect(statSync(b.configPath).mode & 0o777).toBe(0o600);
    const onDisk = JSON.parse(readFileSync(b.configPath, 'utf8'));
    expect(onDisk.servers[0].headers['X-K']).toBe('${CRM_TOKEN}'); // references stay unexpanded at rest
    const again = await FileRegistryStore.open(b.configPath);
    expect((await again.get('KEEP'))?.server_url).toBe(mcp.url);
  });
});

describe('registry file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'registry-'));
  const write = (name: string, data: unknown) => {
    const p = join(dir, name);
    writeFileSync(p, typeof data === 'string' ? data : JSON.stringify(data));
    return p;
  };
  it('a missing file is an empty registry', async () => {
    expect(await readServersFile(join(dir, 'absent.json'))).toEqual([]);
  });
  it.each([
    ['not json', '{', /not valid JSON/],
    ['wrong shape', { servers: {} }, /invalid the file/],
    ['bad field', { servers: [{ server_label: 'ok', server_url: 'http://a.example' }, { server_label: 'crm', server_url: 'nope' }] }, /server "crm", field server_url/],
    ['unnamed record', { servers: [{ server_url: 'http://a.example' }] }, /server #0, field server_label/],
    ['duplicate labels', { servers: [{ server_label: 'a', server_url: 'http://a.example' }, { server_label: 'A', server_url: 'http://a.example' }] }, /appears twice/],
  ])('refuses %s, naming record and field', async (name, data, msg) => {
    await expect(readServersFile(write(`${name}.json`, data))).rejects.toThrow(msg);
  });
  it('serializes concurrent writes; each acknowledged write is on disk', async () => {
    const p = join(dir, 'concurrent.json');
    const store = await FileRegistryStore.open(p);
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.create({ ...recordDefaults(`s${i}`) })));
    const disk = await readServersFile(p);
    expect(disk.map((r) => r.server_label).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `s${i}`).sort());
  });
});

describe('status.breaker (SPEC §13)', () => {
  it('reads "closed", then "open" once a failing server opens it, then "closed" after a good probe', async () => {
    const fs = await startFaultServer({ call: 'status_500' });
    const b = await startBroker({
      servers: [record('bad', fs.url, { transport: 'streamable_http' })],
      tuning: { breakerThreshold: 3, breakerHalfOpenMs: 400 },
    });
    try {
      const tool = { type: 'mcp', server_label: 'bad' };
      const view = async () => (await b.call('GET', '/admin/servers/bad', { token: ADMIN })).body.status.breaker;
      expect(await view()).toBe('closed');
      expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool } })).status).toBe(200);
      for (let i = 0; i < 3; i++) {
        const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
        expect(r.body.error).toMatchObject({ type: 'http_error', code: 500 });
      }
      expect(await view()).toBe('open');
      expect((await b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } })).body.error.code).toBe('circuit_open');
      fs.call = 'ok';
      await new Promise((r) => setTimeout(r, 500));
      expect((await b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } })).body.status).toBe('completed');
      expect(await view()).toBe('closed');
    } finally {
      await b.close();
      await fs.close();
    }
  });
});

function recordDefaults(label: string) {
  return {
    server_label: label,
    server_url: 'http://a.example/mcp',
    transport: 'auto' as const,
    headers: {},
    require_approval: 'always' as const,
    allowed_tools: null,
    approval: { mode: 'caller' as const, wait_ms: 0 },
    allow_private_network: false,
    tool_cache_ttl_s: 300,
    call_timeout_ms: 30000,
  };
}
