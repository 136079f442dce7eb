import OpenAI from 'openai';
import { checkCalls, checkingFetch, checkSseEvents, expectNoSchemaProblems } from './fixtures/responseSchema.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { readSse } from './fixtures/sse.js';

const sse = async (res: Response) => checkSseEvents(await readSse(res));

describe('streaming responses', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  const fx = { type: 'mcp', server_label: 'fx', require_approval: 'never' };

  beforeEach(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url }, servers: [record('fx', mcp.url), record('gated', mcp.url, { require_approval: 'always' })] }));
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
    await mcp.close();
  });

  const post = (body: object) =>
    fetch(`${b.url}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' }, body: JSON.stringify({ stream: true, ...body }) });

  it('emits the exact wire sequence for list → call → answer', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'hi' } }] }, { text: 'Answer text here' });
    const res = await post({ model: 'm', input: 'x', tools: [fx] });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = await sse(res);
    const names = events.map((e) => e.event);
    expect(names).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.mcp_list_tools.in_progress',
      'response.mcp_list_tools.completed',
      'response.output_item.done',
      'response.output_item.added',
      'response.mcp_call.in_progress',
      'response.mcp_call_arguments.delta',
      'response.mcp_call_arguments.done',
      'response.mcp_call.completed',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.completed',
    ]);
    events.forEach((e, i) => {
      expect(e.data.type).toBe(e.event);
      expect(e.data.sequence_number).toBe(i);
    });
    const byName = (n: string) => events.filter((e) => e.event === n).map((e) => e.data);
    expect(byName('response.created')[0].response).toMatchObject({ status: 'in_progress', output: [], usage: null });
    const added = byName('response.output_item.added');
    expect(added[0]).toMatchObject({ output_index: 0, item: { type: 'mcp_list_tools', tools: [] } });
    expect(added[1]).toMatchObject({ output_index: 1, item: { type: 'mcp_call', arguments: '', output: null, error: null, status: 'in_progress' } });
    expect(added[2]).toMatchObject({ output_index: 2, item: { type: 'message', status: 'in_progress', content: [] } });
    const callId = added[1].item.id;
    expect(byName('response.mcp_call_arguments.delta')[0]).toMatchObject({ item_id: callId, output_index: 1, delta: '{"text":"hi"}' });
    expect(byName('response.mcp_call_arguments.done')[0]).toMatchObject({ item_id: callId, arguments: '{"text":"hi"}' });
    for (const e of byName('response.mcp_call.in_progress').concat(byName('response.mcp_list_tools.completed'))) expect(e.item).toBeUndefined();
    const done = byName('response.output_item.done');
    expect(done[1].item).toMatchObject({ id: callId, output: 'echo: hi', status: 'completed' });
    expect(byName('response.output_text.delta').map((d) => d.delta).join('')).toBe('Answer text here');
    expect(byName('response.output_text.delta')[0]).toMatchObject({ content_index: 0, output_index: 2, logprobs: [] });
    expect(byName('response.content_part.done')[0].part).toEqual({ type: 'output_text', annotations: [], logprobs: [], text: 'Answer text here' });
    const completed = byName('response.completed')[0].response;
    expect(completed.status).toBe('completed');
    expect(completed.output).toHaveLength(3);
    expect(completed.usage.total_tokens).toBe(30);
  });

  it('an approval request ends a completed stream with only added/done for it', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'x' } }] });
    const events = await sse(await post({ model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'gated' }] }));
    expect(events.map((e) => e.event).slice(6)).toEqual(['response.output_item.added', 'response.output_item.done', 'response.completed']);
    expect(events[6]!.data.item.type).toBe('mcp_approval_request');
    expect(events.at(-1)!.data.response.status).toBe('completed');
  });

  it("works with the official SDK's stream helper", async () => {
    model.push({ calls: [{ name: 'add', arguments: { a: 2, b: 2 } }] }, { text: 'four' });
    const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
    const stream = client.responses.stream({ model: 'm', input: 'x', tools: [fx as OpenAI.Responses.Tool] });
    const deltas: string[] = [];
    stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(final.output_text).toBe('four');
    expect(deltas.join('')).toBe('four');
    expect(final.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
  });

  it('an upstream failure after streaming began ends with response.failed', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'x' } }] }, { status: 500 });
    const events = await sse(await post({ model: 'm', input: 'x', tools: [fx] }));
    const last = events.at(-1)!;
    expect(last.event).toBe('response.failed');
    expect(last.data.response).toMatchObject({ status: 'failed', error: { code: 'upstream_error' } });
  });

  it('a refused caller URL is a 400 before any event', async () => {
    // (Not port 1: fetch itself refuses the WHATWG "bad ports".)
    const res = await post({ model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'nope', server_url: 'https://127.0.0.1:2/mcp', require_approval: 'never' }] });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'egress_denied', param: 'tools[0].server_url' });
  });

  it('a listing failure is a 424 before any event', async () => {
    await mcp.stop();
    const res = await post({ model: 'm', input: 'x', tools: [fx] });
    expect(res.status).toBe(424);
    expect((await res.json()).error.type).toBe('external_connector_error');
    await mcp.start();
  });

  it('sends keep-alive comments during a long tool call', async () => {
    const slowBroker = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url }, servers: [record('fx', mcp.url)], tuning: { sseKeepAliveMs: 100 } }));
    try {
      model.push({ calls: [{ name: 'slow', arguments: { ms: 600 } }] }, { text: 'done' });
      const res = await fetch(`${slowBroker.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
        body: JSON.stringify({ stream: true, model: 'm', input: 'x', tools: [fx] }),
      });
      const text = await res.text();
      const between = text.slice(text.indexOf('response.mcp_call_arguments.done'), text.indexOf('response.mcp_call.completed'));
      expect(between).toContain(': keep-alive\n\n');
      expect(text).toContain('event: response.completed');
    } finally {
      await slowBroker.close();
    }
  });

  it('a client disconnect aborts the MCP call and the upstream', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 20000 } }] });
    const ac = new AbortController();
    const res = await fetch(`${b.url}/v1/responses`, {
      method: 'POST',
      signal: ac.signal,
      headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
      body: JSON.stringify({ stream: true, model: 'm', input: 'x', tools: [fx] }),
    });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('response.mcp_call.in_progress')) seen += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    // The broker gives up on the call: no further model turn is requested.
    const end = Date.now() + 5000;
    while (mcp.counters.cancelled === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    expect(mcp.counters.cancelled).toBe(1);
    expect(model.requests).toHaveLength(1);
    const health = await fetch(`${b.url}/healthz`);
    expect(health.status).toBe(200);
  });
});

