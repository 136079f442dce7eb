import OpenAI from 'openai';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';
import { startBrokerProcess } from './fixtures/child.js';
import { readSse } from './fixtures/sse.js';
import { checkCalls, checkingFetch, checkSseEvents, expectNoSchemaProblems } from './fixtures/responseSchema.js';

const sse = async (res: Response) => checkSseEvents(await readSse(res));
const until = async (cond: () => Promise<boolean> | boolean, ms = 5000, what = 'condition') => {
  for (const end = Date.now() + ms; !(await cond()); ) {
    if (Date.now() > end) throw new Error(`${what} not met in ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const fx = { type: 'mcp' as const, server_label: 'fx', require_approval: 'never' as const };
const headers = { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' };

/** Reads an SSE body until `stopAt` has been seen, then leaves: the response id and the last whole event's sequence number. */
async function readUntil(res: Response, stopAt: string, ac: AbortController): Promise<{ id: string; n: number }> {
  const reader = res.body!.getReader();
  let text = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error('stream ended early');
    text += new TextDecoder().decode(value);
    const blocks = text.split('\n\n').slice(0, -1);
    if (blocks.some((bl) => bl.includes(`event: ${stopAt}\n`))) {
      ac.abort();
      const data = blocks.filter((bl) => bl.startsWith('event:')).map((bl) => JSON.parse(/^data: (.*)$/m.exec(bl)![1]!));
      return { id: data[0].response.id, n: data.at(-1).sequence_number };
    }
  }
}

describe('background responses (embedded store)', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let client: OpenAI;

  beforeEach(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url }, servers: [record('fx', mcp.url)] }));
    client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
    await mcp.close();
  });
  const get = async (id: string) => (await b.call('GET', `/v1/responses/${id}`)).body;

  it('answers at once (queued), runs on, and GET shows the end', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 300 } }] }, { text: 'all done', delayMs: 200 });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [fx], background: true });
    expect(r).toMatchObject({ status: 'queued', background: true, completed_at: null, output: [], usage: null });
    expect(mcp.counters.calls.slow ?? 0).toBe(0);
    await until(async () => (await get(r.id)).status === 'completed', 5000, 'completed');
    const done = await client.responses.retrieve(r.id);
    expect(done.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
    expect(done.output_text).toBe('all done');
    expect(done.completed_at).toEqual(expect.any(Number));
    expect(done.background).toBe(true);
    expect((await b.call('GET', `/v1/responses/${r.id}`, { token: KEY_B })).status).toBe(404);
  });

  it('more background runs than BROKER_MAX_BACKGROUND_RESPONSES: 429, and room again once one ends', async () => {
    const small = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url, BROKER_MAX_BACKGROUND_RESPONSES: '1' }, servers: [record('fx', mcp.url)] }));
    try {
      model.push({ calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
      const first = await small.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [fx], background: true } });
      expect(first.status).toBe(200);
      const second = await small.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', background: true } });
      expect(second.status).toBe(429);
      expect(second.body.error.code).toBe('too_many_background_responses');
      expect(second.headers.get('retry-after')).toBe('1');
      expect((await small.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } })).status).toBe(200); // foreground is not counted
      await small.call('POST', `/v1/responses/${first.body.id}/cancel`);
      expect((await small.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', background: true } })).status).toBe(200);
    } finally {
      await small.close();
    }
  });

  it('store: false is refused', async () => {
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', background: true, store: false } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: 'invalid_request_error', param: 'store' });
    expect(model.requests).toHaveLength(0);
  });

  it('cancel aborts the MCP call within 3 s; the model never sees its result', async () => {
    model.push({ text: 'Let me wait. ', calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [fx], background: true });
    await until(() => mcp.counters.calls.slow === 1, 5000, 'the call started');
    // Its output cannot be continued while it runs.
    const early = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'next', previous_response_id: r.id } });
    expect(early.status).toBe(400);
    expect(early.body.error.param).toBe('previous_response_id');
    const asked = Date.now();
    const cancelled = await client.responses.cancel(r.id);
    expect(cancelled).toMatchObject({ id: r.id, status: 'cancelled', background: true, completed_at: null });
    await until(() => mcp.counters.cancelled === 1, 3000, 'the MCP fixture saw the call aborted');
    expect(Date.now() - asked).toBeLessThan(3000);
    const call = cancelled.output.find((i) => i.type === 'mcp_call') as any;
    expect(call).toMatchObject({ status: 'incomplete', output: null });
    expect(cancelled.output.find((i) => i.type === 'message')).toMatchObject({ status: 'completed', content: [{ text: 'Let me wait. ' }] });
    await new Promise((res) => setTimeout(res, 300));
    expect(model.requests).toHaveLength(1);
    expect((await get(r.id)).status).toBe('cancelled');
    // Cancelling again returns it unchanged; its recorded stream ends with response.cancelled.
    expect((await b.call('POST', `/v1/responses/${r.id}/cancel`)).body).toMatchObject({ status: 'cancelled' });
    const events = await sse(await fetch(`${b.url}/v1/responses/${r.id}?stream=true`, { headers }));
    expect(events.at(-1)).toMatchObject({ event: 'response.cancelled', data: { response: { status: 'cancelled' } } });
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
  });

  it('DELETE of a running response cancels it first: it does not come back', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [fx], background: true });
    await until(() => mcp.counters.calls.slow === 1, 5000, 'the call started');
    expect((await b.call('DELETE', `/v1/responses/${r.id}`)).body).toEqual({ id: r.id, object: 'response.deleted', deleted: true });
    await until(() => mcp.counters.cancelled === 1, 3000, 'the call aborted');
    await new Promise((res) => setTimeout(res, 200));
    expect((await b.call('GET', `/v1/responses/${r.id}`)).status).toBe(404);
  });

  it('cancel aborts a model request in flight', async () => {
    model.push({ text: 'I am thinking', hang: true });
    const r = await client.responses.create({ model: 'm', input: 'x', background: true });
    await until(async () => (await get(r.id)).output.length === 1 || model.requests.length === 1, 5000, 'model asked');
    await new Promise((res) => setTimeout(res, 100));
    const cancelled = await client.responses.cancel(r.id);
    expect(cancelled.status).toBe('cancelled');
    await until(() => model.aborted === 1, 3000, 'the model request aborted');
    expect(cancelled.output).toEqual([expect.objectContaining({ type: 'message', status: 'incomplete', content: [expect.objectContaining({ text: 'I am thinking' })] })]);
  });

  it('cancel: a finished response is returned unchanged; a foreground one is refused', async () => {
    const bg = await client.responses.create({ model: 'm', input: 'x', background: true });
    await until(async () => (await get(bg.id)).status === 'completed');
    const again = await b.call('POST', `/v1/responses/${bg.id}/cancel`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(await get(bg.id));
    const fg = await client.responses.create({ model: 'm', input: 'x' });
    const refused = await b.call('POST', `/v1/responses/${fg.id}/cancel`);
    expect(refused.status).toBe(400);
    expect((await b.call('POST', `/v1/responses/${fg.id}/cancel`, { token: KEY_B })).status).toBe(404);
    expect((await b.call('GET', `/v1/responses/${fg.id}?stream=true`)).status).toBe(400);
  });

  it('stream: true streams as usual; GET ?stream=true&starting_after=N resumes after N', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'bg' } }] }, { text: 'Streamed in the background' });
    const events = await sse(await fetch(`${b.url}/v1/responses`, { method: 'POST', headers, body: JSON.stringify({ model: 'm', input: 'x', tools: [fx], background: true, stream: true }) }));
    expect(events.slice(0, 3).map((e) => [e.event, e.data.response.status])).toEqual([
      ['response.created', 'queued'],
      ['response.queued', 'queued'],
      ['response.in_progress', 'in_progress'],
    ]);
    expect(events.at(-1)!.event).toBe('response.completed');
    expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    const id = events[0]!.data.response.id;
    const resumed = await sse(await fetch(`${b.url}/v1/responses/${id}?stream=true&starting_after=5`, { headers }));
    expect(resumed).toEqual(events.slice(6));
    // The official client's retrieve with stream works the same way.
    const s = await client.responses.retrieve(id, { stream: true, starting_after: events.length - 3 });
    const tail: string[] = [];
    for await (const e of s) tail.push(e.type);
    expect(tail).toEqual(events.slice(-2).map((e) => e.event));
  });

  it("survives its client's disconnect; the stream resumes where the client left", async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 700 } }] }, { text: 'finished anyway' });
    const ac = new AbortController();
    const res = await fetch(`${b.url}/v1/responses`, { method: 'POST', signal: ac.signal, headers, body: JSON.stringify({ model: 'm', input: 'x', tools: [fx], background: true, stream: true }) });
    const { id, n } = await readUntil(res, 'response.mcp_call.in_progress', ac);
    const rest = await sse(await fetch(`${b.url}/v1/responses/${id}?stream=true&starting_after=${n}`, { headers }));
    expect(rest[0]!.data.sequence_number).toBe(n + 1);
    expect(rest.map((e) => e.data.sequence_number)).toEqual(rest.map((_, i) => n + 1 + i));
    expect(rest.at(-1)).toMatchObject({ event: 'response.completed', data: { response: { status: 'completed' } } });
    expect(mcp.counters.cancelled).toBe(0);
    expect(mcp.counters.calls.slow).toBe(1);
    expect((await get(id)).output.at(-1).content[0].text).toBe('finished anyway');
  });
});

describe('background responses on two instances (Redis)', () => {
  let redis: RedisFixture;
  let mcp: McpFixture;
  let model: FakeModel;
  let a: TestBroker;
  let b: TestBroker;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.close();
  });
  beforeEach(async () => {
    await redis.flush();
    mcp = await startMcpFixture();
    model = await startFakeModel();
    const env = { BROKER_STORE: redis.url, UPSTREAM_BASE_URL: model.url };
    a = checkCalls(await startBroker({ env, servers: [record('fx', mcp.url)] }));
    b = checkCalls(await startBroker({ env, servers: [record('fx', mcp.url)] }));
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await a.close();
    await b.close();
    await model.close();
    await mcp.close();
  });

  it('a cancel on B aborts the run on A (the MCP call within 3 s)', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
    const r = await a.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [fx], background: true } });
    expect(r.body.status).toBe('queued');
    await until(() => mcp.counters.calls.slow === 1, 5000, 'the call started');
    expect((await b.call('GET', `/v1/responses/${r.body.id}`)).body.status).toBe('in_progress');
    const cancelled = await b.call('POST', `/v1/responses/${r.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    await until(() => mcp.counters.cancelled === 1, 3000, 'the MCP fixture saw the call aborted');
    await new Promise((res) => setTimeout(res, 300));
    expect(model.requests).toHaveLength(1);
    expect((await a.call('GET', `/v1/responses/${r.body.id}`)).body.status).toBe('cancelled');
  });

  it('a stream started on A resumes on B', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 600 } }] }, { text: 'from A' });
    const ac = new AbortController();
    const res = await fetch(`${a.url}/v1/responses`, { method: 'POST', signal: ac.signal, headers, body: JSON.stringify({ model: 'm', input: 'x', tools: [fx], background: true, stream: true }) });
    const { id, n } = await readUntil(res, 'response.mcp_call.in_progress', ac);
    const rest = await sse(await fetch(`${b.url}/v1/responses/${id}?stream=true&starting_after=${n}`, { headers }));
    expect(rest.map((e) => e.data.sequence_number)).toEqual(rest.map((_, i) => n + 1 + i));
    expect(rest.at(-1)).toMatchObject({ event: 'response.completed', data: { response: { status: 'completed' } } });
    expect(mcp.counters.cancelled).toBe(0);
  });

  it('a run whose instance died ends failed (instance_lost) once another instance notices', async () => {
    const child = await startBrokerProcess({
      BROKER_STORE: redis.url,
      BROKER_CONFIG: a.configPath,
      BROKER_API_KEYS: KEY_A,
      UPSTREAM_BASE_URL: model.url,
      BROKER_BACKGROUND_LEASE_MS: '600',
    });
    try {
      model.push({ calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
      const r = await fetch(`${child.url}/v1/responses`, { method: 'POST', headers, body: JSON.stringify({ model: 'm', input: 'x', tools: [fx], background: true }) }).then((x) => x.json());
      expect(r.status).toBe('queued');
      await until(() => mcp.counters.calls.slow === 1, 10000, 'the call started');
      // GET on B shows the progress A recorded.
      await until(async () => (await b.call('GET', `/v1/responses/${r.id}`)).body.output.some((i: any) => i.type === 'mcp_call'), 5000, 'progress');
      expect((await b.call('GET', `/v1/responses/${r.id}`)).body.status).toBe('in_progress');
      child.proc.kill('SIGKILL');
      await child.exited;
      await until(async () => (await b.call('GET', `/v1/responses/${r.id}`)).body.status === 'failed', 5000, 'failed');
      const got = (await b.call('GET', `/v1/responses/${r.id}`)).body;
      expect(got.error).toMatchObject({ code: 'instance_lost' });
      expect(got.output.find((i: any) => i.type === 'mcp_call')).toMatchObject({ status: 'incomplete', arguments: '{"ms":20000}' });
      const events = await sse(await fetch(`${b.url}/v1/responses/${r.id}?stream=true`, { headers }));
      expect(events.at(-1)).toMatchObject({ event: 'response.failed', data: { response: { error: { code: 'instance_lost' } } } });
      expect(events.map((e) => e.data.sequence_number)).toEqual(events.map((_, i) => i));
    } finally {
      child.proc.kill('SIGKILL');
    }
  }, 60_000);
});

