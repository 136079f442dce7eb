import { startHostileServer, type HostileServer } from './fixtures/hostileServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, APPROVER, KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';

/** Issue 10: what an API key holder (or an admin) could still do. Each test failed before its fix. */

const CALLER_HEADER = 'ca"ller\\hdr-secret-1';
const CALLER_AUTH = 'au"th\\token-secret-2';
const RECORD_SECRET = 're"cord\\header-secret-3&x=1';
const TAILS = ['hdr-secret-1', 'token-secret-2', 'header-secret-3'];

const nested = (n: number): unknown => {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
};

describe('issue 10 hardening (broker API)', () => {
  let hostile: HostileServer;
  let model: FakeModel;
  let b: TestBroker;
  const inline = (label = 'evil', extra: object = {}) => ({ type: 'mcp', server_label: label, server_url: hostile.url, require_approval: 'never', ...extra });

  beforeAll(async () => {
    hostile = await startHostileServer();
    model = await startFakeModel();
    b = await startBroker({
      env: { BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', UPSTREAM_BASE_URL: model.url },
      // As in production, the broker's own configuration is in the same environment.
      processEnv: {
        REC_SECRET: RECORD_SECRET,
        SHORT_SECRET: 'abc',
        NL_TOKEN: 'line\nbreak-token-value',
        ALLOWED_TOKEN: 'allowed-token-value',
        BROKER_APPROVER_TOKEN: APPROVER,
        BROKER_ADMIN_TOKEN: ADMIN,
        BROKER_API_KEYS: `${KEY_A},${KEY_B}`,
        UPSTREAM_BASE_URL: model.url,
      },
      servers: [
        record('hostile', hostile.url, { headers: { Authorization: 'Bearer ${REC_SECRET}' } }),
        record('leaky', hostile.url, { headers: { 'X-Leak': '${BROKER_APPROVER_TOKEN}' } }),
        record('badenv', hostile.url, { headers: { 'X-Token': '${NL_TOKEN}' } }),
      ],
    });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
    await hostile.close();
  });

  describe('item 2: a caller header value fetch would refuse is a 400 before any I/O', () => {
    const bad = ['a\x01b-long-value', 'del\x7f-long-value', 'nul\0-long-value', 'euro€-long-value', 'line\nbreak-long-value'];
    it.each(bad.map((v) => [JSON.stringify(v), v]))('%s → 400 naming tool.headers.X-A, nothing sent', async (_n, v) => {
      for (const tool of [inline(), { type: 'mcp', server_label: 'hostile' }]) {
        const before = hostile.hits;
        for (const path of ['/v1/mcp/list_tools', '/v1/mcp/call']) {
          const r = await b.call('POST', path, { body: { tool: { ...tool, headers: { 'X-A': v } }, name: 'ok', arguments: {} } });
          expect(r.status).toBe(400);
          expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'tool.headers.X-A' });
        }
        const auth = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...tool, authorization: v } } });
        expect(auth.status).toBe(400);
        expect(auth.body.error).toMatchObject({ code: 'invalid_value', param: 'tool.authorization' });
        expect(hostile.hits).toBe(before);
      }
    });
    it('in /v1/responses the param is tools[i].headers.X', async () => {
      const before = model.requests.length;
      const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'hi', tools: [inline('ok_one'), inline('evil', { headers: { 'X-A': 'a\x01b-long-value' } })] } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_value', param: 'tools[1].headers.X-A' });
      expect(model.requests.length).toBe(before);
    });
    it('a stored record whose variable now expands to a control character fails with 424 before any I/O', async () => {
      const before = hostile.hits;
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'badenv' } } });
      expect(r.status).toBe(424);
      expect(r.body.error.message).toContain('headers.X-Token');
      expect(r.body.error.message).not.toContain('break-token-value');
      expect(hostile.hits).toBe(before);
    });
    it('the breaker is not opened by callers\' bad header values', async () => {
      for (let i = 0; i < 8; i++) await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'hostile', headers: { 'X-A': 'bad\x01value-long' } } } });
      const good = await b.call('POST', '/v1/mcp/call', { token: KEY_B, body: { tool: { type: 'mcp', server_label: 'hostile' }, name: 'ok', arguments: { n: 1 } } });
      expect(good.body).toMatchObject({ status: 'completed', output: 'ok 1' });
    });
  });

  describe('item 9: credentials too short to scrub are refused', () => {
    it.each([
      [{ headers: { 'X-Key': 'abc' } }, 'tool.headers.X-Key'],
      [{ headers: { 'X-Key': '1234567' } }, 'tool.headers.X-Key'],
      [{ headers: { Authorization: 'Bearer abc' } }, 'tool.headers.Authorization'],
      [{ authorization: 'abc' }, 'tool.authorization'],
      [{ authorization: 'x' }, 'tool.authorization'],
    ])('caller %j → 400 %s', async (extra, param) => {
      const before = hostile.hits;
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: inline('evil', extra) } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_value', param });
      expect(r.body.error.message).toMatch(/at least 8/);
      expect(hostile.hits).toBe(before);
    });
    it('admin record header values shorter than 8 after expansion are refused at write time', async () => {
      for (const headers of <Array<Record<string, string>>>[{ 'X-Api-Key': '${SHORT_SECRET}' }, { Authorization: 'Bearer ${SHORT_SECRET}' }, { 'X-Token': 'short' }]) {
        const r = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('shorty', hostile.url, { headers }) });
        expect(r.status).toBe(400);
        expect(r.body.error).toMatchObject({ code: 'invalid_value', param: `headers.${Object.keys(headers)[0]}` });
        expect(r.body.error.message).not.toContain('abc');
      }
      expect((await b.call('GET', '/admin/servers/shorty', { token: ADMIN })).status).toBe(404);
    });
  });

  describe('item 6 + 9: successful outputs are scrubbed, secrets with " and \\ included', () => {
    const noSecrets = (text: string) => {
      for (const t of TAILS) expect(text).not.toContain(t);
    };
    it.each(['echo_json', 'echo_raw', 'echo_structured', 'echo_error'])('%s returns no credential, in any form', async (name) => {
      for (const tool of [{ type: 'mcp', server_label: 'hostile' }, inline()]) {
        const r = await b.call('POST', '/v1/mcp/call', {
          body: { tool: { ...tool, headers: { 'X-Caller': CALLER_HEADER }, authorization: CALLER_AUTH }, name, arguments: {} },
        });
        expect(r.status).toBe(200);
        expect(r.body.type).toBe('mcp_call');
        // The server did receive them (this is an echo, not a refusal).
        const seen = JSON.stringify(hostile.headers.at(-1));
        expect(seen).toContain('hdr-secret-1');
        const text = JSON.stringify(r.body);
        expect(text).toContain('<redacted>');
        noSecrets(text);
        noSecrets(decodeURIComponent(text.replace(/%(?![0-9A-F]{2})/g, '%25')));
      }
      noSecrets(b.logs.join(''));
    });
    it('the Responses layer gives the model and the caller scrubbed outputs', async () => {
      model.push({ calls: [{ name: 'echo_json', arguments: {} }, { name: 'echo_structured', arguments: {} }] }, { text: 'done' });
      const r = await b.call('POST', '/v1/responses', {
        body: { model: 'm', input: 'go', tools: [{ type: 'mcp', server_label: 'hostile', headers: { 'X-Caller': CALLER_HEADER }, authorization: CALLER_AUTH, require_approval: 'never' }] },
      });
      expect(r.status).toBe(200);
      expect(r.body.output.filter((i: { type: string }) => i.type === 'mcp_call')).toHaveLength(2);
      noSecrets(JSON.stringify(r.body));
      noSecrets(JSON.stringify(model.requests.slice(-2)));
    });
  });

  describe('item 5: ${NAME} expands only what BROKER_EXPAND_ENV allows', () => {
    it('the broker\'s own secrets are refused with the same text as a name that is not set', async () => {
      const texts: string[] = [];
      for (const name of ['BROKER_APPROVER_TOKEN', 'BROKER_API_KEYS', 'BROKER_ADMIN_TOKEN', 'UPSTREAM_BASE_URL', 'NOT_SET_ANYWHERE_X']) {
        const r = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('exfil', hostile.url, { headers: { 'X-Leak': `\${${name}}|padding` } }) });
        expect(r.status).toBe(400);
        expect(r.body.error).toMatchObject({ code: 'invalid_value', param: 'headers.X-Leak' });
        texts.push(r.body.error.message.replace(name, 'NAME'));
      }
      expect(new Set(texts).size).toBe(1);
      const ok = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('allowed', hostile.url, { headers: { 'X-Ok': '${ALLOWED_TOKEN}' } }) });
      expect(ok.status).toBe(201);
    });
    it('a stored record referencing a broker secret fails like a missing variable, and nothing is sent', async () => {
      const before = hostile.hits;
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'leaky' } } });
      expect(r.status).toBe(424);
      expect(r.body.error.message).toContain('BROKER_APPROVER_TOKEN');
      expect(r.body.error.message).toContain('not set or not allowed');
      expect(hostile.hits).toBe(before);
      for (const h of hostile.headers) expect(JSON.stringify(h)).not.toContain(APPROVER);
    });
  });

  describe('item 7: /metrics cardinality', () => {
    it('caller-chosen inline labels are one series value; registered servers keep their label', async () => {
      for (let i = 0; i < 40; i++) {
        const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: inline(`attacker_label_${i}`) } });
        expect(r.status).toBe(200);
      }
      await b.call('POST', '/v1/mcp/call', { body: { tool: inline('attacker_label_call'), name: 'ok', arguments: {} } });
      await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'hostile' }, name: 'ok', arguments: {} } });
      const text = await (await fetch(`${b.url}/metrics`)).text();
      expect(text).not.toContain('attacker_label');
      expect(text).toMatch(/broker_mcp_upstream_duration_seconds_count\{server_label="inline",method="tools\/list"/);
      expect(text).toMatch(/server_label="hostile"/);
    });
  });

  describe('item 8: nesting depth is limited at the edge', () => {
    const deepText = (n: number) => '{"x":' + '['.repeat(n) + ']'.repeat(n) + '}';
    /** A JSON text nesting `n` objects at `path` of `base` (built as text: too deep to stringify). */
    const deepBody = (base: object, field: string, n: number) => {
      const text = JSON.stringify({ ...base, [field]: '__DEEP__' });
      return text.replace('"__DEEP__"', '{"a":'.repeat(n) + '1' + '}'.repeat(n));
    };
    it.each([
      ['/v1/mcp/call', () => deepBody({ tool: inline(), name: 'ok' }, 'arguments', 5000), null],
      ['/v1/mcp/call', () => JSON.stringify({ tool: inline(), name: 'ok', arguments: deepText(5000) }), 'arguments'],
      ['/v1/mcp/call', () => JSON.stringify({ tool: inline(), name: 'ok', arguments: { n: 1, x: nested(64) } }), 'arguments'],
      ['/v1/mcp/list_tools', () => deepBody({}, 'tool', 5000), null],
      ['/v1/responses', () => deepBody({ model: 'm' }, 'input', 5000), null],
      ['/admin/servers', () => deepBody(record('deep', hostile.url), 'headers', 5000), null],
      ['/v1/mcp/approvals/mcpr_x/decision', () => deepBody({ approve: true }, 'reason', 5000), null],
    ])('%s with deep nesting → 400 invalid_value (%#)', async (path, body, param) => {
      const token = path.startsWith('/admin') ? ADMIN : path.includes('approvals') ? APPROVER : KEY_A;
      const r = await b.call('POST', path, { token, body: body() });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value' });
      if (param === 'arguments') expect(r.body.error.param).toBe('arguments');
      expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
    });
    it('63 levels of arguments still run', async () => {
      const r = await b.call('POST', '/v1/mcp/call', { body: { tool: inline(), name: 'ok', arguments: { n: 2, x: nested(62) } } });
      expect(r.body).toMatchObject({ status: 'completed', output: 'ok 2' });
    });
    it('a model\'s deeply nested tool arguments end in a failed call item, not a 500', async () => {
      model.push({ calls: [{ name: 'ok', arguments: deepText(5000) }] }, { text: 'ok' });
      const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'go', tools: [inline()] } });
      expect(r.status).toBe(200);
      const call = r.body.output.find((i: { type: string }) => i.type === 'mcp_call');
      expect(call).toMatchObject({ status: 'failed', name: 'ok' });
      expect(JSON.stringify(call.error)).toMatch(/deeper than 64/);
    });
  });
});

