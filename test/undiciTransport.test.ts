import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { Client, ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from '@modelcontextprotocol/client';
import { RESPONSE_TOO_LARGE, UndiciTransport, UpstreamConnectionError, isConnectFailure } from '../src/mcp/undiciTransport.js';
import { callToolResult } from '../src/mcp/callResult.js';
import { BrokerClient, callTool2026 } from '../src/mcp/modernCall.js';
import { headerDeclarations, paramHeaders } from '../src/mcp/paramHeaders.js';
import { SseParser, type SseEvent } from '../src/mcp/sseParser.js';
import { startTransportV2Server as startV2Server, type TransportV2Fixture as V2Fixture } from './fixtures/transportV2Server.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFaultServer, type Fault, type FaultServer } from './fixtures/faultServer.js';
import { freePort } from './fixtures/child.js';

const agent = new Agent({ keepAliveTimeout: 10_000 });
const MAX = 64 * 1024;
const open: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const f of open.reverse()) await f().catch(() => undefined);
  await agent.close();
});

type Mode = 'auto' | 'legacy';
async function connect(url: string, mode: Mode = 'auto', o: { onChanged?: () => void; headers?: Record<string, string>; timeout?: number } = {}) {
  const transport = new UndiciTransport(new URL(url), { dispatcher: agent, maxBytes: MAX, headers: o.headers, reconnectDelayMs: 50 });
  const client = new Client(
    { name: 'transport-test', version: '1' },
    { versionNegotiation: { mode }, ...(o.onChanged ? { listChanged: { tools: { autoRefresh: false, debounceMs: 0, onChanged: () => o.onChanged!() } } } : {}) },
  );
  await client.connect(transport, { timeout: o.timeout ?? 5000 });
  open.push(() => client.close());
  return { client, transport };
}

const json = (res: ServerResponse, payload: unknown) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(payload));
};

