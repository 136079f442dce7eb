import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenAIModelClient, type ModelClient } from '../src/responses/upstream/client.js';
import { UndiciModelClient } from '../src/responses/upstream/undiciClient.js';

/**
 * UndiciModelClient against OpenAIModelClient (its reference: SPEC §6's mapping does not know
 * which client ran) on the same fault server: same outcome, same requests at the upstream.
 */

type Seen = { server: string; method: string; url: string; authorization?: string; contentType?: string; body: string };

const BOM = '\ufeff';
/** [status, headers, body, the message both clients must give (when pinned)] */
const ERRORS: [number, Record<string, string>, string, string?][] = [
  [400, { 'content-type': 'application/json' }, '{"error":{"message":"bad thing","type":"invalid_request_error"}}', 'bad thing'],
  [400, { 'content-type': 'application/json' }, '{"error":"plain string"}', '400 "plain string"'],
  [400, { 'content-type': 'application/json' }, '{"message":"top-level message"}', '400 status code (no body)'],
  [400, { 'content-type': 'application/json' }, '{"detail":"fastapi style"}', '400 status code (no body)'],
  [422, { 'content-type': 'application/json' }, '{"error":{"message":{"nested":1}}}', '422 {"nested":1}'],
  [400, { 'content-type': 'text/plain' }, 'oops', '400 oops'],
  [400, { 'content-type': 'application/json' }, '', '400 status code (no body)'],
  [429, { 'content-type': 'application/json', 'retry-after': '7' }, '{"error":{"message":"slow down"}}', 'slow down'],
  [404, { 'content-type': 'application/json' }, '{"error":{"message":""}}'],
  [400, { 'content-type': 'application/json' }, '{"error":null}'],
  [400, { 'content-type': 'application/json' }, '{"error":{"code":"x","param":null}}'],
  [400, { 'content-type': 'application/json' }, '{"error":{"message":true}}'],
  [400, { 'content-type': 'application/json' }, '{"error":{"message":0}}'],
  [400, { 'content-type': 'application/json' }, '{"error":[1,2]}'],
  [400, { 'content-type': 'application/json' }, '{"error":5}'],
  [400, { 'content-type': 'application/json' }, '{"error":""}'],
  [400, { 'content-type': 'application/json' }, 'null'],
  [400, { 'content-type': 'application/json' }, '0'],
  [400, { 'content-type': 'application/json' }, '"a string"'],
  [400, { 'content-type': 'application/json' }, '[1]'],
  [400, { 'content-type': 'application/json' }, `${BOM}{"error":{"message":"after a BOM"}}`, 'after a BOM'],
  [401, { 'content-type': 'application/json' }, '{"error":{"message":"bad key"}}'],
  [500, { 'content-type': 'text/html' }, '<html>bad gateway</html>'],
  [503, { 'content-type': 'application/json', 'retry-after': '2' }, '{"error":{"message":"overloaded"}}'],
  // 3xx that fetch does not follow: an error like any other status outside 2xx.
  [300, { 'content-type': 'text/plain', location: '/ok/v1/responses' }, 'choices', '300 choices'],
  [304, {}, ''],
  [307, { 'content-type': 'text/plain' }, 'no location', '307 no location'],
];

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
  });
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('UndiciModelClient does what OpenAIModelClient does', () => {
  const seen: Seen[] = [];
  let main: { server: Server; url: string };
  let far: { server: Server; url: string };

  /** The answer at /ok: SSE for a streamed request (or `sse=1` carried through a redirect), else JSON. */
  const ok = (res: ServerResponse, sse: boolean) => {
    if (sse) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {"ok":1}\n\ndata: [DONE]\n\n');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":2}');
    }
  };

  const handler = (name: string) => async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    seen.push({ server: name, method: req.method!, url: req.url!, authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
    const u = new URL(req.url!, 'http://x');
    const parts = u.pathname.split('/');
    const sse = u.searchParams.get('sse') === '1' || (body !== '' && (JSON.parse(body) as { stream?: boolean }).stream === true);
    const q = sse ? '?sse=1' : '';
    const redirect = (status: number, location: string) => {
      res.writeHead(status, { location, 'content-type': 'text/plain' });
      res.end('moved');
    };
    switch (parts[1]) {
      case 'ok':
        return ok(res, sse);
      case 'e': {
        const [status, headers, text] = ERRORS[Number(parts[2])]!;
        res.writeHead(status, headers);
        return res.end(text);
      }
      case 'r': {
        // /r/<status>/<hops left>/…
        const n = Number(parts[3]);
        return redirect(Number(parts[2]), n > 1 ? `/r/${parts[2]}/${n - 1}/v1/responses${q}` : `/ok/v1/responses${q}`);
      }
      case 'far':
        return redirect(Number(parts[2]), `${far.url}/ok/v1/responses${q}`);
      case 'loop':
        return redirect(307, req.url!);
      case 'bad':
        return redirect(307, ['ftp://127.0.0.1/ok', 'http://[::1', 'data:text/plain,hi'][Number(parts[2])]!);
    }
    res.writeHead(500);
    res.end();
  };

  beforeAll(async () => {
    main = await listen(handler('main'));
    far = await listen(handler('far'));
  });
  afterAll(async () => {
    for (const s of [main, far]) {
      s.server.closeAllConnections();
      await new Promise((r) => s.server.close(r));
    }
  });

  type Outcome = { ok: unknown } | { error: string; status?: number; message: string; retryAfterS?: number };

  async function outcome(c: ModelClient, mode: 'stream' | 'json'): Promise<Outcome> {
    const signal = new AbortController().signal;
    try {
      if (mode === 'json') return { ok: await c.json('/responses', { model: 'm' }, signal) };
      const out: unknown[] = [];
      for await (const e of await c.stream('/responses', { model: 'm' }, signal)) out.push(e);
      return { ok: out };
    } catch (e) {
      const x = e as { status?: number; message: string; retryAfterS?: number };
      return { error: (e as Error).constructor.name, status: x.status, message: x.message, retryAfterS: x.retryAfterS };
    }
  }

  /** Both clients on the same base path: their outcomes and what the upstream saw of each. */
  async function both(base: string, mode: 'stream' | 'json') {
    const run = async (make: (o: { baseURL: string; apiKey: string; timeoutMs: number }) => ModelClient) => {
      const c = make({ baseURL: `${main.url}${base}`, apiKey: 'sk-test', timeoutMs: 5000 });
      seen.length = 0;
      try {
        return { outcome: await outcome(c, mode), requests: [...seen] };
      } finally {
        await c.close?.();
      }
    };
    const undici = await run((o) => new UndiciModelClient(o));
    const openai = await run((o) => new OpenAIModelClient(o));
    return { undici, openai };
  }

  describe.each(['stream', 'json'] as const)('%s', (mode) => {
    it.each(ERRORS.map((e, i) => [e[0], e[2], i, e[3]] as const))('an upstream %s %j: the same error', async (_s, _b, i, message) => {
      const { undici, openai } = await both(`/e/${i}/v1`, mode);
      expect(undici.outcome).toEqual(openai.outcome);
      expect(undici.outcome).toMatchObject({ error: 'UpstreamHttpError', status: ERRORS[i]![0] });
      if (message !== undefined) expect((undici.outcome as { message: string }).message).toBe(message);
    });

    it.each([
      ['307', '/r/307/1/v1', 'POST'],
      ['308', '/r/308/1/v1', 'POST'],
      ['301 (a POST goes on as GET)', '/r/301/1/v1', 'GET'],
      ['302 (a POST goes on as GET)', '/r/302/1/v1', 'GET'],
      ['303', '/r/303/1/v1', 'GET'],
      ['307 twenty times (fetch’s limit)', '/r/307/20/v1', 'POST'],
    ])('a redirect %s is followed; the upstream sees the same requests from both', async (_n, base, method) => {
      const { undici, openai } = await both(base, mode);
      expect(undici.outcome).toEqual(openai.outcome);
      expect(undici.outcome).toEqual({ ok: mode === 'stream' ? [{ ok: 1 }] : { ok: 2 } });
      expect(undici.requests).toEqual(openai.requests);
      const last = undici.requests.at(-1)!;
      expect(last).toMatchObject({ method, url: expect.stringMatching(/^\/ok\/v1\/responses/), authorization: 'Bearer sk-test' });
      if (method === 'GET') expect(last).toMatchObject({ body: '', contentType: undefined });
      else expect(JSON.parse(last.body)).toEqual({ model: 'm', stream: mode === 'stream' });
    });

    it.each(['307', '303'])('a %s to another origin is followed without the Authorization header', async (status) => {
      const { undici, openai } = await both(`/far/${status}/v1`, mode);
      expect(undici.outcome).toEqual(openai.outcome);
      expect(undici.outcome).toEqual({ ok: mode === 'stream' ? [{ ok: 1 }] : { ok: 2 } });
      expect(undici.requests).toEqual(openai.requests);
      expect(undici.requests.map((r) => [r.server, r.authorization])).toEqual([
        ['main', 'Bearer sk-test'],
        ['far', undefined],
      ]);
    });

    it.each([
      ['a 21st redirect', '/r/307/21/v1'],
      ['a redirect loop', '/loop/v1'],
      ['a Location with another scheme', '/bad/0/v1'],
      ['a Location that is not a URL', '/bad/1/v1'],
      ['a data: Location', '/bad/2/v1'],
    ])('%s is a connection error, as fetch makes it', async (_n, base) => {
      const { undici, openai } = await both(base, mode);
      expect(undici.outcome).toEqual(openai.outcome);
      expect(undici.outcome).toMatchObject({ error: 'UpstreamConnectionError', message: 'Could not reach the model upstream.' });
      expect(undici.requests).toEqual(openai.requests);
    });
  });
});
