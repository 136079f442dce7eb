import fc from 'fast-check';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';

/** Bodies near the real shapes, plus arbitrary JSON, malformed text and prototype tricks. */
const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constant('__proto__'));
const label = fc.oneof(fc.constantFrom('fx', 'FX', 'nope', '', 'a b', '__proto__', 'x'.repeat(70)), fc.string({ maxLength: 10 }));
const toolParam = fc.record(
  {
    type: fc.oneof(fc.constant('mcp'), fc.constant('function'), scalar),
    server_label: fc.oneof(label, scalar),
    server_url: fc.oneof(fc.constantFrom('https://127.0.0.1/mcp', 'http://x', 'file:///etc/passwd', 'https://[::1]/', 'notaurl'), scalar),
    headers: fc.oneof(fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(fc.string({ maxLength: 12 }), scalar), { maxKeys: 4 }), scalar),
    authorization: scalar,
    allowed_tools: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.record({ tool_names: fc.array(scalar, { maxLength: 2 }), read_only: scalar }, { requiredKeys: [] }), scalar),
    require_approval: fc.oneof(fc.constantFrom('always', 'never', 'sometimes'), fc.record({ always: fc.jsonValue(), never: fc.jsonValue() }, { requiredKeys: [] }), scalar),
  },
  { requiredKeys: [] },
);
const body = (shape: fc.Arbitrary<unknown>) =>
  fc.oneof(
    { arbitrary: shape.map((v) => JSON.stringify(v)), weight: 6 },
    { arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)), weight: 2 },
    { arbitrary: fc.string({ maxLength: 40 }), weight: 1 },
    { arbitrary: fc.constantFrom('{"__proto__":{"polluted":1}}', '{"constructor":{"prototype":{"polluted":1}}}', '{"tool":{"type":"mcp","server_label":"fx","headers":{"__proto__":{"polluted":"1"}}}}'), weight: 1 },
  );

const grant = fc.record({ server_label: fc.oneof(label, scalar), allowed_tools: fc.oneof(fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }), fc.jsonValue()), require_approval: fc.oneof(fc.constantFrom('always', 'never'), fc.jsonValue()) }, { requiredKeys: [] });
const keyBody = fc.record(
  { name: fc.oneof(label, scalar), grants: fc.oneof(fc.constant('*'), fc.array(grant, { maxLength: 3 }), scalar), allow_inline_servers: scalar, rate_limit_per_min: fc.oneof(fc.integer({ min: -1, max: 2_000_000 }), scalar), max_pending_approvals: scalar },
  { requiredKeys: [] },
);