describe('issue 10 item 5: an explicit BROKER_EXPAND_ENV', () => {
  it('expands only the names it lists, at write time and when used', async () => {
    const hostile = await startHostileServer();
    const b = await startBroker({
      env: { BROKER_EXPAND_ENV: 'CRM_*,GITHUB_TOKEN' },
      processEnv: { CRM_TOKEN: 'crm-token-value-1', GITHUB_TOKEN: 'gh-token-value-2', OTHER_TOKEN: 'other-token-value-3' },
      servers: [record('other', hostile.url, { headers: { 'X-T': '${OTHER_TOKEN}' } })],
    });
    try {
      for (const [ref, status] of [['CRM_TOKEN', 201], ['GITHUB_TOKEN', 201], ['OTHER_TOKEN', 400], ['GITHUB_TOKEN2', 400]] as const) {
        const r = await b.call('POST', '/admin/servers', { token: ADMIN, body: record(`x_${ref}`, hostile.url, { headers: { 'X-T': `\${${ref}}` } }) });
        expect([ref, r.status]).toEqual([ref, status]);
      }
      const used = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'x_CRM_TOKEN' }, name: 'ok', arguments: {} } });
      expect(used.body.status).toBe('completed');
      expect(hostile.headers.at(-1)?.['x-t']).toBe('crm-token-value-1');
      const refused = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'other' } } });
      expect(refused.status).toBe(424);
      for (const h of hostile.headers) expect(JSON.stringify(h)).not.toContain('other-token-value-3');
    } finally {
      await b.close();
      await hostile.close();
    }
  });
});

