import OpenAI from 'openai';
import { checkCalls, checkingFetch, checkSseEvents, expectNoSchemaProblems } from './fixtures/responseSchema.js';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, lastToolResult, type FakeModel } from './fixtures/fakeModel.js';
import { APPROVER, KEY_A, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { startReceiver, WEBHOOK_SECRET, type Reply } from './fixtures/webhookReceiver.js';

describe('Responses layer with webhook-mode approvals', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let rx: Awaited<ReturnType<typeof startReceiver>>;
  let client: OpenAI;
  const hooked = { type: 'mcp' as const, server_label: 'hooked' };

  const setup = async (replies: Reply[], wait_ms: number) => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    rx = await startReceiver(replies);
    b = checkCalls(await startBroker({
      env: { UPSTREAM_BASE_URL: model.url },
      servers: [record('hooked', mcp.url, { require_approval: 'always', approval: { mode: 'webhook', webhook_url: rx.url, webhook_secret: WEBHOOK_SECRET, wait_ms } })],
    }));
    client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0, fetch: checkingFetch });
  };
  afterEach(async () => {
    await expectNoSchemaProblems();
    await b.close();
    await rx.close();
    await model.close();
    await mcp.close();
  });

  it('approved in time: only the mcp_call (with approval_request_id) appears and the model continues', async () => {
    await setup([{ status: 200, body: { approve: true } }], 5000);
    model.push({ calls: [{ name: 'echo', arguments: { text: 'hook' } }] }, { text: 'done' });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [hooked] });
    expect(r.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
    expect((r.output[1] as any).approval_request_id).toMatch(/^mcpr_/);
    expect((r.output[1] as any).output).toBe('echo: hook');
    expect(rx.deliveries[0]!.verified).toBe(true);
  });

  it('denied in time: no mcp_call; the model is told', async () => {
    await setup([{ status: 200, body: { approve: false, reason: 'not today' } }], 5000);
    model.push({ calls: [{ name: 'echo', arguments: { text: 'hook' } }] }, { text: 'ok then' });
    const r = await client.responses.create({ model: 'm', input: 'x', tools: [hooked] });
    expect(r.output.map((i) => i.type)).toEqual(['mcp_list_tools', 'message']);
    expect(lastToolResult(model.requests[1]!.body)).toContain('not today');
    expect(mcp.counters.calls.echo).toBeUndefined();
  });

  it('still pending: the request ends the response; a follow-up runs once the approver approves', async () => {
    await setup([{ status: 202 }], 100);
    model.push({ calls: [{ name: 'echo', arguments: { text: 'later' } }] });
    const r1 = await client.responses.create({ model: 'm', input: 'x', tools: [hooked] });
    expect(r1.status).toBe('completed');
    const req = r1.output[1] as any;
    expect(req.type).toBe('mcp_approval_request');
    const follow = { model: 'm', previous_response_id: r1.id, tools: [hooked], input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }] };
    const pending = await b.call('POST', '/v1/responses', { body: follow });
    expect(pending.status).toBe(409);
    expect(pending.body.error.code).toBe('approval_pending');
    // The caller may not approve in webhook mode, but the approval service may.
    expect((await b.call('POST', `/v1/mcp/approvals/${req.id}/decision`, { body: { approve: true } })).status).toBe(403);
    expect((await b.call('POST', `/v1/mcp/approvals/${req.id}/decision`, { token: APPROVER, body: { approve: true } })).status).toBe(200);
    model.push({ text: 'finished' });
    const r2 = await client.responses.create(follow as OpenAI.Responses.ResponseCreateParamsNonStreaming);
    expect(r2.output.map((i) => i.type)).toEqual(['mcp_call', 'message']);
    expect(r2.output[0]).toMatchObject({ approval_request_id: req.id, output: 'echo: later' });
  });

  it('denied by the approver after the response ended: the follow-up tells the model', async () => {
    await setup([{ status: 202 }], 0);
    model.push({ calls: [{ name: 'echo', arguments: { text: 'later' } }] });
    const r1 = await client.responses.create({ model: 'm', input: 'x', tools: [hooked] });
    const req = r1.output[1] as any;
    await b.call('POST', `/v1/mcp/approvals/${req.id}/decision`, { token: APPROVER, body: { approve: false, reason: 'policy' } });
    model.push({ text: 'ok' });
    const r2 = await client.responses.create({
      model: 'm',
      previous_response_id: r1.id,
      tools: [hooked],
      input: [{ type: 'mcp_approval_response', approval_request_id: req.id, approve: true }],
    });
    expect(r2.output.map((i) => i.type)).toEqual(['message']);
    expect(lastToolResult(model.requests[1]!.body)).toContain('policy');
    expect(mcp.counters.calls.echo).toBeUndefined();
  });
});
