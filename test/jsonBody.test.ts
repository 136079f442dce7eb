import { request } from 'node:http';
import { gzipSync } from 'node:zlib';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';

/** A raw request, so framing (Content-Length vs chunked), encoding and charset are ours to choose. */
function raw(b: TestBroker, o: { body: Buffer | string | Buffer[]; headers?: Record<string, string>; chunked?: boolean }): Promise<{ status: number; body: any; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const u = new URL(`${b.url}/v1/mcp/list_tools`);
    const parts = Array.isArray(o.body) ? o.body : [Buffer.from(o.body)];
    const len = parts.reduce((n, p) => n + p.length, 0);
    const req = request(
      { host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json', ...(o.chunked ? {} : { 'content-length': String(len) }), ...o.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString() || 'null'), headers: res.headers }));
      },
    );
    req.on('error', reject);
    for (const p of parts) req.write(p);
    req.end();
  });
}

describe('JSON request bodies (one read, one parse; 413/400 as before)', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  const ok = JSON.stringify({ tool: { type: 'mcp', server_label: 'fx' } });
  beforeAll(async () => {
    mcp = await startMcpFixture();
    b = await startBroker({ servers: [record('fx', mcp.url)], env: { BROKER_MAX_BODY_BYTES: '2048' } });
  });
  afterAll(async () => {
    await b.close();
    await mcp.close();
  });

  it('a body with Content-Length, or chunked in pieces, is parsed; the item is JSON with its length', async () => {
    const a = await raw(b, { body: ok });
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(a.body).toMatchObject({ type: 'mcp_list_tools', server_label: 'fx' });
    const c = await raw(b, { body: [Buffer.from(ok.slice(0, 7)), Buffer.from(ok.slice(7))], chunked: true });
    expect(c.body).toEqual({ ...a.body, id: c.body.id });
    // A multi-byte character split across chunks.
    const s = Buffer.from(JSON.stringify({ tool: { type: 'mcp', server_label: 'fx', server_description: 'é' } }));
    const at = s.indexOf(Buffer.from('é')) + 1;
    expect((await raw(b, { body: [s.subarray(0, at), s.subarray(at)], chunked: true })).status).toBe(200);
  });

  it.each([
    ['malformed JSON', '{"tool":', 'invalid_json'],
    ['a JSON number (strict: objects and arrays only)', '123', 'invalid_json'],
    ['a JSON string', '"x"', 'invalid_json'],
  ])('%s → 400 %s', async (_n, body, code) => {
    const r = await raw(b, { body });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code });
  });

  it('an empty body is {} (then a validation error names the missing field)', async () => {
    const r = await raw(b, { body: '' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).not.toBe('invalid_json');
  });

  it('over the limit → 413, declared by Content-Length or found while reading a chunked body', async () => {
    const big = JSON.stringify({ tool: { type: 'mcp', server_label: 'fx' }, pad: 'x'.repeat(4096) });
    const declared = await raw(b, { body: big });
    expect(declared.status).toBe(413);
    expect(declared.body.error).toMatchObject({ type: 'invalid_request_error', code: 'payload_too_large' });
    const chunked = await raw(b, { body: [Buffer.from(big.slice(0, 1000)), Buffer.from(big.slice(1000))], chunked: true });
    expect(chunked.status).toBe(413);
    expect(chunked.body.error.code).toBe('payload_too_large');
  });

  it('gzip still works and an unsupported charset is still refused (the general parser takes them)', async () => {
    const g = await raw(b, { body: gzipSync(ok), headers: { 'content-encoding': 'gzip' } });
    expect(g.status).toBe(200);
    expect(g.body.type).toBe('mcp_list_tools');
    const l = await raw(b, { body: ok, headers: { 'content-type': 'application/json; charset=latin1' } });
    expect(l.status).toBe(400);
    expect(l.body.error.message).toBe('Unsupported request body encoding.');
    const u = await raw(b, { body: ok, headers: { 'content-type': 'application/json; charset="UTF-8"' } });
    expect(u.status).toBe(200);
  });
});