describe('issue 10 item 3: approvals bounded per key, in count and bytes; paged list', () => {
  let hostile: HostileServer;
  let b: TestBroker;
  afterEach(async () => {
    await b?.close();
    await hostile?.close();
  });
  const start = async (env: Record<string, string>) => {
    hostile = await startHostileServer();
    b = await startBroker({ env, servers: [record('gated', hostile.url, { require_approval: 'always' })] });
  };
  const create = (key: string, args: object = { n: 1 }) =>
    b.call('POST', '/v1/mcp/call', { token: key, body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'ok', arguments: args } });
  const cancel = (key: string, id: string) => b.call('POST', `/v1/mcp/approvals/${id}/decision`, { token: key, body: { approve: false } });
  const MB = { n: 1, blob: 'x'.repeat(1_000_000) };

  it('bytes: pending requests beyond the byte bound are 429 with Retry-After; create-and-cancel never grows the holding', async () => {
    await start({ BROKER_MAX_APPROVAL_BYTES: String(3 * 1024 * 1024) });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await create(KEY_A, MB);
      expect(r.body.type).toBe('mcp_approval_request');
      ids.push(r.body.id);
    }
    const over = await create(KEY_A, MB);
    expect(over.status).toBe(429);
    expect(over.body.error).toMatchObject({ type: 'rate_limit_error', code: 'too_many_pending_approvals' });
    expect(over.body.error.message).toMatch(/bytes/);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await create(KEY_B, MB)).body.type).toBe('mcp_approval_request'); // per key
    // A cancelled request makes room; the oldest finished one is dropped for it.
    expect((await cancel(KEY_A, ids[0]!)).body.status).toBe('denied');
    expect((await create(KEY_A, MB)).body.type).toBe('mcp_approval_request');
    expect((await b.call('GET', `/v1/mcp/approvals/${ids[0]}`)).status).toBe(404);
    for (const id of ids.slice(1)) await cancel(KEY_A, id);
    // The attack of the issue: create-and-cancel with 1 MB arguments, many times.
    for (let i = 0; i < 30; i++) {
      const r = await create(KEY_A, MB);
      expect(r.status).toBe(200);
      expect((await cancel(KEY_A, r.body.id)).status).toBe(200);
    }
    let bytes = 0;
    let held = 0;
    let after: string | undefined;
    for (;;) {
      const page = await b.call('GET', `/v1/mcp/approvals?limit=100${after ? `&after=${after}` : ''}`, { token: APPROVER });
      for (const r of page.body.data) {
        bytes += r.arguments.length;
        held++;
      }
      if (!page.body.has_more) break;
      after = page.body.last_id;
    }
    expect(held).toBeLessThanOrEqual(4 + 1); // key A's bounded holding + key B's one
    expect(bytes).toBeLessThanOrEqual(3 * 1024 * 1024 + 1_000_100);
  }, 60_000);

  it('count: decided and expired records count until dropped; live ones alone can lock only their own key', async () => {
    await start({ BROKER_MAX_PENDING_APPROVALS: '3' });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create(KEY_A)).body.id);
    const over = await create(KEY_A);
    expect(over.status).toBe(429);
    expect(over.body.error.message).toMatch(/3 approval requests/);
    await b.call('POST', `/v1/mcp/approvals/${ids[1]}/decision`, { token: APPROVER, body: { approve: true } });
    expect((await create(KEY_A)).status).toBe(429); // approved is still live
    await cancel(KEY_A, ids[2]!);
    const next = await create(KEY_A);
    expect(next.body.type).toBe('mcp_approval_request');
    expect((await b.call('GET', `/v1/mcp/approvals/${ids[2]}`)).status).toBe(404); // the denied one was dropped for it
    expect((await b.call('GET', `/v1/mcp/approvals/${ids[1]}`)).body.status).toBe('approved');
    expect((await create(KEY_B)).status).toBe(200);
  });

  it('GET /v1/mcp/approvals is paged in the OpenAI list shape', async () => {
    await start({});
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await create(i % 2 ? KEY_B : KEY_A)).body.id);
    await cancel(KEY_A, ids[0]!);
    const first = await b.call('GET', '/v1/mcp/approvals?limit=3', { token: APPROVER });
    expect(Object.keys(first.body).sort()).toEqual(['data', 'first_id', 'has_more', 'last_id', 'object']);
    expect(first.body).toMatchObject({ object: 'list', has_more: true, first_id: ids[0], last_id: ids[2] });
    const seen = [...first.body.data.map((r: { id: string }) => r.id)];
    let after = first.body.last_id;
    for (;;) {
      const page = await b.call('GET', `/v1/mcp/approvals?limit=3&after=${after}`, { token: APPROVER });
      seen.push(...page.body.data.map((r: { id: string }) => r.id));
      if (!page.body.has_more) break;
      after = page.body.last_id;
    }
    expect(seen).toEqual(ids);
    const pending = await b.call('GET', '/v1/mcp/approvals?status=pending&limit=2', { token: APPROVER });
    expect(pending.body.data.map((r: { id: string }) => r.id)).toEqual([ids[1], ids[2]]);
    const all = await b.call('GET', '/v1/mcp/approvals', { token: APPROVER });
    expect(all.body).toMatchObject({ has_more: false, first_id: ids[0], last_id: ids[6] });
    const empty = await b.call('GET', `/v1/mcp/approvals?after=${ids[6]}`, { token: APPROVER });
    expect(empty.body).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false });
    for (const q of ['limit=0', 'limit=101', 'limit=x', 'after=mcpr_unknown']) {
      const r = await b.call('GET', `/v1/mcp/approvals?${q}`, { token: APPROVER });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_value');
    }
  });
});
