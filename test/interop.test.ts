import { ADMIN, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startEverything, type EverythingServer } from './fixtures/everything.js';

jest.setTimeout(60_000);

/** The broker against `@modelcontextprotocol/server-everything`, a server this project did not write. */
describe.each([
  ['Streamable HTTP', 'streamableHttp', 'streamable_http'],
  ['legacy HTTP+SSE', 'sse', 'sse'],
] as const)('server-everything over %s', (_name, mode, kind) => {
  let ev: EverythingServer;
  let b: TestBroker;
  const tool = { type: 'mcp', server_label: 'ev' };
  const call = (name: string, args: Record<string, unknown>) => b.call('POST', '/v1/mcp/call', { body: { tool, name, arguments: args } });

  beforeAll(async () => {
    ev = await startEverything(mode);
  });
  afterAll(async () => {
    await ev?.close();
  });
  beforeEach(async () => {
    // A breaker that opens on the first counted failure: session refusals must never count.
    b = await startBroker({ servers: [record('ev', ev.url, { transport: 'auto' })], tuning: { breakerThreshold: 1, breakerHalfOpenMs: 60_000 } });
  });
  afterEach(async () => {
    await b?.close();
  });

  it('the first listing of a fresh record succeeds; the tools are there; the transport is remembered', async () => {
    const first = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
    expect(first.status).toBe(200);
    const names = first.body.tools.map((t: { name: string }) => t.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'get-sum', 'get-structured-content', 'get-resource-reference', 'get-tiny-image']));
    // No client capabilities declared: the sampling/elicitation/roots tools are not offered.
    expect(names).not.toContain('trigger-sampling-request');
    const s = await b.call('GET', '/admin/servers/ev', { token: ADMIN });
    expect(s.body.status).toMatchObject({ last_error: null, transport_in_use: kind, protocol_in_use: '2025-11-25' });
  });

  it('echo, get-sum, structured content, an embedded resource, resource links and an image', async () => {
    expect((await call('echo', { message: 'hello there' })).body).toMatchObject({ status: 'completed', output: 'Echo: hello there' });
    expect((await call('get-sum', { a: 2, b: 40 })).body.output).toMatch(/42/);
    const weather = await call('get-structured-content', { location: 'Chicago' });
    expect(weather.body.status).toBe('completed');
    expect(weather.body.output).toMatch(/temperature/);
    const ref = await call('get-resource-reference', { resourceType: 'Text', resourceId: 2 });
    expect(ref.body.status).toBe('completed');
    // The embedded text resource reaches the model as its text, not as a bare URI.
    expect(ref.body.output).toMatch(/Returning resource reference for Resource 2/);
    expect(ref.body.output).not.toMatch(/^\[resource: [^\]]*\]$/m);
    const links = await call('get-resource-links', { count: 2 });
    expect(links.body.output).toMatch(/\[resource: \S+ \(name: [^)]+/);
    const img = await call('get-tiny-image', {});
    expect(img.body.output).toMatch(/\[image: image\/png\]/);
  });

  it('a restart on the same port costs no failed call and no admin action', async () => {
    expect((await call('echo', { message: 'before' })).body.status).toBe('completed');
    await ev.stop();
    await ev.start();
    const after = await call('echo', { message: 'after' });
    expect(after.body).toMatchObject({ status: 'completed', output: 'Echo: after' });
    // And a refresh never reuses the dead session.
    await ev.stop();
    await ev.start();
    const refreshed = await b.call('POST', '/admin/servers/ev/refresh', { token: ADMIN });
    expect(refreshed.status).toBe(200);
    expect((await call('echo', { message: 'again' })).body.status).toBe('completed');
    const s = await b.call('GET', '/admin/servers/ev', { token: ADMIN });
    expect(s.body.status.last_error).toBeNull();
  });
});