describe('fuzzing every JSON endpoint', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let approvalId: string;
  beforeAll(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = await startBroker({ env: { UPSTREAM_BASE_URL: model.url, LOG_LEVEL: 'warn' }, servers: [record('fx', mcp.url, { require_approval: 'always' })] });
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'x' } } });
    approvalId = r.body.id;
    await b.call('POST', '/admin/keys', { token: ADMIN, body: { name: 'k1', grants: '*' } });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
    await mcp.close();
  });

  const endpoints: Array<[string, string, string, fc.Arbitrary<string>]> = [
    ['POST', '/v1/mcp/list_tools', KEY_A, body(fc.record({ tool: toolParam }, { requiredKeys: [] }))],
    ['POST', '/v1/mcp/call', KEY_A, body(fc.record({ tool: toolParam, name: fc.oneof(fc.constantFrom('echo', 'add', 'nope'), scalar), arguments: fc.oneof(fc.jsonValue(), fc.string({ maxLength: 20 })), approval_request_id: scalar }, { requiredKeys: [] }))],
    ['POST', '/admin/servers', ADMIN, body(fc.record({ server_label: label, server_url: fc.oneof(fc.constantFrom('http://127.0.0.1:9/mcp', 'https://x.example/mcp', 'ftp://x'), scalar), headers: fc.jsonValue(), require_approval: fc.jsonValue(), approval: fc.jsonValue(), allow_private_network: scalar, tool_cache_ttl_s: scalar }, { requiredKeys: [] }))],
    ['PUT', '/admin/servers/fx2', ADMIN, body(fc.record({ server_label: label, server_url: scalar, transport: scalar }, { requiredKeys: [] }))],
    ['POST', '/admin/keys', ADMIN, body(keyBody)],
    ['PUT', '/admin/keys/k1', ADMIN, body(keyBody)],
    ['POST', '/admin/keys/k1/rotate', ADMIN, body(fc.record({ grace_s: fc.oneof(fc.integer({ min: -5, max: 1_000_000 }), scalar) }, { requiredKeys: [] }))],
    ['POST', '/v1/mcp/approvals/APPROVAL/decision', APPROVER, body(fc.record({ approve: scalar, reason: scalar, arguments_sha256: scalar }, { requiredKeys: [] }))],
    ['POST', '/v1/responses', KEY_A, body(fc.record({ model: fc.oneof(fc.constant('m'), scalar), input: fc.oneof(fc.string({ maxLength: 10 }), fc.array(fc.oneof(fc.record({ role: fc.constantFrom('user', 'assistant', 'x'), content: fc.oneof(fc.string({ maxLength: 8 }), fc.jsonValue()) }), fc.record({ type: fc.constantFrom('mcp_approval_response', 'mcp_call', 'function_call_output', 'item_reference', 'reasoning', 'x'), id: scalar, approval_request_id: scalar, approve: scalar, call_id: scalar, output: scalar })), { maxLength: 3 })), tools: fc.array(toolParam, { maxLength: 2 }), tool_choice: fc.jsonValue(), previous_response_id: scalar, stream: fc.constant(false), max_tool_calls: scalar, temperature: scalar }, { requiredKeys: [] }))],
  ];

  it.each(endpoints)('%s %s never answers 5xx and always with an OpenAI error body', async (method, path, token, arb) => {
    await fc.assert(
      fc.asyncProperty(arb, async (raw) => {
        const r = await b.call(method, path.replace('APPROVAL', approvalId), { token, body: raw });
        expect(r.status === 500 || r.status > 504).toBe(false);
        if (r.status >= 500) expect(r.body.error.code).toMatch(/^(upstream_error|upstream_timeout|circuit_open)$/);
        if (r.status >= 300) {
          const e = r.body?.error;
          expect(Object.keys(r.body ?? {})).toEqual(['error']);
          expect(Object.keys(e).sort()).toEqual(['code', 'message', 'param', 'type']);
          expect(typeof e.message).toBe('string');
          expect(typeof e.type).toBe('string');
          expect(e.param === null || typeof e.param === 'string').toBe(true);
          expect(e.code === null || typeof e.code === 'string').toBe(true);
        }
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: 60, verbose: 1 },
    );
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  }, 60_000);

  it('deeply nested bodies and arguments are a 400, never a 5xx or a stack overflow', async () => {
    const deep = fc.record({ depth: fc.integer({ min: 101, max: 6000 }), open: fc.constantFrom('[', '{"a":'), leaf: fc.constantFrom('1', '"x"', 'null', '{}') });
    const text = ({ depth, open, leaf }: { depth: number; open: string; leaf: string }) => open.repeat(depth) + leaf + (open === '[' ? ']' : '}').repeat(depth);
    const where = fc.constantFrom<Array<[string, string, string, (d: string) => string]>>(
      ['POST', '/v1/mcp/call', KEY_A, (d) => `{"tool":{"type":"mcp","server_label":"fx"},"name":"echo","arguments":{"text":${d}}}`],
      ['POST', '/v1/mcp/call', KEY_A, (d) => `{"tool":{"type":"mcp","server_label":"fx"},"name":"echo","arguments":${JSON.stringify(`{"text":${d}}`)}}`],
      ['POST', '/v1/mcp/list_tools', KEY_A, (d) => `{"tool":{"type":"mcp","server_label":"fx","allowed_tools":${d}}}`],
      ['POST', '/admin/servers', ADMIN, (d) => `{"server_label":"deep","server_url":"http://127.0.0.1:9/mcp","headers":${d}}`],
      ['POST', '/v1/mcp/approvals/APPROVAL/decision', APPROVER, (d) => `{"approve":true,"reason":${d}}`],
      ['POST', '/v1/responses', KEY_A, (d) => `{"model":"m","input":[{"role":"user","content":${d}}]}`],
    );
    await fc.assert(
      fc.asyncProperty(deep, where, async (d, [method, path, token, build]) => {
        const r = await b.call(method, path.replace('APPROVAL', approvalId), { token, body: build(text(d)) });
        expect(r.status).toBe(400);
        expect(r.body.error.code).toBe('invalid_value');
      }),
      { numRuns: 40, verbose: 1 },
    );
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  }, 60_000);

  it('paths and queries of the newer routes (keys, cancel, resume, OAuth, console, admin tools)', async () => {
    model.push({ text: 'bg' });
    const bg = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', background: true } });
    expect(bg.status).toBe(200);
    for (let i = 0; i < 100 && (await b.call('GET', `/v1/responses/${bg.body.id}`)).body.status !== 'completed'; i++) await new Promise((r) => setTimeout(r, 20));
    const seg = fc.oneof(
      fc.constantFrom('k1', 'K1', 'fx', bg.body.id, '%', '%ZZ', '%2e%2e', '..', '%00', '__proto__', 'constructor', '%E0%A4%A', 'x'.repeat(300), 'a%2Fb', '%20', 'index.html', 'app.js'),
      fc.string({ maxLength: 12 }).map(encodeURIComponent),
      fc.string({ maxLength: 12 }),
    );
    const q = fc.oneof(fc.constantFrom('', '-1', '-2', '0', '1e9', '9007199254740993', 'NaN', '1.5', 'true', '%', '%ZZ', 'x'.repeat(5000)), fc.string({ maxLength: 16 }).map(encodeURIComponent));
    const requests = (s: string, v: string): Array<[string, string, string | null, unknown?]> => [
      ['GET', `/admin/keys/${s}`, ADMIN],
      ['PUT', `/admin/keys/${s}`, ADMIN, { grants: '*' }],
      ['POST', `/admin/keys/${s}/rotate`, ADMIN, { grace_s: 0 }],
      ['DELETE', `/admin/keys/${s}x`, ADMIN],
      ['POST', `/v1/responses/${s}/cancel`, KEY_A, v],
      ['GET', `/v1/responses/${s}?stream=true&starting_after=${v}`, KEY_A],
      ['GET', `/v1/responses/${bg.body.id}?stream=${v}&starting_after=${v}`, KEY_A],
      ['GET', `/v1/responses/${s}/input_items?after=${v}&order=${v}&limit=${v}`, KEY_A],
      ['DELETE', `/v1/responses/${s}x`, KEY_A],
      ['GET', `/oauth/callback?code=${v}&state=${s}&iss=${v}`, null],
      ['GET', `/oauth/callback?state=${s}&error=${v}`, null],
      ['GET', `/oauth/callback?state=${s}&state=${v}&code=${v}&code=1`, null],
      ['POST', `/admin/servers/${s}/oauth/authorize`, ADMIN, v],
      ['GET', `/admin/servers/${s}/tools`, ADMIN],
      ['GET', `/console/${s}`, null],
      ['GET', `/console/${s}/${v}`, null],
    ];
    await fc.assert(
      fc.asyncProperty(seg, q, async (s, v) => {
        for (const [method, path, token, reqBody] of requests(s, v)) {
          const r = await b.call(method, path, { token, ...(reqBody === undefined ? {} : { body: typeof reqBody === 'string' ? reqBody : JSON.stringify(reqBody) }) });
          expect([method, path, r.status < 500]).toEqual([method, path, true]);
          if (r.status >= 400 && r.headers.get('content-type')?.includes('json')) expect(Object.keys(r.body ?? {})).toEqual(['error']);
        }
      }),
      { numRuns: 30, verbose: 1 },
    );
    expect((await b.call('GET', '/admin/keys/k1', { token: ADMIN })).status).toBeLessThan(500);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await fetch(`${b.url}/healthz`)).status).toBe(200);
  }, 90_000);

  it('query strings of the GET routes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 30 }), fc.string({ maxLength: 10 }), async (q, id) => {
        for (const path of [`/v1/mcp/approvals/${encodeURIComponent(id)}?wait_ms=${encodeURIComponent(q)}`, `/v1/mcp/approvals?status=${encodeURIComponent(q)}`, `/v1/responses/${encodeURIComponent(id)}/input_items?limit=${encodeURIComponent(q)}`]) {
          const r = await b.call('GET', path, { token: path.includes('status=') ? APPROVER : KEY_A });
          expect(r.status).toBeLessThan(500);
        }
      }),
      { numRuns: 40 },
    );
  }, 60_000);
});
