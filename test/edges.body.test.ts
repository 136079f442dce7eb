import { request } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import pino from 'pino';
import { jsonBody } from '../src/http/body.js';
import { errorHandler } from '../src/http/errorHandler.js';

/**
 * jsonBody against express.json (its reference) on the same bytes: both behind the app's
 * errorHandler, so what a caller sees must be identical.
 */
const LIMIT = 1000;

type App = { port: number; errors: string[]; server: Server };

async function start(fast: boolean): Promise<App> {
  const errors: string[] = [];
  const app = express();
  app.post('/x', fast ? jsonBody(LIMIT, { bindContext: false }) : express.json({ limit: LIMIT, type: () => true }), (req, res) => {
    res.json({ body: req.body ?? null });
  });
  const record: ErrorRequestHandler = (err, _req, _res, next) => {
    errors.push((err as { type?: string }).type ?? String(err));
    next(err);
  };
  app.use(record, errorHandler(pino({ level: 'silent' })));
  const server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  return { port: (server.address() as AddressInfo).port, errors, server };
}

function post(port: number, o: { body: Buffer | string | Buffer[]; headers?: Record<string, string>; chunked?: boolean }): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const parts = (Array.isArray(o.body) ? o.body : [o.body]).map((p) => Buffer.from(p));
    const len = parts.reduce((n, p) => n + p.length, 0);
    const req = request(
      { host: '127.0.0.1', port, path: '/x', method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...(o.chunked ? {} : { 'content-length': String(len) }), ...o.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
      },
    );
    req.on('error', reject);
    for (const p of parts) req.write(p);
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  for (const t0 = Date.now(); !cond() && Date.now() - t0 < ms; ) await sleep(10);
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const utf16 = (s: string) => Buffer.from(s, 'utf16le');

describe('jsonBody answers as express.json does', () => {
  let fast: App;
  let general: App;
  beforeAll(async () => {
    fast = await start(true);
    general = await start(false);
  });
  afterAll(async () => {
    await new Promise((r) => fast.server.close(r));
    await new Promise((r) => general.server.close(r));
  });
  beforeEach(() => {
    fast.errors.length = 0;
    general.errors.length = 0;
  });

  const same = async (o: Parameters<typeof post>[1]) => {
    const [a, b] = [await post(fast.port, o), await post(general.port, o)];
    expect(a).toEqual(b);
    return a;
  };

  it.each<[string, Buffer | Buffer[], boolean]>([
    ['a BOM before an object', Buffer.concat([BOM, Buffer.from('{"a":1}')]), false],
    ['a BOM alone', BOM, false],
    ['a BOM, whitespace, an array', Buffer.concat([BOM, Buffer.from(' [1,2]')]), false],
    ['two BOMs (only one is dropped)', Buffer.concat([BOM, BOM, Buffer.from('{}')]), false],
    ['a BOM split across chunks', [BOM.subarray(0, 1), Buffer.concat([BOM.subarray(1), Buffer.from('{"b":2}')])], true],
    ['no BOM', Buffer.from('{"a":1}'), false],
    ['an empty body', Buffer.alloc(0), false],
    ['malformed JSON', Buffer.from('{"a":'), false],
  ])('%s', async (_n, body, chunked) => {
    await same({ body, chunked });
  });

  it('a leading BOM is dropped as body-parser drops it', async () => {
    expect(await post(fast.port, { body: Buffer.concat([BOM, Buffer.from('{"a":1}')]) })).toEqual({ status: 200, body: { body: { a: 1 } } });
    expect(await post(fast.port, { body: BOM })).toEqual({ status: 200, body: { body: {} } });
  });

  it.each<[string, Buffer | string]>([
    ['application/json; Charset=ISO-8859-1', Buffer.from('{"a":"\xe9"}', 'latin1')],
    ['application/json; CHARSET=utf-16le', utf16('{"a":1}')],
    ['application/json; Charset = "UTF-16"', Buffer.concat([Buffer.from([0xff, 0xfe]), utf16('{"a":"é"}')])],
    ['application/json;\tcharset=latin1', '{"a":1}'],
    ['application/json; charset=UTF-8', '{"a":"é"}'],
    ['application/json; charset="utf-8"', '{"a":1}'],
    ['application/json; charset=utf-8; charset=latin1', '{"a":1}'],
    ['application/json; charset=latin1; charset=utf-8', '{"a":1}'],
    ['application/json; charset=utf-8"', '{"a":1}'],
    ['application/json; charset="utf-8', '{"a":1}'],
    ['application/json; charset=', '{"a":1}'],
    ['application/json; charset=utf8', '{"a":1}'],
    ['application/json; charset=utf-8 x', '{"a":1}'],
    ['application/json; a="x;charset=latin1"', '{"a":1}'],
    ['application/json; charset=latin1; x', '{"a":1}'],
  ])('Content-Type %s', async (ct, body) => {
    await same({ body, headers: { 'content-type': ct } });
  });

  it('a charset parameter is found whatever its case (then express.json decides)', async () => {
    const latin1 = await post(fast.port, { body: Buffer.from('{"a":"\xe9"}', 'latin1'), headers: { 'content-type': 'application/json; Charset=ISO-8859-1' } });
    expect(latin1).toMatchObject({ status: 400, body: { error: { message: 'Unsupported request body encoding.' } } });
    expect(await post(fast.port, { body: utf16('{"a":1}'), headers: { 'content-type': 'application/json; CHARSET=utf-16le' } })).toEqual({ status: 200, body: { body: { a: 1 } } });
  });

  /** Request 1 chunked over the limit, its end held back; then request 2 on the same socket. */
  async function overLimitThenNext(port: number): Promise<{ early: string; statuses: string[]; error?: string }> {
    const s = connect(port, '127.0.0.1');
    let got = '';
    let error: string | undefined;
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code));
    const ended = new Promise<void>((r) => s.on('close', () => r()));
    s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    for (let i = 0; i < 5; i++) {
      s.write(`258\r\n${'x'.repeat(600)}\r\n`);
      await sleep(10);
    }
    await sleep(150);
    const early = got;
    s.write('0\r\n\r\n');
    s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 7\r\nConnection: close\r\n\r\n{"a":1}');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
    s.destroy();
    return { early, statuses: [...got.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]!), error };
  }

  it('a chunked body over the limit is read off, then 413; the next request on the socket is answered', async () => {
    for (const app of [fast, general]) {
      const r = await overLimitThenNext(app.port);
      expect(r).toEqual({ early: '', statuses: ['413', '200'], error: undefined });
    }
    expect(fast.errors).toEqual(['entity.too.large']);
    expect(general.errors).toEqual(fast.errors);
  });

  it.each([
    ['over the limit', 5],
    ['under the limit', 1],
  ])('a client gone mid-body (%s): next is still called, with the same error as express.json', async (_n, pieces) => {
    for (const app of [fast, general]) {
      const s = connect(app.port, '127.0.0.1');
      s.on('error', () => {});
      s.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
      for (let i = 0; i < pieces; i++) s.write(`258\r\n${'x'.repeat(600)}\r\n`);
      await sleep(100);
      s.destroy();
      await until(() => app.errors.length > 0);
    }
    expect(fast.errors).toHaveLength(1);
    expect(fast.errors).toEqual(general.errors);
    expect(fast.errors[0]).toBe(pieces > 1 ? 'entity.too.large' : 'request.aborted');
  });
});
