import OpenAI from 'openai';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { readSse } from './fixtures/sse.js';
import { assertResponseObject, checkCalls, checkingFetch, checkSseEvents, expectNoSchemaProblems } from './fixtures/responseSchema.js';

const sse = async (res: Response) => checkSseEvents(await readSse(res));
const PDF = 'data:application/pdf;base64,JVBERi0xLjQK';

describe.each(['chat_completions', 'responses'] as const)('wire fidelity, %s upstream', (api) => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let client: OpenAI;
  const weather = { type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false };

  beforeEach(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url, UPSTREAM_API: api }, servers: [record('fx', mcp.url)] }));
    client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
    await mcp.close();
  });
  const post = (body: object) =>
    fetch(`${b.url}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, ...body }) });
  const sent = (i = 0) => model.requests[i]!.body;

  it('echoes every field with defaults; completed_at set once completed', async () => {
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      presence_penalty: 0,
      frequency_penalty: 0,
      top_logprobs: 0,
      service_tier: 'default',
      safety_identifier: null,
      prompt_cache_key: null,
      text: { format: { type: 'text' } },
      background: false,
      status: 'completed',
    });
    expect(r.body.completed_at).toBeGreaterThanOrEqual(r.body.created_at);
  });

  it('accepts and forwards the sampling, tier, safety and cache parameters', async () => {
    model.push({ text: 'ok', serviceTier: 'flex' });
    const schema = { type: 'object', properties: { n: { type: 'number' } } };
    const r = await b.call('POST', '/v1/responses', {
      body: {
        model: 'm',
        input: 'x',
        presence_penalty: 0.5,
        frequency_penalty: -0.25,
        top_logprobs: 3,
        service_tier: 'flex',
        safety_identifier: 'user-hash-1',
        prompt_cache_key: 'cache-1',
        prompt_cache_retention: '24h',
        text: { format: { type: 'json_schema', name: 'answer', schema } },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      top_logprobs: 3,
      service_tier: 'flex',
      safety_identifier: 'user-hash-1',
      prompt_cache_key: 'cache-1',
      text: { format: { type: 'json_schema', name: 'answer', schema, description: null, strict: null } },
    });
    const body = sent();
    expect(body).toMatchObject({ service_tier: 'flex', safety_identifier: 'user-hash-1', prompt_cache_key: 'cache-1', prompt_cache_retention: '24h', top_logprobs: 3 });
    if (api === 'chat_completions') expect(body).toMatchObject({ presence_penalty: 0.5, frequency_penalty: -0.25, logprobs: true });
    else expect(body.text.format).toMatchObject({ type: 'json_schema', name: 'answer' });
  });

  it.each([
    [{ presence_penalty: 3 }, 'presence_penalty'],
    [{ top_logprobs: 21 }, 'top_logprobs'],
    [{ service_tier: 'gold' }, 'service_tier'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_data: 'not a data url', filename: 'a.pdf' }] }] }, 'input[0].content[0].file_data'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_data: PDF }] }] }, 'input[0].content[0].filename'],
    [{ input: [{ role: 'user', content: [{ type: 'input_file', file_data: PDF, filename: 'a.pdf', file_id: 'file_1' }] }] }, 'input[0].content[0].file_data'],
    [{ input: [{ role: 'user', content: [{ type: 'input_image' }] }] }, 'input[0].content[0].image_url'],
  ])('bad parameter %#: 400 naming it', async (extra, param) => {
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', ...extra } });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe(param);
    expect(model.requests).toHaveLength(0);
  });

  it('input_file (file_data, file_id) and input_image by file_id reach the upstream', async () => {
    const content = [
      { type: 'input_text', text: 'read these' },
      { type: 'input_file', file_data: PDF, filename: 'report.pdf' },
      { type: 'input_file', file_id: 'file-abc123' },
      { type: 'input_image', file_id: 'file-img456' },
    ];
    const r = await client.responses.create({ model: 'm', input: [{ role: 'user', content: content as any }] });
    expect(r.status).toBe('completed');
    const body = sent();
    if (api === 'chat_completions') {
      expect(body.messages[0].content).toEqual([
        { type: 'text', text: 'read these' },
        { type: 'file', file: { filename: 'report.pdf', file_data: PDF } },
        { type: 'file', file: { file_id: 'file-abc123' } },
        { type: 'file', file: { file_id: 'file-img456' } },
      ]);
    } else {
      expect(body.input[0]).toMatchObject({ type: 'message', role: 'user', content });
    }
  });

  it('input_file by file_url: passed to a Responses upstream, a clear 400 for Chat Completions', async () => {
    const content = [{ type: 'input_file', file_url: 'https://files.example/report.pdf' }];
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: [{ role: 'user', content }] } });
    if (api === 'responses') {
      expect(r.status).toBe(200);
      expect(sent().input[0].content).toEqual(content);
    } else {
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'unsupported_parameter', param: 'input' });
      expect(model.requests).toHaveLength(0);
    }
  });

  it('a function output given as content parts: parts to a Responses upstream, its text to Chat Completions', async () => {
    model.push({ calls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, call_id: 'call_p' }] }, { text: 'ok' });
    const r1 = await client.responses.create({ model: 'm', input: 'weather?', tools: [weather] });
    const output = [
      { type: 'input_text', text: 'chart attached: ' },
      { type: 'input_file', file_id: 'file-chart' },
    ];
    await client.responses.create({ model: 'm', previous_response_id: r1.id, tools: [weather], input: [{ type: 'function_call_output', call_id: 'call_p', output: output as any }] });
    const body = sent(1);
    if (api === 'responses') expect(body.input.at(-1)).toEqual({ type: 'function_call_output', call_id: 'call_p', output });
    else expect(body.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_p', content: 'chart attached: ' });
  });

  it('one function_call_arguments.delta per upstream delta', async () => {
    const args = '{"city":"Oslo, Norway"}';
    model.push({ calls: [{ name: 'get_weather', arguments: args, call_id: 'call_w' }], pieceLength: 4 });
    const events = await sse(await post({ model: 'm', input: 'x', tools: [weather] }));
    const deltas = events.filter((e) => e.event === 'response.function_call_arguments.delta').map((e) => e.data);
    expect(deltas.map((d) => d.delta)).toEqual(args.match(/.{1,4}/g));
    const added = events.find((e) => e.event === 'response.output_item.added')!.data;
    expect(added.item).toMatchObject({ type: 'function_call', call_id: 'call_w', name: 'get_weather', arguments: '', status: 'in_progress' });
    for (const d of deltas) expect(d).toMatchObject({ item_id: added.item.id, output_index: added.output_index });
    const done = events.find((e) => e.event === 'response.function_call_arguments.done')!.data;
    expect(done.arguments).toBe(args);
    const final = events.at(-1)!.data.response;
    expect(final.output).toEqual([expect.objectContaining({ type: 'function_call', id: added.item.id, arguments: args, status: 'completed' })]);
    // The stream helper of the official SDK assembles the same.
    model.push({ calls: [{ name: 'get_weather', arguments: args }], pieceLength: 3 });
    const stream = client.responses.stream({ model: 'm', input: 'x', tools: [weather] });
    const seen: string[] = [];
    stream.on('response.function_call_arguments.delta', (e) => seen.push(e.delta));
    const r = await stream.finalResponse();
    expect(seen.join('')).toBe(args);
    expect(seen.length).toBe(Math.ceil(args.length / 3));
    expect((r.output[0] as any).arguments).toBe(args);
  });

  it('one output_text.delta per upstream delta; a refusal is its own content part', async () => {
    model.push({ text: 'Partly, but ', refusal: 'I cannot help with that.', pieceLength: 5 });
    const events = await sse(await post({ model: 'm', input: 'x' }));
    const names = events.map((e) => e.event);
    expect(events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta)).toEqual('Partly, but '.match(/.{1,5}/g));
    expect(events.filter((e) => e.event === 'response.refusal.delta').map((e) => e.data.delta).join('')).toBe('I cannot help with that.');
    const parts = events.filter((e) => e.event === 'response.content_part.added').map((e) => e.data);
    expect(parts.map((p) => [p.content_index, p.part.type])).toEqual([
      [0, 'output_text'],
      [1, 'refusal'],
    ]);
    // The text part closes before the refusal part opens.
    expect(names.indexOf('response.output_text.done')).toBeLessThan(names.lastIndexOf('response.content_part.added'));
    expect(events.find((e) => e.event === 'response.refusal.done')!.data.refusal).toBe('I cannot help with that.');
    const message = events.at(-1)!.data.response.output[0];
    expect(message.content).toEqual([
      { type: 'output_text', text: 'Partly, but ', annotations: [], logprobs: [] },
      { type: 'refusal', refusal: 'I cannot help with that.' },
    ]);
    // A Responses upstream's message id is kept.
    if (api === 'responses') expect(message.id).toBe('msg_up_0');
  });

  it('a failure mid-stream closes the open message (incomplete, text kept) before response.failed', async () => {
    model.push(api === 'responses' ? { text: 'Half an answ', failAfterText: 'overloaded', pieceLength: 4 } : { text: 'Half an answ', cutAfterText: true, pieceLength: 4 });
    const events = await sse(await post({ model: 'm', input: 'x' }));
    const names = events.map((e) => e.event);
    expect(names.slice(-4)).toEqual(['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.failed']);
    expect(events.filter((e) => e.event === 'response.output_text.delta')).toHaveLength(3);
    const item = events.at(-2)!.data.item;
    expect(item).toMatchObject({ type: 'message', status: 'incomplete', content: [{ type: 'output_text', text: 'Half an answ' }] });
    const failed = events.at(-1)!.data.response;
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'upstream_error' }, completed_at: null });
    expect(failed.output).toEqual([item]);
    if (api === 'responses') expect(failed.error.message).toContain('overloaded');
    // The stored response says the same.
    expect((await b.call('GET', `/v1/responses/${failed.id}`)).body).toMatchObject({ status: 'failed', output: [{ status: 'incomplete' }] });
  });
});

describe('reasoning summaries from a Responses upstream', () => {
  let model: FakeModel;
  let b: TestBroker;
  beforeEach(async () => {
    model = await startFakeModel();
    b = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url, UPSTREAM_API: 'responses' } }));
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
  });

  it('streams the reasoning item with its summary events, one delta per upstream delta', async () => {
    model.push({ reasoning: { id: 'rs_up', encrypted_content: 'enc', summary: 'Thinking about the question.' }, text: 'Answer.', pieceLength: 6 });
    const res = await fetch(`${b.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'o', input: 'q', stream: true, reasoning: { effort: 'low', summary: 'auto' } }),
    });
    const events = await sse(res);
    const names = events.map((e) => e.event);
    const deltas = 'Thinking about the question.'.match(/.{1,6}/g)!;
    expect(names.slice(2, 2 + 5 + deltas.length)).toEqual([
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      ...deltas.map(() => 'response.reasoning_summary_text.delta'),
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
    ]);
    expect(events[2]!.data.item).toEqual({ type: 'reasoning', id: 'rs_up', summary: [] });
    expect(events.filter((e) => e.event === 'response.reasoning_summary_text.delta').map((e) => e.data)).toEqual(
      deltas.map((delta) => expect.objectContaining({ item_id: 'rs_up', output_index: 0, summary_index: 0, delta })),
    );
    expect(events.find((e) => e.event === 'response.reasoning_summary_part.done')!.data.part).toEqual({ type: 'summary_text', text: 'Thinking about the question.' });
    const final = events.at(-1)!.data.response;
    assertResponseObject(final);
    expect(final.reasoning).toEqual({ effort: 'low', summary: 'auto' });
    expect(final.output[0]).toEqual({ type: 'reasoning', id: 'rs_up', summary: [{ type: 'summary_text', text: 'Thinking about the question.' }] });
    expect(final.output[1]).toMatchObject({ type: 'message', id: 'msg_up_1', content: [{ type: 'output_text', text: 'Answer.' }] });
  });

  it("the official SDK's stream helper follows the summary and refusal events", async () => {
    model.push({ reasoning: { id: 'rs_sdk', encrypted_content: 'enc', summary: 'Short thought.' }, text: 'Yes, ', refusal: 'but not that.', pieceLength: 4 });
    const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
    const stream = client.responses.stream({ model: 'o', input: 'q' });
    const summary: string[] = [];
    stream.on('response.reasoning_summary_text.delta', (e) => summary.push(e.delta));
    const r = await stream.finalResponse();
    expect(summary.join('')).toBe('Short thought.');
    expect(r.output[0]).toMatchObject({ type: 'reasoning', summary: [{ type: 'summary_text', text: 'Short thought.' }] });
    expect((r.output[1] as any).content).toEqual([expect.objectContaining({ type: 'output_text', text: 'Yes, ' }), expect.objectContaining({ type: 'refusal', refusal: 'but not that.' })]);
    expect(r.output_text).toBe('Yes, ');
  });
});