/** A hand-written JSON-RPC-over-HTTP server for exact misbehaviour: GET is 405, notifications 202. */
async function tinyServer(onRequest: (req: IncomingMessage, res: ServerResponse, body: { id?: unknown; method?: string }) => Promise<void>): Promise<string> {
  const server: Server = createServer(async (req, res) => {
    if (req.method !== 'POST') return void res.writeHead(405).end();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString());
    if (body.id === undefined) return void res.writeHead(202).end();
    await onRequest(req, res, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  open.push(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`;
}

const text = (r: unknown) => ((r as { content: Array<{ text?: string }> }).content[0]?.text ?? '');
const until = async (cond: () => boolean, ms = 5000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  return cond();
};

describe('v2 SDK server', () => {
  let dual: V2Fixture;
  let dualSse: V2Fixture;
  let modern: V2Fixture;
  beforeAll(async () => {
    dual = await startV2Server({ mode: 'dual' });
    dualSse = await startV2Server({ mode: 'dual', responseMode: 'sse' });
    modern = await startV2Server({ mode: 'modern' });
    open.push(() => dual.close(), () => dualSse.close(), () => modern.close());
  });

  it.each([
    ['JSON answers', () => dual],
    ['SSE answers', () => dualSse],
  ])('2026-07-28, %s: discover, list and call with no session', async (_n, fx) => {
    const { client, transport } = await connect(fx().url, 'auto');
    expect(transport.protocolVersion).toBe('2026-07-28');
    expect(transport.sessionId).toBeUndefined();
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name).sort()).toEqual(['big', 'echo', 'progress', 'slow']);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'hé ✓' } }))).toBe('echo: hé ✓');
    // Many calls in flight on one transport all complete.
    const many = await Promise.all(Array.from({ length: 40 }, (_, i) => client.callTool({ name: 'echo', arguments: { text: `n${i}` } })));
    expect(many.map(text)).toEqual(Array.from({ length: 40 }, (_, i) => `echo: n${i}`));
  });

  it('2025-11-25 against the dual server: stateless initialize, a 405 GET is no error', async () => {
    const errors: Error[] = [];
    const { client, transport } = await connect(dualSse.url, 'legacy');
    transport.onerror = (e) => errors.push(e);
    expect(transport.protocolVersion).toBe('2025-11-25');
    expect(text(await client.callTool({ name: 'progress', arguments: {} }))).toBe('done');
    expect(await until(() => (dualSse.http.GET ?? 0) > 0)).toBe(true);
    expect(errors).toEqual([]);
  });

  it('a modern-only server refuses 2025-11-25 with its reason; auto negotiation reaches it', async () => {
    const err = await connect(modern.url, 'legacy').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SdkHttpError);
    expect((err as SdkHttpError).status).toBe(400);
    expect(String((err as SdkHttpError).data.text)).toMatch(/nsupported protocol version/);
    const { client } = await connect(modern.url, 'auto');
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'm' } }))).toBe('echo: m');
  });

  it('change notifications over subscriptions/listen (2026-07-28)', async () => {
    let changed = 0;
    const { client } = await connect(dualSse.url, 'auto', { onChanged: () => changed++ });
    expect(client.autoOpenedSubscription).toBeDefined();
    dualSse.toolsChanged();
    expect(await until(() => changed > 0)).toBe(true);
    // The open listen stream does not block calls on the same transport.
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'after' } }))).toBe('echo: after');
  });

  it.each([
    ['JSON', () => dual],
    ['SSE', () => dualSse],
  ])('an answer over the cap (%s) is a JSON-RPC error for that call; the transport stays usable', async (_n, fx) => {
    const { client } = await connect(fx().url, 'auto');
    const err = await client.callTool({ name: 'big', arguments: { n: MAX * 2 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe(RESPONSE_TOO_LARGE);
    expect(text(await client.callTool({ name: 'big', arguments: { n: 1000 } }))).toHaveLength(1000);
  });

  it.each([
    ['JSON', () => dual],
    ['SSE', () => dualSse],
  ])('rpc() (2025-11-25): an answer over the cap (%s) fails that call with RESPONSE_TOO_LARGE; concurrent calls and the transport are unharmed', async (_n, fx) => {
    const { transport } = await connect(fx().url, 'legacy');
    const call = (name: string, args: Record<string, unknown>) => transport.rpc('tools/call', { name, arguments: args }, { timeoutMs: 5000 });
    const [big, small] = await Promise.all([call('big', { n: MAX * 2 }).catch((e: unknown) => e), call('echo', { text: 'beside' })]);
    expect(big).toBeInstanceOf(ProtocolError);
    expect((big as ProtocolError).code).toBe(RESPONSE_TOO_LARGE);
    expect(text(small)).toBe('echo: beside');
    expect(text(await call('big', { n: 1000 }))).toHaveLength(1000);
  });

  it.each([
    ['2026-07-28 closes the per-request stream', 'auto'],
    ['2025-11-25 sends notifications/cancelled and closes the POST', 'legacy'],
  ] as const)('an aborted call ends its request (%s)', async (_n, mode) => {
    const { client } = await connect(dualSse.url, mode);
    const before = dualSse.aborted;
    const ac = new AbortController();
    const pending = client.callTool({ name: 'slow', arguments: { ms: 10_000 } }, { signal: ac.signal }).catch((e: unknown) => e);
    expect(await until(() => dualSse.slowNow > 0)).toBe(true);
    ac.abort(new Error('caller went away'));
    expect(await pending).toBeInstanceOf(Error);
    expect(await until(() => dualSse.aborted === before + 1)).toBe(true);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'y' } }))).toBe('echo: y');
  });
});

describe('v1 legacy server with sessions', () => {
  let fx: McpFixture;
  beforeAll(async () => {
    fx = await startMcpFixture();
    open.push(() => fx.close());
  });

  it('initialize sets the session; headers are sent; notifications arrive on the GET stream; DELETE ends the session', async () => {
    let changed = 0;
    const { client, transport } = await connect(fx.url, 'legacy', { onChanged: () => changed++, headers: { 'X-Token': 'tok', 'Mcp-Session-Id': 'caller-cannot-set' } });
    const sid = transport.sessionId;
    expect(sid).toMatch(/.+/);
    expect(transport.protocolVersion).toBe('2025-11-25');
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'v1' } }))).toBe('echo: v1');
    const last = fx.counters.headers[fx.counters.headers.length - 1]!;
    expect(last['x-token']).toBe('tok');
    expect(last['mcp-session-id']).toBe(sid);
    expect(last['mcp-protocol-version']).toBe('2025-11-25');
    // Wait until the standalone GET stream is open, then change the tool list.
    expect(await until(() => fx.counters.headers.some((h) => h['mcp-session-id'] === sid && h.accept === 'text/event-stream'))).toBe(true);
    fx.addTool('late');
    expect(await until(() => changed > 0)).toBe(true);
    const deletes = fx.counters.deletes;
    await transport.terminateSession();
    expect(fx.counters.deletes).toBe(deletes + 1);
    expect(transport.sessionId).toBeUndefined();
  });

  it('a restarted server refuses the old session with 404 (a session refusal the session layer can see)', async () => {
    const { client } = await connect(fx.url, 'legacy');
    await client.callTool({ name: 'echo', arguments: { text: 'before' } });
    await fx.stop();
    await fx.start();
    const call = () => client.callTool({ name: 'echo', arguments: { text: 'after' } }).catch((e: unknown) => e);
    let err = await call();
    // A keep-alive socket the server closed may be reused once (the SDK transport meets the
    // same race): that failure may have reached the server, so it is not a connect failure.
    if (err instanceof UpstreamConnectionError) {
      expect(isConnectFailure(err)).toBe(false);
      err = await call();
    }
    expect(err).toBeInstanceOf(SdkHttpError);
    expect((err as SdkHttpError).status).toBe(404);
    expect(isConnectFailure(err)).toBe(false);
  });
});

describe('@modelcontextprotocol/server-everything over Streamable HTTP', () => {
  // It listens on every interface: a preload makes listen() default to 127.0.0.1.
  const dir = mkdtempSync(join(tmpdir(), 'everything-'));
  const preload = join(dir, 'loopback.cjs');
  writeFileSync(
    preload,
    `const net = require('node:net'); const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
  if ((typeof a[0] === 'number' || typeof a[0] === 'string') && typeof a[1] !== 'string') a.splice(1, 0, '127.0.0.1');
  else if (a[0] && typeof a[0] === 'object' && !a[0].host && !a[0].path) a[0] = { ...a[0], host: '127.0.0.1' };
  return listen.apply(this, a);
};`,
  );
  let proc: ChildProcess | undefined;
  let url = '';
  const start = async (port: number) => {
    proc = spawn(process.execPath, ['--require', preload, require.resolve('@modelcontextprotocol/server-everything/dist/index.js'), 'streamableHttp'], {
      env: { ...process.env, PORT: String(port) },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      proc!.stderr!.on('data', (d: Buffer) => /listening on port/.test(String(d)) && resolve());
      proc!.once('exit', (c) => reject(new Error(`server-everything exited ${c}`)));
    });
    url = `http://127.0.0.1:${port}/mcp`;
  };
  const stop = async () => {
    const p = proc;
    proc = undefined;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill();
    await exited;
  };
  beforeAll(async () => start(await freePort()), 20_000);
  afterAll(stop);

  it('lists, echoes and adds over a session; a restart answers the old session with 400', async () => {
    const { client, transport } = await connect(url, 'auto', { timeout: 10_000 });
    expect(transport.sessionId).toMatch(/.+/);
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    expect(text(await client.callTool({ name: 'echo', arguments: { message: 'hi' } }))).toMatch(/hi/);
    expect(text(await client.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }))).toMatch(/5/);
    const port = Number(new URL(url).port);
    await stop();
    await start(port);
    const call = () => client.callTool({ name: 'echo', arguments: { message: 'again' } }).catch((e: unknown) => e);
    let err = await call();
    if (err instanceof UpstreamConnectionError) err = await call(); // a closed keep-alive socket reused once
    expect(err).toBeInstanceOf(SdkHttpError);
    expect((err as SdkHttpError).status).toBe(400);
  }, 30_000);
});

