import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startHostileServer, type HostileServer } from './fixtures/hostileUpstream.js';
import { startMcpFixture } from './fixtures/mcpServer.js';
import { startV2Server, type V2Fixture, type V2Mode } from './fixtures/v2Server.js';

jest.setTimeout(30_000);

const tool = { type: 'mcp', server_label: 'up' };
const list = (b: TestBroker) => b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
const call = (b: TestBroker, name: string, args: Record<string, unknown> = {}) => b.call('POST', '/v1/mcp/call', { body: { tool, name, arguments: args } });
const status = async (b: TestBroker) => (await b.call('GET', '/admin/servers/up', { token: ADMIN })).body.status;

async function until(check: () => Promise<boolean>, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (await check()) return;
  throw new Error('condition not met in time');
}

describe.each(['modern', 'stateless', 'dual'] as V2Mode[])('an SDK v2 server (%s)', (mode) => {
  let v2: V2Fixture;
  let b: TestBroker;
  afterEach(async () => {
    await b?.close();
    await v2?.close();
  });

  it('protocol auto speaks 2026-07-28: server/discover, no initialize; list and call work', async () => {
    v2 = await startV2Server(mode, { listTtlMs: 60_000 });
    b = await startBroker({ servers: [record('up', v2.url)] });
    const l = await list(b);
    expect(l.status).toBe(200);
    expect(l.body.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    expect((await call(b, 'echo', { text: 'hi' })).body).toMatchObject({ status: 'completed', output: 'echo: hi' });
    expect(v2.methods).toContain('server/discover');
    expect(v2.methods).not.toContain('initialize');
    expect(await status(b)).toMatchObject({ protocol_in_use: '2026-07-28', transport_in_use: 'streamable_http', last_error: null });
  });

  it('protocol 2025-11-25: legacy where the server serves it, the server’s reason where it does not', async () => {
    v2 = await startV2Server(mode);
    b = await startBroker({ servers: [record('up', v2.url, { protocol: '2025-11-25' })] });
    const l = await list(b);
    expect(v2.methods).not.toContain('server/discover');
    if (mode === 'modern') {
      expect(l.status).toBe(424);
      expect(l.body.error.message).toMatch(/Unsupported protocol version/);
      const c = await call(b, 'echo', { text: 'x' });
      expect(c.status).toBe(424);
      expect((await status(b)).last_error).toMatch(/Unsupported protocol version/);
      return;
    }
    expect(l.status).toBe(200);
    expect((await call(b, 'echo', { text: 'old' })).body.output).toBe('echo: old');
    expect(v2.methods).toContain('initialize');
    expect((await status(b)).protocol_in_use).toBe('2025-11-25');
  });
});

describe('a 2026-07-28 tool whose argument is mirrored into a header (SEP-2243 x-mcp-header)', () => {
  let v2: V2Fixture;
  let b: TestBroker;
  afterEach(async () => {
    await b?.close();
    await v2?.close();
    b = undefined as unknown as TestBroker;
    v2 = undefined as unknown as V2Fixture;
  });

  it('a listing on the connection teaches it: calls go out mirrored at once, and the SDK server takes them', async () => {
    v2 = await startV2Server('stateless', { headerTool: true, listTtlMs: 60_000 });
    b = await startBroker({ servers: [record('up', v2.url, { protocol: '2026-07-28' })] });
    expect((await list(b)).body.tools.map((t: { name: string }) => t.name)).toEqual(['echo', 'regional']);
    for (const region of ['eu', 'us']) {
      const before = v2.methods.length;
      expect((await call(b, 'regional', { region })).body).toMatchObject({ status: 'completed', output: `region: ${region}` });
      expect(v2.methods.slice(before)).toEqual(['tools/call']);
    }
    expect(v2.regionHeaders).toEqual(['eu', 'us']);
    expect(v2.calls).toBe(2);
    // A tool without header declarations is not affected.
    expect((await call(b, 'echo', { text: 'hi' })).body).toMatchObject({ status: 'completed', output: 'echo: hi' });
  });

  describe('against a hand-written server', () => {
    let hs: HostileServer;
    beforeAll(async () => {
      hs = await startHostileServer();
    });
    afterAll(() => hs.close());
    afterEach(() => {
      hs.headersUndeclared = false;
    });
    const seen = () => hs.seen.headers ?? [];
    /** The broker's listing predates the server's declarations: the HeaderMismatch path. */
    const listUndeclared = async (tb: TestBroker) => {
      hs.headersUndeclared = true;
      expect((await list(tb)).status).toBe(200);
      hs.headersUndeclared = false;
    };

    it('a tool whose x-mcp-header declaration is invalid is withheld and named in status (SEP-2243: a client excludes it)', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      const names = (await list(b)).body.tools.map((t: { name: string }) => t.name);
      expect(names).toContain('regional');
      expect(names).not.toContain('badheader');
      expect((await status(b)).unsupported_tools).toEqual([{ name: 'badheader', reason: expect.stringMatching(/invalid x-mcp-header/) }]);
      const at = seen().length;
      expect((await call(b, 'badheader', { x: 1 })).body).toMatchObject({ status: 'failed', error: { code: -32602 } });
      expect(seen().slice(at)).not.toContain('tools/call');
    });

    it('the listing teaches every header-declaring tool: each call goes out mirrored at once, never refused', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      await list(b);
      for (const [name, args] of [['regional', { region: 'eu' }], ['zoned', { zone: 'z1' }]] as const) {
        const at = seen().length;
        expect((await call(b, name, args)).body).toMatchObject({ status: 'completed', output: `called ${name}` });
        expect(seen().slice(at)).toEqual(['tools/call']);
      }
    });

    it('a listing from before the declarations: the first call learns them from the server’s HeaderMismatch (refused before running), and that one walk teaches every tool of the listing', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      await listUndeclared(b);
      let at = seen().length;
      expect((await call(b, 'regional', { region: 'eu' })).body).toMatchObject({ status: 'completed', output: 'called regional' });
      expect(seen().slice(at)).toEqual(['tools/call', 'tools/list', 'tools/call']);
      at = seen().length;
      expect((await call(b, 'zoned', { zone: 'z1' })).body).toMatchObject({ status: 'completed', output: 'called zoned' });
      expect(seen().slice(at)).toEqual(['tools/call']);
    });

    it('a tool’s outcome does not depend on another tool’s HeaderMismatch: the broker never fills the Client’s listing cache (which would make it check output schemas)', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      await listUndeclared(b);
      const before = (await call(b, 'badschema')).body;
      expect(before).toMatchObject({ status: 'completed', output: 'called badschema' });
      expect((await call(b, 'regional', { region: 'eu' })).body).toMatchObject({ status: 'completed' });
      const after = (await call(b, 'badschema')).body;
      expect({ ...after, id: before.id }).toEqual(before);
    });

    it('a listing the server said changed while it ran does not set the declarations: the call learns them from its own walk', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers_notify'), { protocol: '2026-07-28' })] });
      expect((await list(b)).status).toBe(200);
      const sent = () => hs.seen.headers_notify ?? [];
      const at = sent().length;
      expect((await call(b, 'regional', { region: 'eu' })).body).toMatchObject({ status: 'completed', output: 'called regional' });
      // The catalog lists again (the stale listing was not kept), that listing is told of a change
      // too, so the call goes out unmirrored, is refused, walks and is sent mirrored.
      expect(sent().slice(at)).toEqual(['tools/list', 'tools/call', 'tools/list', 'tools/call']);
    });

    it('the call’s timeout bounds it whole: a HeaderMismatch’s listing walk and second send get only what is left of it', async () => {
      // One tool per page, 400 ms each: every page is within call_timeout_ms, the walk (2 s) is not.
      b = await startBroker({ servers: [record('up', hs.url('headers_slow'), { protocol: '2026-07-28', call_timeout_ms: 1000 })] });
      // The catalog's walk (each page has its own timeout), from before the declarations.
      hs.headersUndeclared = true;
      expect((await list(b)).status).toBe(200);
      hs.headersUndeclared = false;
      const at = (hs.seen.headers_slow ?? []).length;
      const t0 = performance.now();
      const r = await call(b, 'regional', { region: 'eu' });
      const took = performance.now() - t0;
      expect(r.body).toMatchObject({ type: 'mcp_call', status: 'failed', output: null, error: { code: 504, message: 'The MCP server timed out.' } });
      // Not sent a second time: the walk ran out of the call's time.
      expect((hs.seen.headers_slow ?? []).slice(at).filter((m) => m === 'tools/call')).toEqual(['tools/call']);
      // Bounded by the call's timeout (plus slack for a loaded machine), not by pages × timeout.
      expect(took).toBeLessThan(1000 + 500);
    });

    it('calls refused together share one listing walk (single flight), not one walk each', async () => {
      // One tool per page, 400 ms each: the walk takes seconds, so every refusal lands while it runs.
      b = await startBroker({ servers: [record('up', hs.url('headers_slow'), { protocol: '2026-07-28', call_timeout_ms: 8000 })] });
      const sent = () => hs.seen.headers_slow ?? [];
      let at = sent().length;
      hs.headersUndeclared = true;
      expect((await list(b)).status).toBe(200);
      hs.headersUndeclared = false;
      const pages = sent().slice(at).filter((m) => m === 'tools/list').length;
      expect(pages).toBeGreaterThan(1);
      at = sent().length;
      const rs = await Promise.all([1, 2, 3, 4].map(() => call(b, 'regional', { region: 'eu' })));
      for (const r of rs) expect(r.body).toMatchObject({ status: 'completed', output: 'called regional' });
      const after = sent().slice(at);
      // Four refused sends, one walk (not four), four mirrored sends.
      expect(after.filter((m) => m === 'tools/call')).toHaveLength(8);
      expect(after.filter((m) => m === 'tools/list')).toHaveLength(pages);
    });

    it('the call that started a shared walk can leave: the others still learn from it and complete', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers_slow'), { protocol: '2026-07-28', call_timeout_ms: 8000 })] });
      hs.headersUndeclared = true;
      expect((await list(b)).status).toBe(200);
      hs.headersUndeclared = false;
      const at = (hs.seen.headers_slow ?? []).length;
      // The first call is refused, starts the walk, and its client goes away half a second in.
      const ac = new AbortController();
      const first = fetch(`${b.url}/v1/mcp/call`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tool, name: 'regional', arguments: { region: 'eu' } }),
        signal: ac.signal,
      }).catch((e: Error) => e);
      while (!(hs.seen.headers_slow ?? []).slice(at).includes('tools/list')) await new Promise((r) => setTimeout(r, 20));
      const second = call(b, 'zoned', { zone: 'z1' });
      // The second call has been refused and joined the walk when its own tools/call is seen.
      while ((hs.seen.headers_slow ?? []).slice(at).filter((m) => m === 'tools/call').length < 2) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 100));
      ac.abort();
      expect(await first).toMatchObject({ name: 'AbortError' });
      const t0 = performance.now();
      expect((await second).body).toMatchObject({ status: 'completed', output: 'called zoned' });
      // It finished with the walk (seconds), not at its own 8 s timeout.
      expect(performance.now() - t0).toBeLessThan(6000);
      expect((hs.seen.headers_slow ?? []).slice(at).filter((m) => m === 'tools/call')).toHaveLength(3);
    });

    it.each(['rounds', 'rounds_zoned'])('the call’s timeout bounds an input_required flow whole, every round included (%s)', async (name) => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28', call_timeout_ms: 1000 })] });
      await list(b);
      const at = seen().length;
      const t0 = performance.now();
      const r = await call(b, name, { zone: 'z1' });
      const took = performance.now() - t0;
      expect(r.body).toMatchObject({ type: 'mcp_call', status: 'failed', output: null, error: { code: 504, message: 'The MCP server timed out.' } });
      // 300 ms per round and the SDK driver's pacing: the third round at most, not ten.
      const rounds = seen().slice(at).filter((m) => m === 'tools/call').length;
      expect(rounds).toBeGreaterThanOrEqual(2);
      expect(rounds).toBeLessThanOrEqual(3);
      expect(took).toBeLessThan(1000 + 500);
    });

    it('a header-declaring tool’s answer is read as any other 2026-07-28 call’s: an error without a message is the server’s error at once, not a timeout', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28', call_timeout_ms: 3000 })] });
      await list(b);
      const t0 = performance.now();
      const r = await call(b, 'bare_error_zoned', { zone: 'z1' });
      expect(r.body.status).toBe('failed');
      expect(JSON.stringify(r.body.error)).not.toMatch(/timed out/);
      expect(r.body.error).toMatchObject({ code: -32000 });
      expect(performance.now() - t0).toBeLessThan(2000);
    });

    it('a tool that only mentions x-mcp-header in its schema’s text declares nothing: its HeaderMismatch is the server’s answer, not resent', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      await list(b);
      const at = seen().length;
      const r = await call(b, 'mentions', { k: 'v' });
      expect(r.body.status).not.toBe('completed');
      expect(JSON.stringify(r.body)).toMatch(/Header mismatch/);
      expect(seen().slice(at)).toEqual(['tools/call', 'tools/list']);
    });

    it('a server that refuses every header: at most two sends and one listing per call, then its error', async () => {
      b = await startBroker({ servers: [record('up', hs.url('headers'), { protocol: '2026-07-28' })] });
      await listUndeclared(b);
      // The first call learns the declaration and sends once more, mirrored; a later one, already
      // mirrored, finds nothing new in the listing and does not send again.
      for (const sends of [['tools/call', 'tools/list', 'tools/call'], ['tools/call', 'tools/list']]) {
        const at = seen().length;
        const r = await call(b, 'stubborn', { k: 'v' });
        expect(r.body.status).not.toBe('completed');
        expect(JSON.stringify(r.body)).toMatch(/Header mismatch/);
        expect(seen().slice(at)).toEqual(sends);
      }
    });
  });
});

