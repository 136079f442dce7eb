import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { Client, ProtocolError, SdkError, SdkErrorCode } from '@modelcontextprotocol/client';
import { RESPONSE_TOO_LARGE, UndiciTransport, UpstreamConnectionError } from '../src/mcp/undiciTransport.js';
import { UpstreamSession } from '../src/mcp/session.js';
import { createUpstreamFetch } from '../src/mcp/fetch.js';
import { Upstreams, type UpstreamTarget } from '../src/mcp/upstreams.js';
import { SessionPool } from '../src/mcp/pool.js';
import { UpstreamLimits } from '../src/mcp/limits.js';
import { AgentPool } from '../src/mcp/egress.js';
import { SseParser } from '../src/mcp/sseParser.js';
import { startResumableServer, type ResumableServer } from './fixtures/resumableServer.js';

const agent = new Agent({ keepAliveTimeout: 10_000 });
const MAX = 64 * 1024;
const cleanup: Array<() => Promise<unknown>> = [];

afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
  await agent.close();
});

type Body = { id?: string | number; method?: string; params?: Record<string, unknown> };
interface Scripted {
  url: string;
  /** Requests the server has not finished or seen closed. */
  open(): number;
  /** `METHOD rpc-method` of every request (`GET resume` for one with Last-Event-ID), in order. */
  seen: string[];
}

/**
 * A hand-written server for exact misbehaviour. `onRequest` answers (or holds) each request;
 * initialize is answered with a session unless it does so itself.
 */
async function scripted(onRequest: (req: IncomingMessage, res: ServerResponse, body: Body) => void | Promise<void>): Promise<Scripted> {
  let open = 0;
  const seen: string[] = [];
  const server: Server = createServer(async (req, res) => {
    open++;
    res.on('close', () => open--);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = (chunks.length ? JSON.parse(Buffer.concat(chunks).toString()) : {}) as Body;
    seen.push(`${req.method} ${body.method ?? (req.headers['last-event-id'] ? 'resume' : '')}`.trim());
    await onRequest(req, res, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.push(() => new Promise((r) => (server.closeAllConnections(), server.close(r))));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, open: () => open, seen };
}

const initialized = (res: ServerResponse, body: Body) => {
  res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' });
  res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'scripted', version: '1' } } }));
};
const answer = (id: unknown, textOut: string) => JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: textOut }] } });
const hold = () => undefined; // never answers

const text = (r: unknown) => ((r as { content: Array<{ text?: string }> }).content[0]?.text ?? '');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (cond: () => boolean, ms = 3000) => {
  for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await sleep(20);
  return cond();
};
/** The outcome of `p`, or 'hung' if it has none within `ms`: a test fails, never times out. */
async function outcome(p: Promise<unknown>, ms = 3000): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    return await Promise.race([p.then((v) => ({ value: v }), (e: unknown) => e), hung]);
  } finally {
    clearTimeout(timer);
  }
}

async function legacyClient(url: string, o: { noticeTimeoutMs?: number; reconnectDelayMs?: number } = {}) {
  const transport = new UndiciTransport(new URL(url), { dispatcher: agent, maxBytes: MAX, reconnectDelayMs: o.reconnectDelayMs ?? 50, noticeTimeoutMs: o.noticeTimeoutMs });
  const client = new Client({ name: 'faults-test', version: '1' }, { versionNegotiation: { mode: 'legacy' } });
  await client.connect(transport, { timeout: 3000 });
  cleanup.push(() => client.close());
  return { client, transport };
}

function session(url: string, impl: 'undici' | 'sdk') {
  const s = new UpstreamSession(
    { url: new URL(url), headers: {}, fetch: createUpstreamFetch(agent, MAX), impl, dispatcher: agent, maxBytes: MAX, key: `k|${impl}`, transport: 'streamable_http', protocol: '2025-11-25' },
    { memo: { get: () => undefined, set: () => undefined, delete: () => undefined }, onToolsChanged: () => undefined },
  );
  cleanup.push(() => s.close());
  return s;
}