describe('faults', () => {
  const servers: FaultServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.close();
  });
  async function fault(call: Fault) {
    const s = await startFaultServer({ call, otherOrigin: 'http://127.0.0.2:9' });
    servers.push(s);
    const { client } = await connect(s.url, 'legacy');
    return { s, client };
  }
  const callErr = (c: Client, timeout = 5000) => c.callTool({ name: 't', arguments: {} }, { timeout }).catch((e: unknown) => e);

  it('server down: connect fails as a connection never made', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as AddressInfo).port;
    await new Promise((r) => s.close(r));
    const err = await connect(`http://127.0.0.1:${port}/mcp`, 'legacy').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamConnectionError);
    expect(err).toBeInstanceOf(TypeError);
    expect((err as UpstreamConnectionError).neverSent).toBe(true);
    expect(isConnectFailure(err)).toBe(true);
    // auto negotiation reports it as a failed probe, the cause still a connection never made.
    const probe = await connect(`http://127.0.0.1:${port}/mcp`, 'auto').catch((e: unknown) => e);
    expect(probe).toBeInstanceOf(SdkError);
    expect(isConnectFailure(probe)).toBe(true);
  });

  it('a reset after the request was sent may have reached the server', async () => {
    const { client } = await fault('reset');
    const err = await callErr(client);
    expect(err).toBeInstanceOf(UpstreamConnectionError);
    expect(isConnectFailure(err)).toBe(false);
  });

  it('truncated JSON is a SyntaxError; HTML is unexpected content; a 500 is an HTTP error', async () => {
    expect(await callErr((await fault('truncated_json')).client)).toBeInstanceOf(SyntaxError);
    const html = await callErr((await fault('html_200')).client);
    expect(html).toBeInstanceOf(SdkError);
    expect((html as SdkError).code).toBe(SdkErrorCode.ClientHttpUnexpectedContent);
    const s500 = await callErr((await fault('status_500')).client);
    expect(s500).toBeInstanceOf(SdkHttpError);
    expect((s500 as SdkHttpError).status).toBe(500);
  });

  it('a 64 MiB answer stops at the cap', async () => {
    const { s, client } = await fault('huge_result');
    const err = await callErr(client);
    expect((err as ProtocolError).code).toBe(RESPONSE_TOO_LARGE);
    expect(s.hits.call).toBe(1);
  });

  it('a silent SSE answer and an answer with the wrong id time out', async () => {
    const { client } = await fault('silent_sse');
    const err = await callErr(client, 300);
    expect((err as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    const w = await fault('wrong_id');
    expect(((await callErr(w.client, 300)) as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
  });

  it('a same-origin redirect is followed (307 keeps the POST); a cross-origin one is not', async () => {
    const seen: string[] = [];
    const url = await tinyServer(async (req, res, body) => {
      seen.push(`${req.method} ${req.url}`);
      if (req.url === '/mcp') return void res.writeHead(307, { location: '/real?x=1' }).end();
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'moved', version: '1' } } });
      return json(res, { jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: 'moved fine' }] } });
    });
    const { client } = await connect(url, 'legacy');
    expect(text(await client.callTool({ name: 't', arguments: {} }))).toBe('moved fine');
    expect(seen.filter((s) => s === 'POST /real?x=1').length).toBeGreaterThanOrEqual(2);
    const cross = await callErr((await fault('redirect_cross')).client);
    expect(cross).toBeInstanceOf(SdkHttpError);
    expect((cross as SdkHttpError).status).toBe(307);
    expect((cross as Error).message).toMatch(/Redirect to http:\/\/127\.0\.0\.2:9\/mcp not followed/);
  });

  it('an SSE answer the server keeps open completes the call and is closed by the client', async () => {
    let closedByClient = 0;
    const url = await tinyServer(async (_req, res, body) => {
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'open', version: '1' } } });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`: keep-alive\r\n\r\nevent: message\r\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: 'kept open' }] } })}\r\n\r\n`);
      res.on('close', () => closedByClient++); // never ended by the server
    });
    const { client } = await connect(url, 'legacy');
    const results = await Promise.all([1, 2, 3].map(() => client.callTool({ name: 'x', arguments: {} }, { timeout: 3000 })));
    expect(results.map(text)).toEqual(['kept open', 'kept open', 'kept open']);
    expect(await until(() => closedByClient === 3)).toBe(true);
  });
});

