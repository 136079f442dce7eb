import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { GOOD_TOKEN, startHostileServer, type HostileServer } from './fixtures/hostileServer.js';

jest.setTimeout(60_000);

const WIDEN = { BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.1/32' };

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) if (await check()) return;
  throw new Error('condition not met in time');
}

/** Issue 10 (items 1, 2, 4) and SPEC §10 against a malicious MCP server. */
describe('a hostile MCP server', () => {
  let hs: HostileServer;
  let b: TestBroker | undefined;
  beforeAll(async () => {
    hs = await startHostileServer();
  });
  afterAll(async () => hs.close());
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });
  const list = (label: string, extra: Record<string, unknown> = {}) => b!.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: label, ...extra } } });
  const call = (label: string, name: string, extra: Record<string, unknown> = {}) =>
    b!.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: label, ...extra }, name, arguments: {} } });

  it('a paged listing bomb fails whole (424 "tool list too large"), caches nothing, and stays bounded in memory and time', async () => {
    hs.pageTools = 32; // 2 MiB pages, under the per-response cap: only the listing bound stops it
    hs.toolBytes = 64 * 1024;
    b = await startBroker({ servers: [record('bomb', hs.url('bomb'))], env: WIDEN });
    const rss0 = process.memoryUsage().rss;
    const started = Date.now();
    // Ten listings, each its own credential set (the attack of issue 10): each fails alone.
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => list('bomb', { headers: { 'x-tenant': `tenant-${i}` } })));
    for (const r of results) {
      expect(r.status).toBe(424);
      expect(r.body.error.message).toMatch(/tool list too large/);
    }
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(768 * 1024 * 1024);
    // At most the pages that fit in 8 MiB, plus the one that crossed it, per listing.
    const pages = hs.seen.bomb!.filter((m) => m === 'tools/list').length;
    expect(pages).toBeLessThanOrEqual(10 * 5);
    // Nothing cached: the next listing goes upstream again, and fails again.
    const again = await list('bomb', { headers: { 'x-tenant': 'tenant-0' } });
    expect(again.status).toBe(424);
    expect(hs.seen.bomb!.filter((m) => m === 'tools/list').length).toBeGreaterThan(pages);
    const s = await b.call('GET', '/admin/servers/bomb', { token: ADMIN });
    expect(s.body.status.tools_cached).toBe(false);
    expect(s.body.status.last_error).toMatch(/tool list too large/);
  });

  it('more than 10 000 tools across pages is refused the same way', async () => {
    hs.pageTools = 3000;
    hs.toolBytes = 8;
    b = await startBroker({ servers: [record('bomb', hs.url('bomb'))] });
    const r = await list('bomb');
    expect(r.status).toBe(424);
    expect(r.body.error.message).toMatch(/tool list too large \(over 10000 tools\)/);
  });

  it('an SSE answer left open completes on the JSON-RPC answer, and the broker closes that response', async () => {
    b = await startBroker({ servers: [record('open', hs.url('sse_open'), { call_timeout_ms: 10_000 })] });
    const before = hs.sseClosed;
    const started = Date.now();
    const r = await call('open', 't');
    expect(r.body).toMatchObject({ status: 'completed', output: 'answered, stream left open' });
    expect(Date.now() - started).toBeLessThan(5000);
    await until(() => hs.sseClosed === before + 1);
  });

  it('a timed-out call aborts its upstream request (no socket outlives its in-flight slot)', async () => {
    b = await startBroker({ servers: [record('hang', hs.url('hang'), { call_timeout_ms: 300 })] });
    const before = hs.hangClosed;
    const r = await call('hang', 't');
    expect(r.body).toMatchObject({ status: 'failed', error: { type: 'http_error', code: 504 } });
    await until(() => hs.hangClosed === before + 1);
  });

  it('a caller who disconnects aborts the upstream request', async () => {
    b = await startBroker({ servers: [record('hang', hs.url('hang'), { call_timeout_ms: 30_000 })] });
    await call('hang', 'missing'); // warms the listing: the next call goes straight to tools/call
    const before = hs.hangClosed;
    const seen = hs.seen.hang!.length;
    const ac = new AbortController();
    const pending = fetch(`${b.url}/v1/mcp/call`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-key-a-0123456789' },
      body: JSON.stringify({ tool: { type: 'mcp', server_label: 'hang' }, name: 't', arguments: {} }),
      signal: ac.signal,
    }).catch(() => 'aborted');
    await until(() => hs.seen.hang!.length > seen);
    ac.abort();
    expect(await pending).toBe('aborted');
    await until(() => hs.hangClosed === before + 1);
  });

  it('a caller who leaves a shared listing does not fail the callers who joined it', async () => {
    b = await startBroker({ servers: [record('slow', hs.url('slow_list'))] });
    const ac = new AbortController();
    const first = fetch(`${b.url}/v1/mcp/list_tools`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test-key-a-0123456789' },
      body: JSON.stringify({ tool: { type: 'mcp', server_label: 'slow' } }),
      signal: ac.signal,
    }).catch(() => 'aborted');
    await until(() => (hs.seen.slow_list ?? []).includes('tools/list'));
    const second = list('slow');
    await new Promise((r) => setTimeout(r, 300)); // the second caller joins the listing in flight
    ac.abort();
    expect(await first).toBe('aborted');
    const r = await second;
    expect(r.status).toBe(200);
    expect(r.body.tools.map((t: { name: string }) => t.name)).toEqual(['t']);
  });

  it("callers' bad credentials never open the breaker, for them or anyone else; the breaker is per server URL", async () => {
    b = await startBroker({
      servers: [record('auth', hs.url('auth')), record('good', hs.url('good')), record('broken', hs.url('broken'))],
      env: WIDEN,
      tuning: { breakerThreshold: 3, breakerHalfOpenMs: 60_000 },
    });
    for (let i = 0; i < 6; i++) {
      const wrong = await list('auth', { authorization: 'wrong-token-456' });
      expect(wrong.status).toBe(424);
      expect(wrong.body.error.message).toMatch(/401/);
      // An inline URL on the same origin answering 401, from the same caller.
      const inline = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: `in${i}`, server_url: hs.url('auth'), authorization: 'nope-token-789' } } });
      expect(inline.status).toBe(424);
      expect(inline.body.error.code).not.toBe('circuit_open');
    }
    // The right credentials still work, and so does the neighbour on the origin.
    const right = await list('auth', { authorization: GOOD_TOKEN.slice('Bearer '.length) });
    expect(right.status).toBe(200);
    expect((await list('good')).status).toBe(200);
    // The server's own failures do open its breaker, for that URL only.
    for (let i = 0; i < 3; i++) expect((await list('broken')).status).toBe(424);
    const open = await list('broken');
    expect(open.status).toBe(503);
    expect(open.body.error.code).toBe('circuit_open');
    expect((await call('good', 't')).body.status).toBe('completed');
    expect((await list('auth', { authorization: GOOD_TOKEN.slice('Bearer '.length) })).status).toBe(200);
  });

  it('a server whose errors echo the credentials leaves no trace of them in items, 424s, the admin view or the log', async () => {
    const secret = 'rec0rd-s3cret-token-value';
    const canary = 'canary-value-31337';
    b = await startBroker({
      servers: [
        record('echo', hs.url('echo'), { headers: { Authorization: `Bearer ${secret}`, 'X-Canary': canary } }),
        record('echo_list', hs.url('echo_list'), { headers: { Authorization: `Bearer ${secret}`, 'X-Canary': canary } }),
      ],
    });
    const c = await call('echo', 't');
    expect(c.body).toMatchObject({ status: 'failed', error: { type: 'mcp_protocol_error', code: -32000 } });
    expect(c.body.error.message).toMatch(/call refused/);
    const l = await list('echo_list');
    expect(l.status).toBe(424);
    expect(l.body.error.message).toMatch(/bad request/); // the server's reason, scrubbed
    const views = [await b.call('GET', '/admin/servers/echo', { token: ADMIN }), await b.call('GET', '/admin/servers/echo_list', { token: ADMIN })];
    expect(views[1]!.body.status.last_error).toMatch(/bad request/);
    const everything = JSON.stringify([c.body, l.body, views.map((v) => v.body)]) + b.logs.join('\n');
    expect(everything).not.toContain(secret);
    expect(everything).not.toContain(canary);
    expect(everything).not.toMatch(/\?code=/);
  });

  it('every upstream failure is logged once at warn: label, kind, status or code; never path, query or header value', async () => {
    b = await startBroker({ servers: [record('broken', hs.url('broken')), record('echo', hs.url('echo'), { headers: { 'X-Canary': 'log-canary-value' } })] });
    await list('broken');
    await call('echo', 't');
    const warns = b.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'mcp upstream failure');
    expect(warns.filter((w) => w.server_label === 'broken')).toEqual([expect.objectContaining({ level: 40, method: 'tools/list', kind: 'http_error', http_status: 500, server_fault: true })]);
    expect(warns.filter((w) => w.server_label === 'echo')).toEqual([expect.objectContaining({ method: 'tools/call', kind: 'protocol_error', jsonrpc_code: -32000, server_fault: false })]);
    const all = b.logs.join('\n');
    expect(all).not.toContain('/broken/mcp');
    expect(all).not.toContain('log-canary-value');
  });
});