// A stateless 2025 endpoint has no stream to notify on; the others do, in both eras.
describe.each([
  ['modern', 'auto'],
  ['dual', 'auto'],
  ['dual', '2025-11-25'],
] as const)('tools/list_changed from an SDK v2 server (%s, protocol %s)', (mode, protocol) => {
  let v2: V2Fixture;
  let b: TestBroker;
  afterEach(async () => {
    await b?.close();
    await v2?.close();
  });
  it('reaches the broker (modern era: over subscriptions/listen) and the next listing has the new tool', async () => {
    v2 = await startV2Server(mode, { listTtlMs: 60_000 });
    b = await startBroker({ servers: [record('up', v2.url, { protocol })] });
    expect((await list(b)).headers.get('x-mcp-cache')).toBe('miss');
    expect((await list(b)).headers.get('x-mcp-cache')).toBe('hit');
    if (protocol === 'auto') await until(async () => v2.methods.includes('subscriptions/listen'));
    else await new Promise((r) => setTimeout(r, 200)); // the legacy session's GET stream opens after initialize
    v2.addTool('added');
    await until(async () => (await list(b)).body.tools.some((t: { name: string }) => t.name === 'added'));
  });
});

describe('the record field protocol', () => {
  let b: TestBroker | undefined;
  afterEach(async () => b?.close());

  it('is validated, shown in the view, and a PUT drops what was remembered', async () => {
    const v2 = await startV2Server('dual', { listTtlMs: 60_000 });
    try {
      b = await startBroker();
      const bad = await b.call('POST', '/admin/servers', { token: ADMIN, body: { ...record('up', v2.url), protocol: '2024-01-01' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.param).toBe('protocol');
      const created = await b.call('POST', '/admin/servers', { token: ADMIN, body: record('up', v2.url) });
      expect(created.status).toBe(201);
      expect((await list(b)).status).toBe(200);
      expect(await status(b)).toMatchObject({ protocol_in_use: '2026-07-28' });
      const put = await b.call('PUT', '/admin/servers/up', { token: ADMIN, body: { ...record('up', v2.url), protocol: '2025-11-25' } });
      expect(put.body.protocol).toBe('2025-11-25');
      expect((await list(b)).status).toBe(200);
      expect(await status(b)).toMatchObject({ protocol_in_use: '2025-11-25' });
      expect(v2.methods).toContain('initialize');
    } finally {
      await v2.close();
    }
  });
});

describe('eras and negotiation', () => {
  let b: TestBroker | undefined;
  let hs: HostileServer;
  beforeAll(async () => {
    hs = await startHostileServer();
  });
  afterAll(async () => hs.close());
  afterEach(async () => {
    await b?.close();
    b = undefined;
  });

  it('a call retried on a new session (its session refused) stays within its timeout, set-up included', async () => {
    let inits = 0;
    let calls = 0;
    const server = createServer(async (req, res) => {
      if (req.method !== 'POST') return void res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
      const parts: Buffer[] = [];
      for await (const c of req) parts.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(parts).toString('utf8'));
      const json = (status: number, payload: unknown, h: Record<string, string> = {}) => void res.writeHead(status, { 'content-type': 'application/json', ...h }).end(JSON.stringify(payload));
      if (body.id === undefined) return void res.writeHead(202).end();
      if (body.method === 'initialize') {
        // The second session takes longer than the call has left.
        if (++inits > 1) await new Promise((r) => setTimeout(r, 1500));
        return json(200, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: body.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'x', version: '1' } } }, { 'mcp-session-id': `s${inits}` });
      }
      if (body.method === 'tools/list') return json(200, { jsonrpc: '2.0', id: body.id, result: { tools: [{ name: 't', inputSchema: { type: 'object' } }] } });
      if (body.method === 'tools/call' && ++calls === 1) {
        await new Promise((r) => setTimeout(r, 600));
        return json(404, { jsonrpc: '2.0', id: body.id, error: { code: -32001, message: 'Session not found' } });
      }
      return json(200, { jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: 'ok' }] } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      b = await startBroker({ servers: [record('up', `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, { protocol: '2025-11-25', call_timeout_ms: 1000 })] });
      expect((await list(b)).status).toBe(200);
      const t0 = performance.now();
      const r = await call(b, 't');
      const took = performance.now() - t0;
      expect(r.body.status).toBe('failed');
      expect(JSON.stringify(r.body.error)).toMatch(/timed out/i);
      expect(inits).toBe(2); // the retry did start a new session
      // 600 ms refused + what is left (400 ms) for the new session; its own full timeout would end at 1600 ms.
      expect(took).toBeLessThan(1400);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it("ttlMs shortens the listing's TTL: 0 caches nothing, a long one is a hit", async () => {
    const v0 = await startV2Server('modern', { listTtlMs: 0 });
    const v1 = await startV2Server('modern', { listTtlMs: 120_000 });
    try {
      b = await startBroker({ servers: [record('up', v0.url), record('long', v1.url, { tool_cache_ttl_s: 600 })] });
      await list(b);
      expect((await list(b)).headers.get('x-mcp-cache')).toBe('miss');
      const long = { type: 'mcp', server_label: 'long' };
      await b.call('POST', '/v1/mcp/list_tools', { body: { tool: long } });
      expect((await b.call('POST', '/v1/mcp/list_tools', { body: { tool: long } })).headers.get('x-mcp-cache')).toBe('hit');
    } finally {
      await v0.close();
      await v1.close();
    }
  });

  it('a v1 (2025-era) server under protocol auto falls back on its negotiation answer and is remembered', async () => {
    const v1 = await startMcpFixture();
    try {
      b = await startBroker({ servers: [record('up', v1.url)] });
      expect((await list(b)).status).toBe(200);
      expect((await call(b, 'echo', { text: 'v1' })).body.status).toBe('completed');
      expect(await status(b)).toMatchObject({ protocol_in_use: '2025-11-25', last_error: null });
      expect(v1.counters.initialize).toBe(1);
    } finally {
      await v1.close();
    }
  });

  it('a server that refuses both eras: its reason reaches the caller', async () => {
    b = await startBroker({ servers: [record('up', hs.url('refuse'))], env: { BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.1/32' } });
    const l = await list(b);
    expect(l.status).toBe(424);
    expect(l.body.error.message).toMatch(/Unsupported protocol version: this server speaks only 1999-01-01/);
    const inline = await b.call('POST', '/v1/mcp/call', {
      body: { tool: { type: 'mcp', server_label: 'in', server_url: hs.url('refuse'), require_approval: 'never' }, name: 't', arguments: {} },
    });
    expect(JSON.stringify(inline.body)).toMatch(/Unsupported protocol version/);
  });

  it('never downgrades on a network failure: a dropped server/discover sends no initialize (security.md 35)', async () => {
    b = await startBroker({ servers: [record('up', hs.url('reset_discover'))] });
    const l = await list(b);
    expect(l.status).toBe(424);
    expect(l.body.error.code).toBe('connection_error');
    expect(hs.seen.reset_discover).toContain('server/discover');
    expect(hs.seen.reset_discover).not.toContain('initialize');
    expect((await status(b)).protocol_in_use).toBeNull();
  });

  it('a tools/list_changed during a listing marks it stale; the listing still answers its callers', async () => {
    b = await startBroker({ servers: [record('up', hs.url('notify_list'))] });
    const [one, two] = await Promise.all([list(b), list(b)]);
    expect(one.status).toBe(200);
    expect(two.status).toBe(200);
    expect(one.body.tools.map((t: { name: string }) => t.name)).toEqual(['t']);
    expect(hs.seen.notify_list!.filter((m) => m === 'tools/list')).toHaveLength(1); // one shared listing
    const three = await list(b);
    expect(three.headers.get('x-mcp-cache')).toBe('miss'); // the stale result was not kept
    expect((await call(b, 't')).body.status).toBe('completed');
  });

  it('never downgrades on an unrelated error: a 429 to server/discover sends no initialize', async () => {
    b = await startBroker({ servers: [record('up', hs.url('rate_probe'))] });
    const l = await list(b);
    expect(l.status).toBe(424);
    expect(l.body.error.message).toMatch(/429/);
    expect(hs.seen.rate_probe).toEqual(['server/discover']);
  });

  it('set-up is bounded by the record’s call_timeout_ms', async () => {
    b = await startBroker({ servers: [record('up', hs.url('hang_setup'), { call_timeout_ms: 300 })] });
    const started = Date.now();
    const l = await list(b);
    expect(l.status).toBe(424);
    expect(l.body.error.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a tool that needs task-based execution is withheld, named in status, and refused without sending', async () => {
    b = await startBroker({ servers: [record('up', hs.url('tasks'))] });
    const l = await list(b);
    expect(l.body.tools.map((t: { name: string }) => t.name)).toEqual(['t']);
    expect((await status(b)).unsupported_tools).toEqual([{ name: 'research', reason: expect.stringMatching(/task-based execution/) }]);
    const c = await call(b, 'research');
    expect(c.body).toMatchObject({ status: 'failed', error: { type: 'mcp_protocol_error', code: -32602 } });
    expect(hs.seen.tasks).not.toContain('tools/call');
    expect((await call(b, 't')).body.status).toBe('completed');
  });
});

describe('a record pinned to 2026-07-28 against a 2025-era server', () => {
  it('424 names the server\'s own refusal (SPEC §10: a refusal keeps its reason)', async () => {
    const mcp = await startMcpFixture();
    const b = await startBroker({ servers: [record('up', mcp.url, { protocol: '2026-07-28', transport: 'streamable_http' })] });
    try {
      const r = await list(b);
      expect(r.status).toBe(424);
      expect(r.body.error.message).toMatch(/^Error retrieving tool list from MCP server: 'up'\. Http status code: 404 \(Not Found\): Session not found$/);
      expect(mcp.counters.initialize).toBe(0);
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});
