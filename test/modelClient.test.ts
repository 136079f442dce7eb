import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { OpenAIModelClient, type ModelClient } from '../src/responses/upstream/client.js';
import { UndiciModelClient } from '../src/responses/upstream/undiciClient.js';
import { UpstreamAbortError, UpstreamConnectionError, UpstreamHttpError, UpstreamStreamError, UpstreamTimeoutError } from '../src/responses/upstream/errors.js';
import { ChatCompletionsAdapter } from '../src/responses/upstream/chatCompletions.js';
import { ResponsesAdapter } from '../src/responses/upstream/responsesApi.js';
import type { TurnEvent, TurnRequest } from '../src/responses/upstream/types.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { KEY_A, startBroker } from './fixtures/broker.js';

const CLIENTS = [
  ['undici', (o: { baseURL: string; apiKey: string; timeoutMs: number }) => new UndiciModelClient(o)],
  ['openai', (o: { baseURL: string; apiKey: string; timeoutMs: number }) => new OpenAIModelClient(o)],
] as const;

const req = (over: Partial<TurnRequest> = {}): TurnRequest => ({ model: 'm', instructions: null, messages: [{ kind: 'message', role: 'user', content: 'x' }], tools: [], toolChoice: 'auto', parallelToolCalls: true, ...over });

