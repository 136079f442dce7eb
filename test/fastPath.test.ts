import express from 'express';
import type { AddressInfo } from 'node:net';
import { installFastPath, runChain } from '../src/http/fastPath.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { record, startBroker, type TestBroker } from './fixtures/broker.js';

describe('runChain (the hot routes run their middleware as express would)', () => {
  const req = {} as never;
  const res = {} as never;
  it('runs each function in order on next(), and stops at the one that answers', () => {
    const seen: string[] = [];
    runChain(
      [(_q, _s, next) => (seen.push('a'), next()), (_q, _s, next) => (seen.push('b'), next()), () => void seen.push('c'), () => void seen.push('never')],
      req,
      res,
      (e) => seen.push(`error ${String(e)}`),
    );
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it.each([
    ['next(err)', ((_q: unknown, _s: unknown, next: (e?: unknown) => void) => next(new Error('x'))) as never],
    ['a throw', (() => {
      throw new Error('x');
    }) as never],
    ['a rejection', (async () => {
      throw new Error('x');
    }) as never],
  ])('%s reaches the error handler once, and nothing after it runs', async (_n, failing) => {
    const errors: unknown[] = [];
    let after = false;
    runChain([failing, () => void (after = true)], req, res, (e) => errors.push(e));
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('x');
    expect(after).toBe(false);
  });

  it('a late next(err) after a failure is not reported twice; falling off the end is an error', async () => {
    const errors: unknown[] = [];
    runChain([(_q, _s, next) => (next(new Error('first')), next(new Error('second')))], req, res, (e) => errors.push(e));
    expect(errors.map((e) => (e as Error).message)).toEqual(['first']);
    const off: unknown[] = [];
    runChain([(_q, _s, next) => next()], req, res, (e) => off.push(e));
    expect(off).toHaveLength(1);
  });
});

describe('installFastPath on an express app', () => {
  it('serves exactly the listed POST paths without express (node res), everything else through express', async () => {
    const app = express();
    const seen: string[] = [];
    app.post('/hot', (_req, res) => void res.json({ via: 'express', json: typeof res.json }));
    app.get('/hot', (_req, res) => void res.json({ via: 'express' }));
    installFastPath(app, {
      routes: { '/hot': { route: '/hot', chain: [(_req, res) => void res.end(JSON.stringify({ via: 'fast', json: typeof (res as { json?: unknown }).json }))] } },
      onError: () => undefined,
      observe: (route, _req, res) => seen.push(`${route} ${res.statusCode}`),
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const get = async (path: string, method = 'POST') => (await fetch(base + path, { method })).json();
      expect(await get('/hot')).toEqual({ via: 'fast', json: 'undefined' });
      expect(await get('/hot?x=1')).toEqual({ via: 'express', json: 'function' });
      expect(await get('/hot/')).toEqual({ via: 'express', json: 'function' });
      expect(await get('/HOT')).toEqual({ via: 'express', json: 'function' });
      expect(await get('/hot', 'GET')).toEqual({ via: 'express' });
      expect(seen).toEqual(['/hot 200']);
    } finally {
      server.close();
    }
  });
});

describe('installFastPath: an error handler that throws', () => {
  it.each([
    ['a throw', (() => {
      throw new Error('in the chain');
    }) as never],
    ['a rejection', (async () => {
      throw new Error('in the chain');
    }) as never],
  ])('after %s in the chain, still answers 500 (express would, through its finalhandler) and the server lives on', async (_n, failing) => {
    const app = express();
    installFastPath(app, {
      routes: { '/hot': { route: '/hot', chain: [failing] }, '/ok': { route: '/ok', chain: [(_req, res) => void res.end('ok')] } },
      onError: () => {
        throw new Error('in the error handler');
      },
      observe: () => undefined,
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await fetch(`${base}/hot`, { method: 'POST', signal: AbortSignal.timeout(3000) });
      expect(r.status).toBe(500);
      expect((await r.json()).error).toMatchObject({ type: 'server_error' });
      expect(await (await fetch(`${base}/ok`, { method: 'POST' })).text()).toBe('ok');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('the broker: hot routes answer identically on the fast path and through express', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  beforeAll(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    model.fallback = () => ({ text: 'hello' });
    b = await startBroker({
      servers: [record('fx', mcp.url)],
      env: { UPSTREAM_BASE_URL: model.url, BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_MAX_BODY_BYTES: '4096' },
    });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
    await mcp.close();
  });

  // The exact path takes the fast path; `?via=express` the express mount (the query is ignored there).
  const both = async (path: string, o: Parameters<TestBroker['call']>[2]) => {
    const fast = await b.call('POST', path, o);
    const slow = await b.call('POST', `${path}?via=express`, o);
    return { fast, slow };
  };
  const sameBody = (x: any, y: any) => {
    // Ids and clock readings differ between two requests (the two may straddle a second).
    const strip = (v: any) => (v && typeof v === 'object' ? { ...v, id: undefined, created_at: undefined, completed_at: typeof v.completed_at, output: Array.isArray(v.output) ? v.output.map((o: any) => ({ ...o, id: undefined })) : v.output } : v);
    expect(strip(x)).toEqual(strip(y));
  };

  it.each([
    ['a call', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'hi' } } }],
    ['a listing', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'fx' } } }],
    ['a response', '/v1/responses', { body: { model: 'm', input: 'hi' } }],
    ['no key (401)', '/v1/mcp/call', { token: null, body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo' } }],
    ['a wrong key (401)', '/v1/responses', { token: 'sk-wrong-0123456789', body: { model: 'm', input: 'hi' } }],
    ['malformed JSON (400)', '/v1/mcp/list_tools', { body: '{"tool":' }],
    ['a body over the limit (413)', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'x'.repeat(5000) } } }],
    ['an unknown label (404)', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'nope' }, name: 'echo' } }],
    ['a missing field (400)', '/v1/responses', { body: { input: 'hi' } }],
    ['an unknown tool (item with error)', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'no_such_tool' } }],
  ])('%s', async (_n, path, o) => {
    const { fast, slow } = await both(path, o as never);
    expect(fast.status).toBe(slow.status);
    expect(fast.headers.get('content-type')).toBe(slow.headers.get('content-type'));
    expect(fast.headers.get('x-powered-by')).toBeNull();
    sameBody(fast.body, slow.body);
    if (fast.status >= 400) expect(fast.body.error).toEqual(expect.objectContaining({ type: expect.any(String), message: expect.any(String) }));
  });

  it('fast-path requests are counted under the same route labels express gives them', async () => {
    const count = async (route: string) => {
      const text = await (await fetch(`${b.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('broker_http_request_duration_seconds_count') && l.includes(`route="${route}"`) && l.includes('status="200"'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = { call: await count('/v1/mcp/call'), list: await count('/v1/mcp/list_tools'), resp: await count('/v1/responses/') };
    await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'm' } } });
    await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'fx' } } });
    await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'hi' } });
    expect(await count('/v1/mcp/call')).toBe(before.call + 1);
    expect(await count('/v1/mcp/list_tools')).toBe(before.list + 1);
    expect(await count('/v1/responses/')).toBe(before.resp + 1);
  });

  it('a request its handler failed is counted under its full route on both paths (express had lost the mount prefix: route="/call")', async () => {
    const count = async (route: string, status: string) => {
      const text = await (await fetch(`${b.url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith('broker_http_request_duration_seconds_count') && l.includes(`route="${route}"`) && l.includes(`status="${status}"`));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = { call: await count('/v1/mcp/call', '404'), resp: await count('/v1/responses/:id', '404') };
    const { fast, slow } = await both('/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'nope' }, name: 'echo' } });
    expect([fast.status, slow.status]).toEqual([404, 404]);
    expect((await b.call('GET', '/v1/responses/resp_nope')).status).toBe(404);
    expect(await count('/v1/mcp/call', '404')).toBe(before.call + 2);
    expect(await count('/v1/responses/:id', '404')).toBe(before.resp + 1);
    expect(await count('/call', '404')).toBe(0);
    // The mount prefix is one of the app's mounts, never text from the URL (labels stay bounded).
    const before2 = { wild: await count('/console/{*path}', '404'), call: await count('/v1/mcp/call', '404') };
    expect((await b.call('GET', '/console/a/b/c/d')).status).toBe(404);
    expect((await b.call('POST', '/V1/MCP/call?x', { body: { tool: { type: 'mcp', server_label: 'nope' }, name: 'echo' } })).status).toBe(404);
    expect(await count('/console/{*path}', '404')).toBe(before2.wild + 1);
    expect(await count('/v1/mcp/call', '404')).toBe(before2.call + 1);
    const text = await (await fetch(`${b.url}/metrics`)).text();
    expect(text).not.toMatch(/route="[^"]*(a\/b|V1|MCP)/);
  });

  it('a streamed response on the fast path is the same event sequence', async () => {
    const stream = async (path: string) => {
      const r = await fetch(b.url + path, { method: 'POST', headers: { authorization: `Bearer sk-test-key-a-0123456789`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', input: 'hi', stream: true }) });
      expect(r.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      return [...(await r.text()).matchAll(/^event: (\S+)$/gm)].map((m) => m[1]);
    };
    const fast = await stream('/v1/responses');
    expect(fast).toContain('response.completed');
    expect(fast).toEqual(await stream('/v1/responses?via=express'));
  });
});