describe('connection set-up is bounded by the caller (SPEC §10)', () => {
  /** Answers initialize, never notifications/initialized (nor anything after it). */
  const stallsSetUp = () =>
    scripted((req, res, body) => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      if (body.method === 'initialize') return initialized(res, body);
      hold();
    });

  it.each(['undici', 'sdk'] as const)('%s: a server that never acknowledges notifications/initialized fails the call within its timeout and keeps no request open', async (impl) => {
    const srv = await stallsSetUp();
    const s = session(srv.url, impl);
    const t0 = Date.now();
    const err = await outcome(s.callTool('t', {}, { timeoutMs: 400 }));
    expect(err).toBeInstanceOf(SdkError);
    expect((err as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(Date.now() - t0).toBeLessThan(1500);
    // The set-up's own bound closed its transport: the held notification POST is gone too.
    expect(await until(() => srv.open() === 0)).toBe(true);
  });

  it('a caller whose signal fires stops waiting at once; the shared set-up goes on for the others, bounded', async () => {
    const srv = await stallsSetUp();
    const s = session(srv.url, 'undici');
    const ac = new AbortController();
    let leftAt = 0;
    let stayedUntil = 0;
    const t0 = Date.now();
    const leaving = outcome(s.callTool('t', {}, { timeoutMs: 800, signal: ac.signal }).finally(() => (leftAt = Date.now() - t0)));
    const staying = outcome(s.callTool('t', {}, { timeoutMs: 800 }).finally(() => (stayedUntil = Date.now() - t0)));
    setTimeout(() => ac.abort(new Error('caller went away')), 100);
    const [left, stayed] = await Promise.all([leaving, staying]);
    expect(left).toBeInstanceOf(SdkError);
    expect(String((left as Error).message)).toContain('caller went away');
    expect(leftAt).toBeLessThan(500);
    // The other caller waited for the set-up, which ended at its own bound (the first caller's timeout).
    expect((stayed as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(stayedUntil).toBeGreaterThanOrEqual(700);
    expect(stayedUntil).toBeLessThan(2000);
    expect(await until(() => srv.open() === 0)).toBe(true);
  });

  it('a set-up the first caller left completes for a caller still waiting', async () => {
    let acknowledgedAt = Infinity;
    const srv = await scripted(async (req, res, body) => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      if (body.method === 'initialize') return initialized(res, body);
      if (body.method === 'notifications/initialized') {
        await sleep(300); // slow, not stalled
        acknowledgedAt = Date.now();
        return void res.writeHead(202).end();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer(body.id, 'fine'));
    });
    const s = session(srv.url, 'undici');
    const ac = new AbortController();
    const left = outcome(s.callTool('t', {}, { timeoutMs: 2000, signal: ac.signal }));
    const stayed = outcome(s.callTool('t', {}, { timeoutMs: 2000 }));
    setTimeout(() => ac.abort(new Error('caller went away')), 50);
    expect(await left).toBeInstanceOf(SdkError);
    expect(Date.now()).toBeLessThan(acknowledgedAt); // it did not wait for the set-up it left
    expect(text(((await stayed) as { value: unknown }).value)).toBe('fine');
  });

  it('callers of a server that stalls the set-up hold no concurrency slot: other servers are still served', async () => {
    const bad = await stallsSetUp();
    const good = await scripted((req, res, body) => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      if (body.method === 'initialize') return initialized(res, body);
      if (body.id === undefined) return void res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer(body.id, 'served'));
    });
    const limits = new UpstreamLimits({ maxInflightPerServer: 2, maxInflight: 2, breakerThreshold: 100, breakerHalfOpenMs: 1000 });
    const up = new Upstreams(new SessionPool({ idleMs: 60_000, max: 100, onToolsChanged: () => undefined }), new AgentPool(), limits, {
      maxUpstreamBytes: MAX,
      mcpTransport: 'undici',
      listing: { maxBytes: MAX, maxTools: 100, maxPages: 5 },
    });
    cleanup.push(() => up.close());
    const target = (url: string, path: string): UpstreamTarget => {
      const u = new URL(url);
      u.pathname = path;
      return { sessionKey: `inline:${u.href}|c`, url: u, origin: u.origin, headers: {}, transport: 'streamable_http', protocol: '2025-11-25', egress: { allowPrivate: true, allowCidrs: [] }, callTimeoutMs: 300 };
    };
    const calls = ['/a', '/b'].map((p) => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('gone')), 1000);
      return up.callTool(target(bad.url, p), 't', {}, ac.signal);
    });
    expect(await outcome(Promise.allSettled(calls))).not.toBe('hung');
    expect(limits.inflightCount).toBe(0);
    expect(text(await up.callTool(target(good.url, '/mcp'), 't', {}))).toBe('served');
  });

  it('a notification POST the server never answers fails within noticeTimeoutMs, its request closed', async () => {
    const srv = await scripted(hold);
    const transport = new UndiciTransport(new URL(srv.url), { dispatcher: agent, maxBytes: MAX, noticeTimeoutMs: 200 });
    cleanup.push(() => transport.close());
    const errors: Error[] = [];
    transport.onerror = (e) => void errors.push(e);
    await transport.start();
    const t0 = Date.now();
    const err = await outcome(transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' }));
    expect(err).toBeInstanceOf(SdkError);
    expect((err as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(errors).toEqual([err]);
    expect(await until(() => srv.open() === 0)).toBe(true);
  });
});

describe('resumable SSE answers (2025-11-25: priming event, POST stream closed, GET with Last-Event-ID)', () => {
  let live: ResumableServer;
  let stored: ResumableServer;
  beforeAll(async () => {
    // The answer comes while the GET is open, or was stored before it and is replayed.
    live = await startResumableServer({ retryMs: 50, answerAfterMs: 300 });
    stored = await startResumableServer({ retryMs: 200, answerAfterMs: 0 });
    cleanup.push(() => live.close(), () => stored.close());
  });
  const servers = [
    ['answered on the open GET', () => live],
    ['replayed from the event store', () => stored],
  ] as const;

  it.each(servers)('rpc(), %s', async (_n, fx) => {
    const { transport } = await legacyClient(fx().url);
    const before = fx().resumes.length;
    const r = await transport.rpc('tools/call', { name: 'echo', arguments: { text: 'resumed' } }, { timeoutMs: 5000 });
    expect(text(r)).toBe('echo: resumed');
    expect(fx().resumes.length).toBe(before + 1);
  });

  it.each(servers)('the SDK Client (a listing and a call), %s', async (_n, fx) => {
    const { client } = await legacyClient(fx().url);
    const before = fx().resumes.length;
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo']);
    expect(text(await client.callTool({ name: 'echo', arguments: { text: 'via client' } }))).toBe('echo: via client');
    expect(fx().resumes.length).toBe(before + 2);
  });

  it('through the session layer: a listing and a call, and the session is kept', async () => {
    const s = session(live.url, 'undici');
    const list = await s.listTools({ timeoutMs: 5000 }, { maxBytes: MAX, maxTools: 100, maxPages: 5 });
    expect(list.tools.map((t) => t.name)).toEqual(['echo']);
    const first = await s.connect();
    expect(text(await s.callTool('echo', { text: 'session' }, { timeoutMs: 5000 }))).toBe('echo: session');
    expect(await s.connect()).toBe(first);
  });

  /** A POST answer of a priming event (and `extra`), then the end of the stream. */
  const primes = (res: ServerResponse, retry: string, extra = '') => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.end(`id: e1\nretry: ${retry}\ndata: \n\n${extra}`);
  };
  const resumable = (onResume: (req: IncomingMessage, res: ServerResponse) => void, retry = '10', extra = '') =>
    scripted((req, res, body) => {
      if (req.method === 'GET') return req.headers['last-event-id'] ? onResume(req, res) : void res.writeHead(405).end();
      if (req.method === 'DELETE') return void res.writeHead(200).end();
      if (body.method === 'initialize') return initialized(res, body);
      if (body.id === undefined) return void res.writeHead(202).end();
      primes(res, retry, extra);
    });
  const resumesSeen = (s: Scripted) => s.seen.filter((x) => x === 'GET resume').length;
  const call = (t: UndiciTransport, timeoutMs = 5000) => outcome(t.rpc('tools/call', { name: 't', arguments: {} }, { timeoutMs }), timeoutMs + 2000);

  it('a server that fails every reconnection: the call fails after maxReconnects (2) tries, not a hang', async () => {
    const srv = await resumable((_req, res) => void res.writeHead(500).end('no'));
    const { transport } = await legacyClient(srv.url);
    const err = await call(transport);
    expect(err).toBeInstanceOf(UpstreamConnectionError);
    expect((err as Error).message).toMatch(/^terminated: .*2 reconnections with Last-Event-ID failed/);
    expect(resumesSeen(srv)).toBe(2);
  });

  it('a server with no GET stream (405) to resume from: the call fails at the first try', async () => {
    const srv = await resumable((_req, res) => void res.writeHead(405).end());
    const { transport } = await legacyClient(srv.url);
    const err = await call(transport);
    expect(err).toBeInstanceOf(UpstreamConnectionError);
    expect(resumesSeen(srv)).toBe(1);
  });

  it('the wait before a reconnection is within the request: its timeout ends it, no GET follows', async () => {
    const srv = await resumable((_req, res) => void res.writeHead(500).end(), '20000');
    const { transport } = await legacyClient(srv.url);
    const t0 = Date.now();
    const err = await call(transport, 300);
    expect((err as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(Date.now() - t0).toBeLessThan(1500);
    await sleep(300);
    expect(resumesSeen(srv)).toBe(0);
  });

  it('the size cap is on the answer across its streams', async () => {
    const note = (n: number) => `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'x'.repeat(n) } })}\n\n`;
    let callId: unknown;
    const srv = await scripted((req, res, body) => {
      if (req.method === 'GET') {
        if (!req.headers['last-event-id']) return void res.writeHead(405).end();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return void res.end(`id: e2\n${note(40_000)}id: e3\ndata: ${answer(callId, 'too late')}\n\n`);
      }
      if (body.method === 'initialize') return initialized(res, body);
      if (body.id === undefined) return void res.writeHead(202).end();
      callId = body.id;
      primes(res, '10', note(40_000));
    });
    const { transport } = await legacyClient(srv.url);
    const err = await call(transport);
    expect(err).toBeInstanceOf(ProtocolError);
    expect((err as ProtocolError).code).toBe(RESPONSE_TOO_LARGE);
    expect(resumesSeen(srv)).toBe(1);
  });

  it('a stream with no event id that ends before the answer fails at once, as before (nothing to resume from)', async () => {
    const srv = await scripted((req, res, body) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      if (body.method === 'initialize') return initialized(res, body);
      if (body.id === undefined) return void res.writeHead(202).end();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(': nothing\n\n');
    });
    const { transport } = await legacyClient(srv.url);
    const err = await call(transport);
    expect(err).toBeInstanceOf(UpstreamConnectionError);
    expect((err as Error).message).toBe('terminated: the MCP server ended the stream before answering');
    expect(resumesSeen(srv)).toBe(0);
  });

  it('SSE parser: an event with no data still sets the last event id; retry takes ASCII digits only', () => {
    const p = new SseParser(1000, () => undefined);
    p.push(Buffer.from('id: 7\nretry: 250\n\n'));
    expect([p.lastEventId, p.retryMs]).toEqual(['7', 250]);
    p.push(Buffer.from('retry: 1e3\nretry: -5\nretry: 12ms\nid: 8\n'));
    expect([p.lastEventId, p.retryMs]).toEqual(['7', 250]); // the id counts once its event ends
    p.push(Buffer.from('\n'));
    expect(p.lastEventId).toBe('8');
  });
});

describe('notifications/cancelled and the DELETE: bounded, and ended by close()', () => {
  /** Answers initialize and notifications/initialized; holds tools/call, notifications/cancelled and DELETE. */
  const holdsTheRest = () =>
    scripted((req, res, body) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      if (body.method === 'initialize') return initialized(res, body);
      if (body.method === 'notifications/initialized') return void res.writeHead(202).end();
      hold();
    });
  const rpc = (t: UndiciTransport, timeoutMs: number) => t.rpc('tools/call', { name: 't', arguments: {} }, { timeoutMs }).catch((e: unknown) => e);

  it('calls that time out leave no request open: each cancellation is bounded', async () => {
    const srv = await holdsTheRest();
    const { transport } = await legacyClient(srv.url, { noticeTimeoutMs: 200 });
    const errors = await Promise.all([1, 2, 3].map(() => rpc(transport, 100)));
    for (const e of errors) expect((e as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(await until(() => srv.seen.filter((x) => x === 'POST notifications/cancelled').length === 3)).toBe(true);
    expect(await until(() => srv.open() === 0, 2000)).toBe(true);
  });

  it('close() ends a pending cancellation and a pending DELETE', async () => {
    const srv = await holdsTheRest();
    const { transport } = await legacyClient(srv.url, { noticeTimeoutMs: 10_000 });
    await rpc(transport, 100);
    const deleting = transport.terminateSession().catch((e: unknown) => e);
    expect(await until(() => srv.seen.includes('POST notifications/cancelled') && srv.seen.includes('DELETE') && srv.open() === 2)).toBe(true);
    await transport.close();
    expect(await until(() => srv.open() === 0, 1000)).toBe(true);
    expect(await outcome(deleting, 1000)).not.toBe('hung');
  });

  it('a DELETE that is never answered fails within noticeTimeoutMs', async () => {
    const srv = await holdsTheRest();
    const { transport } = await legacyClient(srv.url, { noticeTimeoutMs: 200 });
    const t0 = Date.now();
    const err = await outcome(transport.terminateSession());
    expect((err as SdkError).code).toBe(SdkErrorCode.RequestTimeout);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await until(() => srv.open() === 0)).toBe(true);
  });
});