async function drain(s: AsyncIterable<unknown>): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const e of s) out.push(e);
  return out;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe.each(CLIENTS)('model client %s', (_name, make) => {
  let model: FakeModel;
  let client: ModelClient;
  beforeEach(async () => {
    model = await startFakeModel();
    client = make({ baseURL: model.url, apiKey: 'sk-up', timeoutMs: 1000 });
  });
  afterEach(async () => {
    await client.close?.();
    await model.close();
  });

  it('streams parsed chunks up to [DONE], sending the key and stream: true', async () => {
    model.push({ text: 'hello world', pieceLength: 4 });
    const got = (await drain(await client.stream('/chat/completions', { model: 'm', messages: [] }, new AbortController().signal))) as any[];
    expect(got.map((c) => c.choices[0]?.delta?.content ?? '').join('')).toBe('hello world');
    expect(model.requests[0]).toMatchObject({ path: '/v1/chat/completions', body: { stream: true }, headers: { authorization: 'Bearer sk-up' } });
  });

  it('answers a non-streamed request with one JSON body (stream: false)', async () => {
    model.push({ text: 'whole' });
    const got = (await client.json('/chat/completions', { model: 'm', messages: [], stream: true }, new AbortController().signal)) as any;
    expect(got.choices[0].message.content).toBe('whole');
    expect(model.requests[0]!.body.stream).toBe(false);
  });

  it.each([false, true])('HTTP errors keep status, message and Retry-After (streamed: %s)', async (streamed) => {
    model.push({ status: 400, message: 'bad model input' }, { status: 429, headers: { 'retry-after': '7' } }, { status: 503 });
    const call = () => (streamed ? client.stream('/responses', { model: 'm' }, new AbortController().signal) : client.json('/responses', { model: 'm' }, new AbortController().signal));
    await expect(call()).rejects.toMatchObject({ constructor: UpstreamHttpError, status: 400, message: 'bad model input' });
    await expect(call()).rejects.toMatchObject({ constructor: UpstreamHttpError, status: 429, retryAfterS: 7 });
    await expect(call()).rejects.toMatchObject({ constructor: UpstreamHttpError, status: 503 });
  });

  it('no answer within the timeout is UpstreamTimeoutError', async () => {
    model.push({ text: 'late', delayMs: 1500 });
    await expect(client.json('/chat/completions', { model: 'm', messages: [] }, new AbortController().signal)).rejects.toBeInstanceOf(UpstreamTimeoutError);
  });

  it('an unreachable upstream is UpstreamConnectionError', async () => {
    const c: ModelClient = make({ baseURL: `http://127.0.0.1:${await closedPort()}/v1`, apiKey: 'k', timeoutMs: 1000 });
    await expect(c.stream('/chat/completions', { model: 'm' }, new AbortController().signal)).rejects.toBeInstanceOf(UpstreamConnectionError);
    await c.close?.();
  });

  it('the signal aborts a stream in progress: UpstreamAbortError, and the upstream sees the close', async () => {
    model.push({ text: 'started', hang: true });
    const ac = new AbortController();
    const s = await client.stream('/chat/completions', { model: 'm', messages: [] }, ac.signal);
    setTimeout(() => ac.abort(), 100);
    await expect(drain(s)).rejects.toBeInstanceOf(UpstreamAbortError);
    for (let i = 0; i < 50 && model.aborted === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(model.aborted).toBe(1);
  });

  it('an error chunk inside the stream is UpstreamStreamError; a cut stream is a connection error', async () => {
    model.push({ text: 'half', failAfterText: 'overloaded' }, { text: 'half', cutAfterText: true });
    await expect(drain(await client.stream('/chat/completions', { model: 'm', messages: [] }, new AbortController().signal))).rejects.toMatchObject({
      constructor: UpstreamStreamError,
      message: expect.stringContaining('overloaded'),
    });
    await expect(drain(await client.stream('/chat/completions', { model: 'm', messages: [] }, new AbortController().signal))).rejects.toBeInstanceOf(UpstreamConnectionError);
  });

  it.each(['chat', 'responses'] as const)('the %s adapter gives the same result streamed and not', async (api) => {
    const adapter = api === 'chat' ? new ChatCompletionsAdapter(client) : new ResponsesAdapter(client);
    const turn = { text: 'Sure.', calls: [{ name: 'add', arguments: { a: 1 }, call_id: 'call_1' }], usage: { input: 3, output: 4, cached: 1 }, serviceTier: 'flex' };
    model.push(turn, turn);
    const run = async (stream: boolean) => {
      const events: TurnEvent[] = [];
      const r = await adapter.turn(req({ stream }), (e) => events.push(e), new AbortController().signal);
      const strip = (i: any) => ({ ...i, id: i.id.replace(/^(msg|fc)_.*/, '$1') });
      return { items: r.items.map(strip), usage: r.usage, tier: r.serviceTier, kinds: [...new Set(events.map((e) => e.type))].filter((t) => t !== 'content_delta' && t !== 'arguments_delta') };
    };
    const streamed = await run(true);
    const whole = await run(false);
    expect(whole).toEqual(streamed);
    expect(whole.items).toMatchObject([{ type: 'message', content: [{ type: 'output_text', text: 'Sure.' }] }, { type: 'function_call', name: 'add', call_id: 'call_1', arguments: '{"a":1}' }]);
    expect(whole.usage).toMatchObject({ input_tokens: 3, output_tokens: 4, input_tokens_details: { cached_tokens: 1 } });
    expect(whole.tier).toBe('flex');
    expect(model.requests.map((r) => r.body.stream)).toEqual([true, false]);
  });

  it('a non-streamed Responses answer with status failed is UpstreamStreamError', async () => {
    model.push({ text: 'half', failAfterText: 'overloaded' });
    await expect(new ResponsesAdapter(client).turn(req({ stream: false }), () => {}, new AbortController().signal)).rejects.toMatchObject({
      constructor: UpstreamStreamError,
      message: expect.stringContaining('overloaded'),
    });
  });
});

describe('the broker asks for a stream only when someone watches it', () => {
  it.each(CLIENTS.map(([n]) => n))('%s: plain → stream: false, stream: true → stream: true', async (name) => {
    const model = await startFakeModel();
    const b = await startBroker({ env: { UPSTREAM_BASE_URL: model.url, UPSTREAM_CLIENT: name } });
    try {
      const post = (body: object) => fetch(`${b.url}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const plain = await post({ model: 'm', input: 'x' });
      expect((await plain.json()).output[0].content[0].text).toBe('hello from the model');
      const streamed = await post({ model: 'm', input: 'x', stream: true });
      expect(await streamed.text()).toContain('hello from the model');
      expect(model.requests.map((r) => r.body.stream)).toEqual([false, true]);
    } finally {
      await b.close();
      await model.close();
    }
  });
});
