import OpenAI from 'openai';
import { checkCalls, checkingFetch, checkSseEvents, expectNoSchemaProblems } from './fixtures/responseSchema.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, lastToolResult, type FakeModel } from './fixtures/fakeModel.js';
import { APPROVER, KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';

describe('POST /v1/responses (Chat Completions upstream)', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let client: OpenAI;
  const fx = { type: 'mcp' as const, server_label: 'fx', require_approval: 'never' as const };

  beforeEach(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    b = checkCalls(await startBroker({
      env: { UPSTREAM_BASE_URL: model.url, UPSTREAM_API_KEY: 'upstream-secret-key', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true' },
      servers: [record('fx', mcp.url, { headers: { 'X-Record-Secret': 'record-header-secret' } }), record('gated', mcp.url, { require_approval: 'always' })],
    }));
    client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
  });
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await model.close();
    await mcp.close();
  });

  it('lists, calls a tool, and answers; the model sees tools as functions and nothing secret', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'ping' } }] }, { text: 'The tool said echo: ping' });
    const r = await client.responses.create({
      model: 'm1',
      input: 'use the tool',
      tools: [{ ...fx, headers: { 'X-Caller-Secret': 'caller-header-secret' }, authorization: 'caller-oauth-secret' }],
    });
    expect(r.status).toBe('completed');
    expect(r.id).toMatch(/^resp_/);
    expect(r.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
    const call = r.output[1] as any;
    expect(call).toMatchObject({ type: 'mcp_call', server_label: 'fx', name: 'echo', arguments: '{"text":"ping"}', output: 'echo: ping', error: null, approval_request_id: null, status: 'completed' });
    expect(r.output_text).toBe('The tool said echo: ping');
    expect(r.usage).toMatchObject({ input_tokens: 20, output_tokens: 10, total_tokens: 30 });
    expect(r.tools[0]).toEqual({
      type: 'mcp',
      server_label: 'fx',
      server_url: null,
      server_description: null,
      allowed_tools: null,
      require_approval: 'never',
      headers: null,
      authorization: '<redacted>',
      connector_id: null,
    });

    expect(model.requests).toHaveLength(2);
    const first = model.requests[0]!.body;
    expect(first.tools.map((t: any) => t.function.name)).toEqual(expect.arrayContaining(['echo', 'add']));
    expect(first.tools[0].type).toBe('function');
    expect(lastToolResult(model.requests[1]!.body)).toBe('echo: ping');
    const everything = JSON.stringify(model.requests);
    for (const secret of [mcp.url, String(mcp.port), 'record-header-secret', 'caller-header-secret', 'caller-oauth-secret', KEY_A]) {
      expect(everything).not.toContain(secret);
    }
    expect(model.requests[0]!.headers.authorization).toBe('Bearer upstream-secret-key');
  });

  it('a second turn via previous_response_id reuses the listing (no tools/list upstream)', async () => {
    model.push({ text: 'first' }, { calls: [{ name: 'add', arguments: { a: 1, b: 2 } }] }, { text: 'three' });
    const r1 = await client.responses.create({ model: 'm', input: 'hi', tools: [fx] });
    expect(mcp.counters.list).toBe(1);
    const r2 = await client.responses.create({ model: 'm', input: 'add', tools: [fx], previous_response_id: r1.id });
    expect(r2.output.map((i) => i.type)).toEqual(['mcp_call', 'message']);
    expect(mcp.counters.list).toBe(1);
    expect(r2.previous_response_id).toBe(r1.id);
    // The model saw the whole conversation.
    const msgs = model.requests[1]!.body.messages;
    expect(msgs.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user']);
  });

  it('runs an inline server and echoes only its origin', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'inline' } }] }, { text: 'ok' });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'inl', server_url: mcp.url, require_approval: 'never' }] });
    expect((r.output[1] as any).output).toBe('echo: inline');
    expect((r.tools[0] as any).server_url).toBe(new URL(mcp.url).origin);
  });

  it('approval: request → completed response; approve → the stored call runs first', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'gated' }, call_id: 'call_gate' }] });
    const gated = { type: 'mcp' as const, server_label: 'gated' };
    const r1 = await client.responses.create({ model: 'm', input: 'do it', tools: [gated] });
    expect(r1.status).toBe('completed');
    expect(r1.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_approval_request']);
    const req = r1.output[1] as any;
    expect(req).toEqual({ id: expect.stringMatching(/^mcpr_/), type: 'mcp_approval_request', server_label: 'gated', name: 'echo', arguments: '{"text":"gated"}' });
    expect((r1.tools[0] as any).require_approval).toBe('always');
    expect(mcp.counters.calls.echo).toBeUndefined();

    model.fallback = () => ({ text: 'done' });
    const before = model.requests.length;
    const r2 = await client.responses.create({
      model: 'm',
      previous_response_id: r1.id,
      tools: [gated],
      input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }],
    });
    expect(r2.output.map((i) => i.type)).toEqual(['mcp_call', 'message']);
    expect(r2.output[0]).toMatchObject({ approval_request_id: req.id, output: 'echo: gated', status: 'completed' });
    expect(mcp.counters.calls.echo).toBe(1);
    // Exactly one upstream call, made after the tool ran, answering the model's own call id.
    expect(model.requests.length).toBe(before + 1);
    const msgs = model.requests[before]!.body.messages;
    const assistant = msgs.find((m: any) => m.tool_calls);
    expect(assistant.tool_calls[0].id).toBe('call_gate');
    expect(msgs.find((m: any) => m.role === 'tool')).toMatchObject({ tool_call_id: 'call_gate', content: 'echo: gated' });

    // The same approval cannot run twice.
    const again = await b.call('POST', '/v1/responses', {
      body: { model: 'm', previous_response_id: r1.id, tools: [gated], input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }] },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('approval_already_used');
  });

  it('approval denied: no mcp_call; the model is told, with the reason', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'no' } }] }, { text: 'understood' });
    const gated = { type: 'mcp' as const, server_label: 'gated' };
    const r1 = await client.responses.create({ model: 'm', input: 'do it', tools: [gated] });
    const id = (r1.output[1] as any).id;
    const r2 = await client.responses.create({
      model: 'm',
      previous_response_id: r1.id,
      tools: [gated],
      input: [{ type: 'mcp_approval_response', approval_request_id: id, approve: false, reason: 'too risky' } as any],
    });
    expect(r2.output.map((i) => i.type)).toEqual(['message']);
    expect(mcp.counters.calls.echo).toBeUndefined();
    expect(lastToolResult(model.requests[1]!.body)).toContain('too risky');
    expect(lastToolResult(model.requests[1]!.body)).toContain('denied');
    expect((await b.call('GET', `/v1/mcp/approvals/${id}`)).body.status).toBe('denied');
  });

  it('stateless approval: replayed items, and the duplicate/orphan 400s', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'st' } }] });
    const gated = { type: 'mcp' as const, server_label: 'gated' };
    const r1 = await client.responses.create({ model: 'm', input: 'go', tools: [gated], store: false });
    const [listing, req] = r1.output as any[];
    expect((await b.call('GET', `/v1/responses/${r1.id}`)).status).toBe(404);

    model.fallback = () => ({ text: 'ok' });
    const r2 = await client.responses.create({
      model: 'm',
      tools: [gated],
      input: [{ role: 'user', content: 'go' }, listing, req, { type: 'mcp_approval_response', approval_request_id: req.id, approve: true }],
    });
    expect(r2.output.map((i) => i.type)).toEqual(['mcp_call', 'message']); // listing reused from input
    expect(mcp.counters.calls.echo).toBe(1);

    const orphan = await b.call('POST', '/v1/responses', {
      body: { model: 'm', tools: [gated], input: [{ type: 'mcp_approval_response', approval_request_id: 'mcpr_unknown', approve: true }] },
    });
    expect(orphan.status).toBe(400);
    expect(orphan.body.error.message).toContain('mcpr_unknown');

    model.push({ calls: [{ name: 'echo', arguments: { text: 'dup' } }] });
    const r3 = await client.responses.create({ model: 'm', input: 'again', tools: [gated] });
    const req3 = r3.output[1] as any;
    const dup = await b.call('POST', '/v1/responses', {
      body: { model: 'm', previous_response_id: r3.id, tools: [gated], input: [req3, { type: 'mcp_approval_response', approval_request_id: req3.id, approve: true }] },
    });
    expect(dup.status).toBe(400);
    expect(dup.body.error.message).toBe(`Duplicate item found with id ${req3.id}.`);

    // A forged approval request (never issued to this key) is refused.
    const forged = await b.call('POST', '/v1/responses', {
      body: { model: 'm', tools: [gated], input: [{ ...req3, id: 'mcpr_forged' }, { type: 'mcp_approval_response', approval_request_id: 'mcpr_forged', approve: true }] },
    });
    expect(forged.status).toBe(400);
    const otherKey = await b.call('POST', '/v1/responses', {
      token: KEY_B,
      body: { model: 'm', tools: [gated], input: [req3, { type: 'mcp_approval_response', approval_request_id: req3.id, approve: true }] },
    });
    expect(otherKey.status).toBe(400);
    expect(mcp.counters.calls.echo).toBe(1);
  });

  it('a function tool ends the response with a function_call; its output continues', async () => {
    model.push({ calls: [{ name: 'get_weather', arguments: { city: 'Oslo' }, call_id: 'call_w' }] }, { text: 'It is cold.' });
    const weather = { type: 'function' as const, name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false };
    const r1 = await client.responses.create({ model: 'm', input: 'weather?', tools: [fx, weather] });
    expect(r1.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'function_call']);
    expect(r1.output[1]).toMatchObject({ type: 'function_call', call_id: 'call_w', name: 'get_weather', arguments: '{"city":"Oslo"}' });
    const r2 = await client.responses.create({ model: 'm', previous_response_id: r1.id, tools: [fx, weather], input: [{ type: 'function_call_output', call_id: 'call_w', output: '-5C' }] });
    expect(r2.output_text).toBe('It is cold.');
    expect(model.requests[1]!.body.messages.at(-1)).toEqual({ role: 'tool', tool_call_id: 'call_w', content: '-5C' });
  });

  it('a tool failure reaches the model and the response completes', async () => {
    model.push({ calls: [{ name: 'fail', arguments: {} }] }, { text: 'the tool failed' });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [fx] });
    expect(r.status).toBe('completed');
    expect(r.output[1]).toMatchObject({ type: 'mcp_call', status: 'failed', output: null, error: { type: 'mcp_tool_execution_error' } });
    expect(lastToolResult(model.requests[1]!.body)).toContain('it broke');
  });

  it('parallel tool calls in one turn run concurrently', async () => {
    model.push({ calls: [{ name: 'slow', arguments: { ms: 400 } }, { name: 'slow', arguments: { ms: 400 } }, { name: 'slow', arguments: { ms: 400 } }] }, { text: 'done' });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [fx] });
    expect(r.output.filter((i) => i.type === 'mcp_call')).toHaveLength(3);
    expect(mcp.counters.peakSlow).toBe(3); // all three were running at once
  });

  it('max_tool_calls: further calls are not run and the model is told', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: '1' } }, { name: 'echo', arguments: { text: '2' } }] }, { text: 'ok' });
    // openai@6.49's types lack max_tool_calls; the wire field is what matters.
    const body = { model: 'm', input: 'x', tools: [fx], max_tool_calls: 1 } as OpenAI.Responses.ResponseCreateParamsNonStreaming;
    const r = await client.responses.create(body);
    expect(r.output.filter((i) => i.type === 'mcp_call')).toHaveLength(1);
    expect(mcp.counters.calls.echo).toBe(1);
    expect(JSON.stringify(model.requests[1]!.body.messages)).toContain('max_tool_calls');
  });

  it('a listing failure fails the whole request with 424', async () => {
    const r = await b.call('POST', '/v1/responses', {
      body: { model: 'm', input: 'x', tools: [fx, { type: 'mcp', server_label: 'down', server_url: 'http://127.0.0.1:1/mcp', require_approval: 'never' }] },
    });
    expect(r.status).toBe(424);
    expect(r.body.error).toMatchObject({ type: 'external_connector_error', param: 'tools' });
    expect(r.body.error.message).toMatch(/^Error retrieving tool list from MCP server: 'down'\./);
    expect(model.requests).toHaveLength(0);
  });

  it.each([
    [{ model: 'm', input: 'x', tools: [{ type: 'web_search' }] }, 400, 'unsupported_tool_type', 'tools[0].type'],
    [{ model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'ghost' }] }, 400, 'unknown_server_label', 'tools[0].server_label'],
    [{ model: 'm', input: 'x', tools: [fx, fx] }, 400, 'invalid_value', 'tools[1].server_label'],
    [{ model: 'm', input: 'x', previous_response_id: 'resp_nope' }, 400, 'previous_response_not_found', 'previous_response_id'],
    [{ input: 'x' }, 400, 'missing_required_parameter', 'model'],
    [{ model: 'm', input: [{ type: 'mcp_call', id: 'mcp_1', server_label: 'fx', name: 'x', arguments: '{}', error: 'a string' }] }, 400, 'invalid_value', 'input[0].error'],
    [{ model: 'm', input: 'x', tools: [{ type: 'mcp', server_label: 'fx', server_url: 'https://x.example' }] }, 400, 'server_label_conflict', 'tools[0].server_url'],
  ])('bad request %#', async (body, status, code, param) => {
    const r = await b.call('POST', '/v1/responses', { body });
    expect(r.status).toBe(status);
    expect(r.body.error).toMatchObject({ code, param });
  });

  it('maps upstream errors: 400 → 400, 401 → 502, 429 → 429, 500 → 502', async () => {
    model.push({ status: 400, message: 'bad model input' }, { status: 401 }, { status: 429, headers: { 'retry-after': '7' } }, { status: 500 });
    const r400 = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
    expect(r400.status).toBe(400);
    expect(r400.body.error.message).toBe('bad model input');
    const r401 = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
    expect(r401.status).toBe(502);
    expect(r401.body.error).toMatchObject({ type: 'server_error', code: 'upstream_error' });
    const r429 = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
    expect(r429.status).toBe(429);
    expect(r429.headers.get('retry-after')).toBe('7');
    const r500 = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
    expect(r500.status).toBe(502);
  });

  it('a failure after a tool ran carries x-should-retry: false', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'side effect' } }] }, { status: 500 });
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [fx] } });
    expect(r.status).toBe(502);
    expect(r.headers.get('x-should-retry')).toBe('false');
  });

  it('GET, input_items and DELETE belong to the creating key', async () => {
    const r = await client.responses.create({ model: 'm', input: [{ role: 'user', content: 'one' }, { role: 'user', content: 'two' }], metadata: { k: 'v' } });
    const got = await client.responses.retrieve(r.id);
    expect(got).toMatchObject({ id: r.id, status: 'completed', metadata: { k: 'v' } });
    const items = await b.call('GET', `/v1/responses/${r.id}/input_items?limit=1`);
    expect(items.body).toMatchObject({ object: 'list', has_more: true, data: [{ type: 'message', role: 'user', content: 'two' }] });
    const asc = await b.call('GET', `/v1/responses/${r.id}/input_items?order=asc`);
    expect(asc.body.data.map((i: any) => i.content)).toEqual(['one', 'two']);
    expect(asc.body.first_id).toBe(asc.body.data[0].id);
    const after = await b.call('GET', `/v1/responses/${r.id}/input_items?order=asc&after=${asc.body.first_id}`);
    expect(after.body.data.map((i: any) => i.content)).toEqual(['two']);
    expect((await b.call('GET', `/v1/responses/${r.id}`, { token: KEY_B })).status).toBe(404);
    expect((await b.call('DELETE', `/v1/responses/${r.id}`, { token: KEY_B })).status).toBe(404);
    const prev = await b.call('POST', '/v1/responses', { token: KEY_B, body: { model: 'm', input: 'x', previous_response_id: r.id } });
    expect(prev.status).toBe(400);
    expect(prev.body.error.code).toBe('previous_response_not_found');
    const del = await b.call('DELETE', `/v1/responses/${r.id}`);
    expect(del.body).toEqual({ id: r.id, object: 'response.deleted', deleted: true });
    expect((await b.call('GET', `/v1/responses/${r.id}`)).status).toBe(404);
  });

  it('text.format and reasoning.effort reach a Chat Completions upstream as response_format and reasoning_effort', async () => {
    const schema = { type: 'object', properties: { n: { type: 'number' } }, required: ['n'], additionalProperties: false };
    await b.call('POST', '/v1/responses', {
      body: { model: 'm', input: 'x', text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } }, reasoning: { effort: 'low' } },
    });
    expect(model.requests[0]!.body.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } });
    expect(model.requests[0]!.body.reasoning_effort).toBe('low');
  });

  it('caller reasoning items are dropped for a Chat Completions upstream', async () => {
    await b.call('POST', '/v1/responses', { body: { model: 'm', input: [{ type: 'reasoning', id: 'rs_x', summary: [], encrypted_content: 'enc' }, { role: 'user', content: 'hi' }] } });
    expect(model.requests[0]!.body.messages).toEqual([{ role: 'user', content: 'hi' }]);
  });

  it('tool_choice {type:"mcp"} forces that server\'s tool on the first turn', async () => {
    model.push({ calls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: 'ok' });
    const r = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [fx], tool_choice: { type: 'mcp', server_label: 'fx', name: 'add' } } });
    expect(r.status).toBe(200);
    expect(model.requests[0]!.body.tool_choice).toEqual({ type: 'function', function: { name: 'add' } });
    expect(model.requests[1]!.body.tool_choice).toBe('auto');
    const bad = await b.call('POST', '/v1/responses', { body: { model: 'm', input: 'x', tools: [fx], tool_choice: { type: 'mcp', server_label: 'fx', name: 'nope' } } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.param).toBe('tool_choice');
  });

  it('without UPSTREAM_BASE_URL: 503 upstream_not_configured', async () => {
    const bare = checkCalls(await startBroker());
    try {
      const r = await bare.call('POST', '/v1/responses', { body: { model: 'm', input: 'x' } });
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe('upstream_not_configured');
    } finally {
      await bare.close();
    }
  });
});