describe('Responses upstream: reasoning persists across tool calls and turns', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let client: OpenAI;
  beforeEach(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = checkCalls(await startBroker({ env: { UPSTREAM_BASE_URL: model.url, UPSTREAM_API: 'responses' }, servers: [record('fx', mcp.url), record('gated', mcp.url, { require_approval: 'always' })] }));
    client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
    await mcp.close();
  });

  it('sends every reasoning item back, in place, with store:false and include', async () => {
    model.push(
      { reasoning: { id: 'rs_1', encrypted_content: 'enc-1', summary: 'thinking' }, calls: [{ name: 'echo', arguments: { text: 'r' }, call_id: 'call_r1' }], usage: { input: 10, output: 5, cached: 2, reasoning: 3 } },
      { reasoning: { id: 'rs_2', encrypted_content: 'enc-2' }, text: 'first answer', usage: { input: 20, output: 6, cached: 4, reasoning: 1 } },
    );
    const fx = { type: 'mcp' as const, server_label: 'fx', require_approval: 'never' as const };
    const r1 = await client.responses.create({ model: 'o', input: 'q1', tools: [fx] });
    expect(r1.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'reasoning', 'mcp_call', 'reasoning', 'message']);
    expect((r1.output[1] as any).encrypted_content).toBeUndefined();
    expect(r1.usage).toMatchObject({ input_tokens: 30, output_tokens: 11, input_tokens_details: { cached_tokens: 6 }, output_tokens_details: { reasoning_tokens: 4 } });

    const second = model.requests[1]!.body;
    expect(second.store).toBe(false);
    expect(second.include).toEqual(['reasoning.encrypted_content']);
    expect(second.input.map((i: any) => i.type)).toEqual(['message', 'reasoning', 'function_call', 'function_call_output']);
    expect(second.input[1]).toMatchObject({ id: 'rs_1', encrypted_content: 'enc-1' });
    expect(second.input[2]).toMatchObject({ call_id: 'call_r1', name: 'echo' });
    expect(second.input[3]).toMatchObject({ call_id: 'call_r1', output: 'echo: r' });

    model.push({ text: 'second answer' });
    await client.responses.create({ model: 'o', input: 'q2', tools: [fx], previous_response_id: r1.id });
    const third = model.requests[2]!.body;
    expect(third.input.map((i: any) => i.type)).toEqual(['message', 'reasoning', 'function_call', 'function_call_output', 'reasoning', 'message', 'message']);
    expect(third.input[4]).toMatchObject({ id: 'rs_2', encrypted_content: 'enc-2' });
  });

  it('keeps reasoning across an approval, and shows encrypted_content only when included', async () => {
    model.push({ reasoning: { id: 'rs_a', encrypted_content: 'enc-a' }, calls: [{ name: 'echo', arguments: { text: 'g' }, call_id: 'call_g' }] });
    const gated = { type: 'mcp' as const, server_label: 'gated' };
    const r1 = await client.responses.create({ model: 'o', input: 'go', tools: [gated], include: ['reasoning.encrypted_content'] });
    expect(r1.output[1]).toMatchObject({ type: 'reasoning', id: 'rs_a', encrypted_content: 'enc-a' });
    const req = r1.output[2] as any;
    model.push({ text: 'done' });
    await client.responses.create({ model: 'o', previous_response_id: r1.id, tools: [gated], input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }] });
    const after = model.requests[1]!.body.input;
    expect(after.map((i: any) => i.type)).toEqual(['message', 'reasoning', 'function_call', 'function_call_output']);
    expect(after[1]).toMatchObject({ id: 'rs_a', encrypted_content: 'enc-a' });
    expect(after[2]).toMatchObject({ call_id: 'call_g', id: 'fc_up_0' });
    expect(after[3]).toMatchObject({ call_id: 'call_g', output: 'echo: g' });
  });

  it('caller reasoning items go to a Responses upstream as they are', async () => {
    model.push({ text: 'ok' });
    await b.call('POST', '/v1/responses', {
      body: { model: 'o', input: [{ type: 'reasoning', id: 'rs_c', summary: [], encrypted_content: 'enc-c' }, { role: 'user', content: 'hi' }] },
    });
    expect(model.requests[0]!.body.input[0]).toMatchObject({ type: 'reasoning', id: 'rs_c', encrypted_content: 'enc-c' });
  });
});