describe('rpc(): a 2025-era request answered by the transport, as the Client would', () => {
  let mcp: McpFixture;
  beforeAll(async () => {
    mcp = await startMcpFixture();
    open.push(() => mcp.close());
  });
  const rpc = (t: UndiciTransport, name: string, args: Record<string, unknown>, o: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
    t.rpc('tools/call', { name, arguments: args }, { timeoutMs: o.timeoutMs ?? 5000, signal: o.signal });

  it('answers on the session beside the Client’s own requests; the ids never meet', async () => {
    const { client, transport } = await connect(mcp.url, 'legacy');
    const [a, list, b] = await Promise.all([rpc(transport, 'echo', { text: 'one' }), client.listTools(), rpc(transport, 'echo', { text: 'two' })]);
    expect([text(a), text(b)]).toEqual(['echo: one', 'echo: two']);
    expect(list.tools.map((t) => t.name)).toContain('echo');
    const errors: Error[] = [];
    client.onerror = (e) => void errors.push(e);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'three' } }))).toBe('echo: three');
    expect(errors).toEqual([]);
  });

  it('a JSON-RPC error is a ProtocolError with its code', async () => {
    const url = await tinyServer(async (_req, res, body) => {
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 't', version: '1' } } });
      json(res, { jsonrpc: '2.0', id: body.id, error: { code: -32602, message: 'no such tool', data: { tool: 'x' } } });
    });
    const { transport } = await connect(url, 'legacy');
    const err = await rpc(transport, 'x', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err).toMatchObject({ code: -32602, message: expect.stringContaining('no such tool') });
  });

  it('a timeout or an abort fails with the SdkError the Client uses and tells the server (notifications/cancelled)', async () => {
    const { transport } = await connect(mcp.url, 'legacy');
    const before = mcp.counters.cancelled;
    const timedOut = await rpc(transport, 'slow', { ms: 5000 }, { timeoutMs: 100 }).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(SdkError);
    expect(timedOut).toMatchObject({ code: SdkErrorCode.RequestTimeout });
    expect(await until(() => mcp.counters.cancelled === before + 1)).toBe(true);
    const ac = new AbortController();
    const pending = rpc(transport, 'slow', { ms: 5000 }, { signal: ac.signal }).catch((e: unknown) => e);
    setTimeout(() => ac.abort('caller went away'), 50);
    const aborted = await pending;
    expect(aborted).toBeInstanceOf(SdkError);
    expect(String((aborted as Error).message)).toContain('caller went away');
    expect(await until(() => mcp.counters.cancelled === before + 2)).toBe(true);
    // An aborted signal never sends.
    const calls = mcp.counters.calls.echo ?? 0;
    await expect(rpc(transport, 'echo', { text: 'x' }, { signal: AbortSignal.abort('already') })).rejects.toBeInstanceOf(SdkError);
    expect(mcp.counters.calls.echo ?? 0).toBe(calls);
  });

  it.each([
    ['text', { content: [{ type: 'text', text: 'hi' }] }],
    ['structured, no content', { structuredContent: { sum: 3 } }],
    ['resultType', { resultType: 'complete', content: [{ type: 'text', text: 'x' }] }],
    ['isError', { content: [{ type: 'text', text: 'bad' }], isError: true }],
    ['extra fields', { content: [], extra: { a: 1 } }],
    ['image and resource link', { content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }, { type: 'resource_link', uri: 'file:///x', name: 'x' }] }],
    ['content not an array', { content: 'text' }],
    ['block without a type', { content: [{ text: 'x' }] }],
    ['another family, no content', { task: { taskId: 't' } }],
    ['content null', { content: null }],
    ['isError a string', { content: [], isError: 'true' }],
    ['structuredContent an array', { content: [], structuredContent: [1] }],
    ['structuredContent null', { content: [], structuredContent: null }],
    ['_meta', { content: [{ type: 'text', text: 'x' }], _meta: { a: 1 } }],
    ['a text block with _meta', { content: [{ type: 'text', text: 'x', _meta: { a: 1 } }] }],
    ['a __proto__ key in a block', JSON.parse('{"content":[{"type":"text","text":"x","__proto__":{"type":"image"}}]}')],
    ['a __proto__ key in the result', JSON.parse('{"__proto__":{"isError":true},"content":[{"type":"text","text":"x"}]}')],
    ['__proto__ and constructor in structuredContent', JSON.parse('{"content":[],"structuredContent":{"__proto__":{"a":1},"constructor":{"prototype":{"b":2}}}}')],
    ['audio, an embedded resource, annotations', { content: [{ type: 'audio', data: 'AAAA', mimeType: 'audio/wav' }, { type: 'resource', resource: { uri: 'file:///a', text: 'a' } }, { type: 'text', text: 'x', annotations: { audience: ['user'], priority: 0.5 } }] }],
    ['a tool_use block', { content: [{ type: 'tool_use', id: 'u', name: 'n', input: {} }] }],
    ['a tool_result block', { content: [{ type: 'tool_result', toolUseId: 'u', content: [] }] }],
    ['structuredContent a string', { content: [{ type: 'text', text: 'x' }], structuredContent: 'x' }],
    ['a text block with an extra key', { content: [{ type: 'text', text: 'x', extra: 1 }] }],
    ['an image block with an extra key', { content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png', extra: 1 }] }],
    ['a text block with null annotations', { content: [{ type: 'text', text: 'x', annotations: null }] }],
    ['isError with no content', { isError: true }],
    ['20000 text blocks', { content: Array.from({ length: 20000 }, (_, i) => ({ type: 'text', text: String(i) })) }],
    // (A non-object `result` is not here: the Client takes it for no message at all and waits
    // for its timeout; rpc() fails it at once as an invalid result — test/unit/callToolResult.)
  ])('same outcome as Client.callTool for an answer of %s', async (_n, result) => {
    const url = await tinyServer(async (_req, res, body) => {
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 't', version: '1' } } });
      json(res, { jsonrpc: '2.0', id: body.id, result });
    });
    const { client, transport } = await connect(url, 'legacy');
    const outcome = (p: Promise<unknown>) => p.then((value) => ({ value }), (e: { code?: unknown }) => ({ error: e?.code }));
    const viaClient = await outcome(client.callTool({ name: 't', arguments: {} }));
    const viaRpc = await outcome(rpc(transport, 't', {}).then(callToolResult));
    expect(viaRpc).toEqual(viaClient);
  });

  it.each([
    ['a message that is an object', '{"code":-32000,"message":{"toString":1}}'],
    ['a code that is an object', '{"code":{"valueOf":1,"toString":1},"message":"m"}'],
    ['an error that is null', 'null'],
  ])('a hostile error envelope (%s) fails the call at once, over JSON and over SSE: never a hang, never a throw elsewhere', async (_n, error) => {
    const url = await tinyServer(async (req, res, body) => {
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 't', version: '1' } } });
      const raw = `{"jsonrpc":"2.0","id":${JSON.stringify(body.id)},"error":${error}}`;
      if ((body as { params?: { name?: string } }).params?.name === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return void res.end(`event: message\ndata: ${raw}\n\n`);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(raw);
    });
    const { transport } = await connect(url, 'legacy');
    for (const name of ['json', 'sse']) {
      const outcome = await Promise.race([
        rpc(transport, name, {}, { timeoutMs: 3000 }).then(
          () => 'resolved',
          (e: unknown) => e,
        ),
        new Promise((r) => setTimeout(() => r('hung'), 2000)),
      ]);
      expect(outcome).toBeInstanceOf(SdkError);
      expect(outcome).toMatchObject({ code: SdkErrorCode.InvalidResult });
    }
  });

  it('a server request (ping) and a notification on the call\'s SSE stream reach the Client, which answers; then the answer settles the call', async () => {
    let pong: ((v: unknown) => void) | undefined;
    const ponged = new Promise((r) => (pong = r));
    const url = await tinyServer(async (_req, res, body) => {
      if (body.method === 'initialize') return json(res, { jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {}, logging: {} }, serverInfo: { name: 't', version: '1' } } });
      if (body.method === undefined) {
        pong!(body);
        return void res.writeHead(202).end();
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'working' } })}\n\n`);
      res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', id: 'mcpb-1', method: 'ping' })}\n\n`);
      await ponged;
      res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { content: [{ type: 'text', text: 'done' }] } })}\n\n`);
    });
    const { client, transport } = await connect(url, 'legacy');
    const logged: unknown[] = [];
    client.setNotificationHandler('notifications/message', (n) => void logged.push(n.params.data));
    const r = await rpc(transport, 't', {}, { timeoutMs: 3000 });
    expect(text(r)).toBe('done');
    expect(await ponged).toMatchObject({ id: 'mcpb-1', result: {} });
    expect(logged).toEqual(['working']);
  });

  it('closing the transport fails a pending request with ConnectionClosed', async () => {
    const { transport } = await connect(mcp.url, 'legacy');
    const pending = rpc(transport, 'slow', { ms: 5000 }).catch((e: unknown) => e);
    await until(() => (mcp.counters.calls.slow ?? 0) > 0 && mcp.counters.peakSlow > 0, 2000);
    await transport.close();
    expect(await pending).toMatchObject({ code: SdkErrorCode.ConnectionClosed });
  });
});

describe('callTool2026(): a 2026-07-28 tools/call made by the transport, as Client.callTool makes it', () => {
  const DISCOVER = { supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: { 'io.modelcontextprotocol/serverInfo': { name: 't', version: '1' } } };
  type Seen = { method?: string; id?: unknown; params?: Record<string, unknown>; headers: Record<string, string | string[] | undefined> };

  /** A 2026-07-28 server by hand: discover, an empty listing, and tools/call answered by `answer`. */
  async function modernServer(answer: (params: Record<string, unknown>, res: ServerResponse, id: unknown) => unknown) {
    const seen: Seen[] = [];
    const closed: string[] = [];
    const url = await tinyServer(async (req, res, body) => {
      const b = body as { id?: unknown; method?: string; params?: Record<string, unknown> };
      seen.push({ method: b.method, id: b.id, params: b.params, headers: req.headers });
      if (b.method === 'server/discover') return json(res, { jsonrpc: '2.0', id: b.id, result: DISCOVER });
      if (b.method === 'tools/list') return json(res, { jsonrpc: '2.0', id: b.id, result: { tools: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private' } });
      res.on('close', () => void (res.writableFinished || closed.push(String(b.id))));
      const result = await answer(b.params ?? {}, res, b.id);
      if (result !== undefined && !res.writableEnded) json(res, { jsonrpc: '2.0', id: b.id, result });
    });
    const transport = new UndiciTransport(new URL(url), { dispatcher: agent, maxBytes: MAX, reconnectDelayMs: 50 });
    const client = new BrokerClient({ name: 'transport-test', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(transport, { timeout: 5000 });
    open.push(() => client.close());
    await client.request({ method: 'tools/list' });
    return { client, transport, seen, closed, calls: () => seen.filter((x) => x.method === 'tools/call') };
  }
  const call = (client: BrokerClient, transport: UndiciTransport, o: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
    callTool2026(client, transport, transport.envelope!, 't', { a: 1 }, { timeoutMs: o.timeoutMs ?? 5000, signal: o.signal });
  const outcome = (p: Promise<unknown>) =>
    p.then(
      (value) => ({ value }),
      (e: { code?: unknown; message?: unknown; constructor?: { name?: string } }) => ({ error: e?.code, message: e?.message, type: e?.constructor?.name }),
    );

  it('carries the envelope and the standard headers the Client’s own request carries', async () => {
    const { client, transport, calls } = await modernServer(() => ({ resultType: 'complete', content: [{ type: 'text', text: 'x' }] }));
    await client.callTool({ name: 't', arguments: { a: 1 } });
    await call(client, transport);
    const [viaClient, viaUs] = calls();
    expect(viaUs!.params).toEqual(viaClient!.params);
    expect(viaUs!.params!._meta).toMatchObject({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'transport-test', version: '1' } });
    for (const h of ['mcp-protocol-version', 'mcp-method', 'mcp-name', 'accept', 'content-type']) expect([h, viaUs!.headers[h]]).toEqual([h, viaClient!.headers[h]]);
    expect(viaUs!.id).not.toEqual(viaClient!.id);
  });

  const serverInfo = (info: unknown) => ({ resultType: 'complete', content: [{ type: 'text', text: 'x' }], _meta: { 'io.modelcontextprotocol/serverInfo': info } });
  it.each([
    ['text', { resultType: 'complete', content: [{ type: 'text', text: 'hi' }] }],
    ['text, isError, structuredContent, _meta', { resultType: 'complete', content: [{ type: 'text', text: 'bad' }], isError: true, structuredContent: { sum: 3 }, _meta: { 'io.modelcontextprotocol/serverInfo': { name: 's', version: '1' }, other: [1] } }],
    ['no resultType', { content: [{ type: 'text', text: 'x' }] }],
    ['a resultType that is not a string', { resultType: 1, content: [] }],
    ['an unknown resultType', { resultType: 'later', content: [] }],
    ['no content', { resultType: 'complete', structuredContent: { sum: 3 } }],
    ['content not an array', { resultType: 'complete', content: 'text' }],
    ['content null', { resultType: 'complete', content: null }],
    ['a block without a type', { resultType: 'complete', content: [{ text: 'x' }] }],
    ['image, audio, resource link, embedded resource, annotations', { resultType: 'complete', content: [{ type: 'image', data: 'AAAA', mimeType: 'image/png' }, { type: 'audio', data: 'AAAA', mimeType: 'audio/wav' }, { type: 'resource_link', uri: 'file:///x', name: 'x' }, { type: 'resource', resource: { uri: 'file:///a', text: 'a' } }, { type: 'text', text: 'x', annotations: { audience: ['user'], priority: 0.5 } }] }],
    ['a text block with an extra key', { resultType: 'complete', content: [{ type: 'text', text: 'x', extra: 1 }] }],
    ['a text block with _meta', { resultType: 'complete', content: [{ type: 'text', text: 'x', _meta: { a: 1 } }] }],
    ['a text block with null annotations', { resultType: 'complete', content: [{ type: 'text', text: 'x', annotations: null }] }],
    ['isError a string', { resultType: 'complete', content: [], isError: 'true' }],
    ['structuredContent an array', { resultType: 'complete', content: [], structuredContent: [1] }],
    ['structuredContent null', { resultType: 'complete', content: [], structuredContent: null }],
    ['structuredContent a string', { resultType: 'complete', content: [{ type: 'text', text: 'x' }], structuredContent: 'x' }],
    ['extra fields', { resultType: 'complete', content: [], extra: { a: 1 } }],
    ['serverInfo with a title', serverInfo({ name: 's', version: '1', title: 'S' })],
    ['serverInfo with an unknown key', serverInfo({ name: 's', version: '1', extra: 1 })],
    ['serverInfo with icons', serverInfo({ name: 's', version: '1', icons: [{ src: 'https://example.com/i.png' }] })],
    ['serverInfo without a version', serverInfo({ name: 's' })],
    ['serverInfo a string', serverInfo('s')],
    ['a __proto__ key in the result', JSON.parse('{"resultType":"complete","__proto__":{"isError":true},"content":[{"type":"text","text":"x"}]}')],
    ['a __proto__ key in a block', JSON.parse('{"resultType":"complete","content":[{"type":"text","text":"x","__proto__":{"type":"image"}}]}')],
    ['a __proto__ key in _meta', JSON.parse('{"resultType":"complete","content":[],"_meta":{"__proto__":{"a":1}}}')],
    ['__proto__ and constructor in structuredContent', JSON.parse('{"resultType":"complete","content":[],"structuredContent":{"__proto__":{"a":1},"constructor":{"prototype":{"b":2}}}}')],
    ['a task instead of a result', { resultType: 'complete', task: { taskId: 't' } }],
    ['input_required for an elicitation (no handler here)', { resultType: 'input_required', inputRequests: { ask: { method: 'elicitation/create', params: { message: 'sure?', requestedSchema: { type: 'object', properties: {} } } } } }],
    ['input_required for a method the revision does not define', { resultType: 'input_required', inputRequests: { ask: { method: 'tools/list' } } }],
    ['input_required with an entry that is not a request', { resultType: 'input_required', inputRequests: { ask: 'x' } }],
    ['input_required with neither inputRequests nor requestState', { resultType: 'input_required' }],
    ['20000 text blocks', { resultType: 'complete', content: Array.from({ length: 20000 }, (_, i) => ({ type: 'text', text: String(i) })) }],
  ])('same outcome as Client.callTool for an answer of %s', async (_n, result) => {
    const { client, transport } = await modernServer(() => result);
    const viaClient = await outcome(client.callTool({ name: 't', arguments: { a: 1 } }));
    const viaUs = await outcome(call(client, transport));
    expect(viaUs).toEqual(viaClient);
  });

  it.each([
    ['_meta not an object', { resultType: 'complete', content: [], _meta: 'm' }],
    ['_meta null', { resultType: 'complete', content: [], _meta: null }],
    ['a result that is not an object', 'x'],
  ])('an answer of %s, which the Client takes for no message at all (it waits for its timeout), fails at once as an invalid result', async (_n, result) => {
    const { client, transport } = await modernServer(() => result);
    const viaClient = await outcome(client.callTool({ name: 't', arguments: { a: 1 } }, { timeout: 300 }));
    expect(viaClient).toMatchObject({ error: SdkErrorCode.RequestTimeout });
    const started = Date.now();
    const viaUs = await outcome(call(client, transport));
    expect(viaUs).toMatchObject({ error: SdkErrorCode.InvalidResult, type: 'SdkError' });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it.each([
    ['an extra envelope member', (id: unknown) => ({ jsonrpc: '2.0', id, result: { resultType: 'complete', content: [{ type: 'text', text: 'ran' }] }, extra: 1 }), { value: { content: [{ type: 'text', text: 'ran' }] } }],
    ['an error without a message', (id: unknown) => ({ jsonrpc: '2.0', id, error: { code: -32000 } }), { error: -32000, type: 'ProtocolError' }],
    ['an error whose code is not an integer', (id: unknown) => ({ jsonrpc: '2.0', id, error: { code: 1.5, message: 'm' } }), { error: SdkErrorCode.InvalidResult, type: 'SdkError' }],
  ])('an answer with %s, which the Client drops (it waits for its timeout), settles at once', async (_n, envelope, want) => {
    const { client, transport } = await modernServer((_p, res, id) => void json(res, envelope(id)));
    const viaClient = await outcome(client.callTool({ name: 't', arguments: {} }, { timeout: 300 }));
    expect(viaClient).toMatchObject({ error: SdkErrorCode.RequestTimeout });
    const started = Date.now();
    expect(await outcome(call(client, transport))).toMatchObject(want);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('input_required with only a requestState: the Client’s driver sends it back (paced), the second answer completes the call — the same legs either way', async () => {
    const { client, transport, calls } = await modernServer((p) =>
      p.requestState === 'st-1' ? { resultType: 'complete', content: [{ type: 'text', text: `resumed ${JSON.stringify(p.arguments)}` }] } : { resultType: 'input_required', requestState: 'st-1' },
    );
    const viaClient = await outcome(client.callTool({ name: 't', arguments: { a: 1 } }));
    const started = Date.now();
    const viaUs = await outcome(call(client, transport));
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
    expect(viaUs).toEqual(viaClient);
    expect(viaUs).toMatchObject({ value: { content: [{ text: 'resumed {"a":1}' }] } });
    const legs = calls().map((c) => ({ state: c.params!.requestState, meta: c.params!._meta, args: c.params!.arguments }));
    expect(legs).toHaveLength(4);
    expect(legs.slice(2)).toEqual(legs.slice(0, 2));
    expect(legs[1]!.state).toBe('st-1');
  });

  it('a server that never stops asking: the Client’s round limit, the same error', async () => {
    const { client, transport } = await modernServer(() => ({ resultType: 'input_required', requestState: 'again' }));
    const viaClient = await outcome(client.callTool({ name: 't', arguments: {} }));
    const viaUs = await outcome(call(client, transport));
    expect(viaUs).toEqual(viaClient);
    expect(viaUs).toMatchObject({ error: SdkErrorCode.InputRequiredRoundsExceeded });
  }, 15_000);

  it('a JSON-RPC error is the same ProtocolError', async () => {
    const url = await tinyServer(async (_req, res, body) => {
      if (body.method === 'server/discover') return json(res, { jsonrpc: '2.0', id: body.id, result: DISCOVER });
      if (body.method === 'tools/list') return json(res, { jsonrpc: '2.0', id: body.id, result: { tools: [], resultType: 'complete', ttlMs: 0, cacheScope: 'private' } });
      json(res, { jsonrpc: '2.0', id: body.id, error: { code: -32602, message: 'no such tool', data: { tool: 't' } } });
    });
    const transport = new UndiciTransport(new URL(url), { dispatcher: agent, maxBytes: MAX });
    const client = new BrokerClient({ name: 'transport-test', version: '1' }, { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } });
    await client.connect(transport, { timeout: 5000 });
    open.push(() => client.close());
    await client.request({ method: 'tools/list' });
    const viaClient = await outcome(client.callTool({ name: 't', arguments: { a: 1 } }));
    const viaUs = await outcome(call(client, transport));
    expect(viaUs).toEqual(viaClient);
    expect(viaUs).toMatchObject({ error: -32602, type: 'ProtocolError' });
  });

  it('a timeout or an abort ends the HTTP request and sends no notifications/cancelled (that revision has none), as the Client does', async () => {
    const { client, transport, seen, closed } = await modernServer(() => new Promise(() => undefined));
    const timedOut = await outcome(call(client, transport, { timeoutMs: 100 }));
    expect(timedOut).toMatchObject({ error: SdkErrorCode.RequestTimeout });
    const ac = new AbortController();
    setTimeout(() => ac.abort('caller went away'), 50);
    const aborted = await outcome(call(client, transport, { signal: ac.signal }));
    expect(aborted).toMatchObject({ error: SdkErrorCode.RequestTimeout, message: expect.stringContaining('caller went away') });
    const viaClient = await outcome(client.callTool({ name: 't', arguments: {} }, { timeout: 100 }));
    expect(timedOut).toEqual({ ...viaClient });
    expect(await until(() => closed.length === 3)).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(seen.map((x) => x.method).filter((m) => m === undefined || m === 'notifications/cancelled')).toEqual([]);
    expect(seen.filter((x) => x.id === undefined)).toEqual([]);
  });

  describe('SEP-2243 Mcp-Param-* headers: the broker’s (paramHeaders) are the ones Client.callTool mirrors, sent on the wire', () => {
    const str = (extra: Record<string, unknown> = {}) => ({ type: 'string', 'x-mcp-header': 'Region', ...extra });
    const rows: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
      ['a plain string', { type: 'object', properties: { region: str() } }, { region: 'eu-west-1' }],
      ['non-ASCII, surrounding spaces, empty, the Base64 look: Base64', { type: 'object', properties: { a: str(), b: { type: 'string', 'x-mcp-header': 'B' }, c: { type: 'string', 'x-mcp-header': 'C' }, d: { type: 'string', 'x-mcp-header': 'D' } } }, { a: 'Zürich ✓', b: ' padded ', c: '', d: '=?base64?eA==?=' }],
      ['integer, boolean, nested under properties', { type: 'object', properties: { n: { type: 'integer', 'x-mcp-header': 'N' }, f: { type: 'boolean', 'x-mcp-header': 'F' }, o: { type: 'object', properties: { deep: { type: 'string', 'x-mcp-header': 'Deep' } } } } }, { n: 42, f: false, o: { deep: 'x' } }],
      ['absent, null, not a primitive, unsafe integer: no header', { type: 'object', properties: { a: str(), b: { type: 'string', 'x-mcp-header': 'B' }, c: { type: 'integer', 'x-mcp-header': 'C' }, d: { type: 'integer', 'x-mcp-header': 'D' } } }, { b: null, c: { x: 1 }, d: 2 ** 60 }],
      ['number-typed: invalid, nothing mirrored', { type: 'object', properties: { a: str(), x: { type: 'number', 'x-mcp-header': 'X' } } }, { a: 'v', x: 1.5 }],
      ['under items: invalid', { type: 'object', properties: { a: str(), l: { type: 'array', items: { type: 'string', 'x-mcp-header': 'L' } } } }, { a: 'v', l: ['q'] }],
      ['under anyOf: invalid', { type: 'object', properties: { a: str() }, anyOf: [{ properties: { b: { type: 'string', 'x-mcp-header': 'B' } } }] }, { a: 'v', b: 'w' }],
      ['not a token: invalid', { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'Bad Name' } } }, { a: 'v' }],
      ['case-duplicate: invalid', { type: 'object', properties: { a: str(), b: { type: 'string', 'x-mcp-header': 'REGION' } } }, { a: 'v', b: 'w' }],
      ['on the root: invalid', { type: 'object', 'x-mcp-header': 'Root', properties: { a: { type: 'string' } } }, { a: 'v' }],
      ['under oneOf / allOf / not / if / then / else: invalid', { type: 'object', properties: { a: str() }, oneOf: [{}], allOf: [{ properties: { b: { type: 'string', 'x-mcp-header': 'B' } } }], not: {}, if: {}, then: {}, else: {} }, { a: 'v', b: 'w' }],
      ['under not: invalid', { type: 'object', properties: { a: str() }, not: { properties: { b: { type: 'string', 'x-mcp-header': 'B' } } } }, { a: 'v' }],
      ['under if: invalid', { type: 'object', properties: { a: str() }, if: { properties: { b: { type: 'string', 'x-mcp-header': 'B' } } } }, { a: 'v' }],
      ['under $defs (a map of subschemas): invalid', { type: 'object', properties: { a: str() }, $defs: { d: { type: 'string', 'x-mcp-header': 'B' } } }, { a: 'v' }],
      ['under definitions: invalid', { type: 'object', properties: { a: str() }, definitions: { d: { type: 'string', 'x-mcp-header': 'B' } } }, { a: 'v' }],
      ['under patternProperties: invalid', { type: 'object', properties: { a: str() }, patternProperties: { '^x': { type: 'string', 'x-mcp-header': 'B' } } }, { a: 'v' }],
      ['no type: invalid', { type: 'object', properties: { a: str(), b: { 'x-mcp-header': 'B' } } }, { a: 'v', b: 'w' }],
      ['CR LF, DEL, tabs, a lone surrogate: as the SDK encodes them', { type: 'object', properties: { a: str(), b: { type: 'string', 'x-mcp-header': 'B' }, c: { type: 'string', 'x-mcp-header': 'C' }, d: { type: 'string', 'x-mcp-header': 'D' }, e: { type: 'string', 'x-mcp-header': 'E' } } }, { a: 'a\r\nb', b: '\x7f', c: '\tlead', d: 'in\tner', e: '\ud800' }],
      ['NaN, Infinity, -0, a fraction', { type: 'object', properties: { a: { type: 'integer', 'x-mcp-header': 'A' }, b: { type: 'integer', 'x-mcp-header': 'B' }, c: { type: 'integer', 'x-mcp-header': 'C' }, d: { type: 'integer', 'x-mcp-header': 'D' } } }, { a: Number.NaN, b: Number.POSITIVE_INFINITY, c: -0, d: 1.5 }],
      ['an array on the path (indexed as the SDK does)', { type: 'object', properties: { l: { type: 'object', properties: { 0: { type: 'string', 'x-mcp-header': 'First' } } } } }, { l: ['zero', 'one'] }],
      ['only mentioned in text: none', { type: 'object', description: 'x-mcp-header', properties: { a: { type: 'string', default: 'x-mcp-header' } } }, { a: 'v' }],
    ];
    it.each(rows)('%s', async (_what, inputSchema, args) => {
      const { client, transport, calls } = await modernServer(async () => ({ content: [], resultType: 'complete' }));
      const params = (headers: Record<string, string | string[] | undefined>) => Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('mcp-param-')));
      await client.callTool({ name: 't', arguments: args }, { toolDefinition: { name: 't', inputSchema: inputSchema as { type: 'object' } } });
      const decl = headerDeclarations(inputSchema);
      const built = decl ? paramHeaders(decl, args) : {};
      await callTool2026(client, transport, transport.envelope!, 't', args, { timeoutMs: 5000, headers: built });
      const [sdk, ours] = calls().map((c) => params(c.headers));
      expect(calls()).toHaveLength(2);
      expect(ours).toEqual(sdk);
      // What the broker built is what went out (lower-cased on the wire).
      expect(ours).toEqual(Object.fromEntries(Object.entries(built).map(([k, v]) => [k.toLowerCase(), v])));
    });
    it('the table covers both outcomes: some rows mirror headers, some none', () => {
      const counts = rows.map(([, s, a]) => Object.keys(paramHeaders(headerDeclarations(s) ?? [], a)).length);
      expect(counts.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
      expect(counts.filter((n) => n === 0).length).toBeGreaterThanOrEqual(5);
    });
  });
});

describe('SSE parser', () => {
  const parse = (chunks: string[], max = 1000) => {
    const events: SseEvent[] = [];
    const p = new SseParser(max, (e) => void events.push(e));
    const results = chunks.map((c) => p.push(Buffer.from(c)));
    return { events, results };
  };

  it.each([
    ['LF', ['data: a\n\n'], [{ event: '', data: 'a', id: undefined }]],
    ['CRLF split across chunks', ['event: message\r', '\ndata: {"x":1}\r\n', '\r\n'], [{ event: 'message', data: '{"x":1}', id: undefined }]],
    ['lone CR', ['data: a\rdata: b\r\r'], [{ event: '', data: 'a\nb', id: undefined }]],
    ['comments, id, unknown fields, no space', [': ping\n\nid: 7\nretry: 10\nfoo: bar\ndata:x\n\n'], [{ event: '', data: 'x', id: '7' }]],
    ['an unterminated event is not dispatched', ['data: a\n'], []],
    ['an event without data is not dispatched', ['event: x\n\n'], []],
  ] as const)('%s', (_n, chunks, expected) => {
    expect(parse([...chunks]).events).toEqual(expected);
  });

  it('a multi-byte character split across chunks survives', () => {
    const bytes = Buffer.from('data: é✓\n\n');
    const events: SseEvent[] = [];
    const p = new SseParser(1000, (e) => void events.push(e));
    for (let i = 0; i < bytes.length; i++) p.push(bytes.subarray(i, i + 1));
    expect(events.map((e) => e.data)).toEqual(['é✓']);
  });

  it('an event over the cap stops the parser, even one with no line end yet', () => {
    expect(parse(['data: ' + 'x'.repeat(2000) + '\n\n']).results).toEqual(['too_large']);
    expect(parse(['data: ' + 'x'.repeat(600), 'x'.repeat(600)]).results).toEqual(['more', 'too_large']);
    // Many small events are fine: the cap is per event.
    expect(parse(Array.from({ length: 50 }, () => 'data: ' + 'x'.repeat(100) + '\n\n')).events).toHaveLength(50);
  });

  it('a consumer returning false stops it', () => {
    const events: string[] = [];
    const p = new SseParser(1000, (e) => (events.push(e.data), false));
    expect(p.push(Buffer.from('data: 1\n\ndata: 2\n\n'))).toBe('stopped');
    expect(events).toEqual(['1']);
  });
});
