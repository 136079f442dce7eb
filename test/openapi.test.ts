import SwaggerParser from '@apidevtools/swagger-parser';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, APPROVER, KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';
import { OPERATIONS } from '../src/http/openapi.js';
import { driveAuthorization, startAuthServer, type AuthServer } from './fixtures/authServer.js';
import { startOAuthMcpServer, type OAuthMcpServer } from './fixtures/oauthMcpServer.js';
import { randomBytes } from 'node:crypto';

type Doc = { openapi: string; paths: Record<string, Record<string, any>>; components: { schemas: Record<string, unknown> } };
const DOC_ID = 'https://mcp-broker.test/openapi.json';

/** Real answers of the running broker checked against the document it serves. */
describe('GET /openapi.json', () => {
  let mcp: McpFixture;
  let model: FakeModel;
  let b: TestBroker;
  let as: AuthServer;
  let oauthMcp: OAuthMcpServer;
  let doc: Doc;
  let ajv: Ajv2020;
  const validators = new Map<string, ValidateFunction>();
  /** `${method} ${path} ${status}` of every answer checked. */
  const seen = new Set<string>();

  beforeAll(async () => {
    mcp = await startMcpFixture();
    model = await startFakeModel();
    as = await startAuthServer();
    oauthMcp = await startOAuthMcpServer({ issuer: as.issuer });
    b = await startBroker({
      // An https public URL serves the client metadata document; the test plays the browser for the callback.
      env: { UPSTREAM_BASE_URL: model.url, BROKER_MAX_BODY_BYTES: '65536', BROKER_SECRET_KEY: randomBytes(32).toString('base64'), BROKER_PUBLIC_URL: 'https://broker.test' },
      servers: [
        record('fx', mcp.url, { transport: 'streamable_http' }),
        record('gated', mcp.url, { transport: 'streamable_http', require_approval: 'always' }),
        record('dead', 'http://127.0.0.1:9/mcp', { transport: 'streamable_http' }),
        record('code', oauthMcp.url, { oauth: { grant: 'authorization_code' } }),
      ],
    });
    const r = await b.call('GET', '/openapi.json', { token: null });
    expect(r.status).toBe(200);
    doc = r.body;
    ajv = new Ajv2020({ strict: false, allErrors: true });
    ajv.addSchema({ $id: DOC_ID, components: doc.components });
  });
  afterAll(async () => {
    await b?.close();
    await mcp?.close();
    await model?.close();
    await oauthMcp?.close();
    await as?.close();
  });

  /** The operation's schema for `status`, its $refs pointed into the document. */
  function validatorFor(method: string, path: string, status: number): ValidateFunction {
    const key = `${method} ${path} ${status}`;
    let v = validators.get(key);
    if (!v) {
      const op = doc.paths[path]?.[method];
      if (!op) throw new Error(`${method.toUpperCase()} ${path} is not in the document`);
      const schema = op.responses[String(status)]?.content?.['application/json']?.schema;
      if (!schema) throw new Error(`${method.toUpperCase()} ${path} does not document status ${status}`);
      v = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`)));
      validators.set(key, v);
    }
    return v;
  }

  /** Sends a request and checks the answer's body against the document. */
  async function check(method: string, template: string, actual: string, o: Parameters<TestBroker['call']>[2] = {}, expected?: number) {
    const r = await b.call(method.toUpperCase(), actual, o);
    if (expected !== undefined) expect({ status: r.status, body: r.body }).toMatchObject({ status: expected });
    const v = validatorFor(method, template, r.status);
    if (!v(r.body)) throw new Error(`${method.toUpperCase()} ${actual} → ${r.status} does not match the document: ${ajv.errorsText(v.errors)}\n${JSON.stringify(r.body).slice(0, 800)}`);
    seen.add(`${method} ${template} ${r.status}`);
    return r;
  }

  it('is a valid OpenAPI 3.1 document (swagger-parser)', async () => {
    expect(doc.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('documents every route, each with a success and the shared error body', () => {
    const expected = [
      'get /healthz', 'get /readyz', 'get /metrics', 'get /openapi.json',
      'get /admin/servers', 'post /admin/servers', 'get /admin/servers/{label}', 'put /admin/servers/{label}', 'delete /admin/servers/{label}', 'post /admin/servers/{label}/refresh',
      'post /v1/mcp/list_tools', 'post /v1/mcp/call',
      'get /v1/mcp/approvals', 'get /v1/mcp/approvals/{id}', 'post /v1/mcp/approvals/{id}/decision',
      'post /v1/responses', 'get /v1/responses/{id}', 'delete /v1/responses/{id}', 'get /v1/responses/{id}/input_items', 'post /v1/responses/{id}/cancel',
      'get /admin/keys', 'post /admin/keys', 'get /admin/keys/{name}', 'put /admin/keys/{name}', 'delete /admin/keys/{name}', 'post /admin/keys/{name}/rotate',
      'post /admin/servers/{label}/oauth/authorize', 'get /oauth/callback', 'get /oauth/client-metadata.json',
      'get /console', 'get /console/{path}', 'get /admin/servers/{label}/tools',
    ];
    const documented = Object.entries(doc.paths).flatMap(([p, ms]) => Object.keys(ms).map((m) => `${m} ${p}`));
    for (const e of expected) expect(documented).toContain(e);
    for (const [, ms] of Object.entries(doc.paths)) {
      for (const op of Object.values(ms)) {
        const statuses = Object.keys(op.responses);
        expect(statuses.some((s) => s.startsWith('2'))).toBe(true);
        for (const s of statuses.filter((x) => Number(x) >= 400)) expect(op.responses[s].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/Error' });
      }
    }
    // The items come from src/broker/items.ts.
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['McpListToolsItem', 'McpCallItem', 'McpApprovalRequestItem', 'Error']));
    expect((doc.components.schemas.McpCallItem as any).properties.type).toEqual({ type: 'string', const: 'mcp_call' });
    // The answer schemas are strict enough to catch drift.
    const call = validatorFor('post', '/v1/mcp/call', 200);
    expect(call({ id: 'mcp_1', type: 'mcp_call', server_label: 'fx', name: 'echo', arguments: '{}', output: 'x' })).toBe(true);
    expect(call({ id: 'mcp_1', type: 'mcp_call', server_label: 'fx', name: 'echo' })).toBe(false);
    expect(call({ id: 'mcp_1', type: 'mcp_call', server_label: 'fx', name: 'echo', arguments: '{}', surprise: 1 })).toBe(false);
    const err = validatorFor('get', '/admin/servers', 401);
    expect(err({ error: { message: 'm', type: 't', param: null, code: null } })).toBe(true);
    expect(err({ message: 'm' })).toBe(false);
  });

  it('request schemas are the validating zod schemas: a body the document refuses, the route refuses too', async () => {
    const call = doc.paths['/v1/mcp/call']!.post.requestBody.content['application/json'].schema;
    const v = ajv.compile(JSON.parse(JSON.stringify(call).replaceAll('"#/components/', `"${DOC_ID}#/components/`)));
    expect(v({ tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: '{}' })).toBe(true);
    expect(v({ tool: { type: 'mcp', server_label: 'no spaces' }, name: 'echo' })).toBe(false);
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'no spaces' }, name: 'echo' } });
    expect(r.status).toBe(400);
    expect(r.body.error.param).toBe('tool.server_label');
  });

  it('operations answer as documented', async () => {
    await check('get', '/healthz', '/healthz', { token: null }, 200);
    await check('get', '/readyz', '/readyz', { token: null }, 200);
    b.instance.readiness.draining = true;
    await check('get', '/readyz', '/readyz', { token: null }, 503);
    b.instance.readiness.draining = false;
    const m = await b.call('GET', '/metrics', { token: null });
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(Object.keys(doc.paths['/metrics']!.get.responses['200'].content)).toEqual(['text/plain']);
    await check('get', '/openapi.json', '/openapi.json', { token: null }, 200);
  });

  it('admin routes answer as documented', async () => {
    await check('get', '/admin/servers', '/admin/servers', { token: ADMIN }, 200);
    await check('get', '/admin/servers', '/admin/servers', { token: KEY_A }, 401);
    const extra = record('extra', mcp.url, { headers: { 'x-team': 'blue' } });
    await check('post', '/admin/servers', '/admin/servers', { token: ADMIN, body: extra }, 201);
    await check('post', '/admin/servers', '/admin/servers', { token: ADMIN, body: extra }, 409);
    await check('post', '/admin/servers', '/admin/servers', { token: ADMIN, body: { server_label: 'x' } }, 400);
    await check('post', '/admin/servers', '/admin/servers', { token: ADMIN, body: { ...extra, server_description: 'x'.repeat(70_000) } }, 413);
    await check('get', '/admin/servers/{label}', '/admin/servers/fx', { token: ADMIN }, 200);
    await check('get', '/admin/servers/{label}', '/admin/servers/nope', { token: ADMIN }, 404);
    await check('put', '/admin/servers/{label}', '/admin/servers/extra', { token: ADMIN, body: { server_url: mcp.url, allow_private_network: true } }, 200);
    await check('put', '/admin/servers/{label}', '/admin/servers/extra', { token: ADMIN, body: { server_label: 'other', server_url: mcp.url } }, 400);
    await check('put', '/admin/servers/{label}', '/admin/servers/nope', { token: ADMIN, body: { server_url: mcp.url } }, 404);
    await check('delete', '/admin/servers/{label}', '/admin/servers/extra', { token: ADMIN }, 200);
    await check('delete', '/admin/servers/{label}', '/admin/servers/extra', { token: ADMIN }, 404);
    await check('post', '/admin/servers/{label}/refresh', '/admin/servers/fx/refresh', { token: ADMIN }, 200);
    await check('post', '/admin/servers/{label}/refresh', '/admin/servers/nope/refresh', { token: ADMIN }, 404);
    await check('post', '/admin/servers/{label}/refresh', '/admin/servers/dead/refresh', { token: ADMIN }, 424);
  });

  it('key routes answer as documented', async () => {
    const a = { token: ADMIN };
    await check('get', '/admin/keys', '/admin/keys', a, 200);
    await check('get', '/admin/keys', '/admin/keys', { token: KEY_A }, 401);
    const created = await check('post', '/admin/keys', '/admin/keys', { ...a, body: { name: 'team-a', grants: [{ server_label: 'fx' }], rate_limit_per_min: 100 } }, 201);
    expect(created.body.key).toMatch(/^mcpb_/);
    await check('post', '/admin/keys', '/admin/keys', { ...a, body: { name: 'team-a', grants: '*' } }, 409);
    await check('post', '/admin/keys', '/admin/keys', { ...a, body: { name: 'team b', grants: '*' } }, 400);
    await check('get', '/admin/keys/{name}', '/admin/keys/team-a', a, 200);
    await check('get', '/admin/keys/{name}', '/admin/keys/nope', a, 404);
    await check('put', '/admin/keys/{name}', '/admin/keys/team-a', { ...a, body: { grants: '*', allow_inline_servers: true } }, 200);
    await check('put', '/admin/keys/{name}', '/admin/keys/team-a', { ...a, body: { name: 'other', grants: '*' } }, 400);
    await check('put', '/admin/keys/{name}', '/admin/keys/nope', { ...a, body: { grants: '*' } }, 404);
    const rotated = await check('post', '/admin/keys/{name}/rotate', '/admin/keys/team-a/rotate', { ...a, body: { grace_s: 60 } }, 200);
    expect(rotated.body.key).not.toBe(created.body.key);
    await check('post', '/admin/keys/{name}/rotate', '/admin/keys/team-a/rotate', { ...a, body: { grace_s: -1 } }, 400);
    await check('post', '/admin/keys/{name}/rotate', '/admin/keys/nope/rotate', a, 404);
    // The named key works on the API until deleted.
    expect((await b.call('POST', '/v1/mcp/list_tools', { token: rotated.body.key, body: { tool: { type: 'mcp', server_label: 'fx' } } })).status).toBe(200);
    await check('delete', '/admin/keys/{name}', '/admin/keys/team-a', a, 200);
    await check('delete', '/admin/keys/{name}', '/admin/keys/team-a', a, 404);
  });

  it('OAuth routes answer as documented', async () => {
    const a = { token: ADMIN };
    await check('post', '/admin/servers/{label}/oauth/authorize', '/admin/servers/fx/oauth/authorize', a, 400);
    await check('post', '/admin/servers/{label}/oauth/authorize', '/admin/servers/nope/oauth/authorize', a, 404);
    const started = await check('post', '/admin/servers/{label}/oauth/authorize', '/admin/servers/code/oauth/authorize', a, 200);
    const cb = await driveAuthorization(started.body.authorization_url, 'https://broker.test/oauth/callback');
    const page = await b.call('GET', `${cb.pathname}${cb.search}`, { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.body).toMatch(/connected/i);
    expect(Object.keys(doc.paths['/oauth/callback']!.get.responses['200'].content)).toEqual(['text/html']);
    seen.add('get /oauth/callback 200');
    await check('get', '/oauth/callback', `${cb.pathname}${cb.search}`, { token: null }, 400); // the state is used up
    await check('get', '/oauth/callback', '/oauth/callback?code=x', { token: null }, 400);
    await check('get', '/oauth/client-metadata.json', '/oauth/client-metadata.json', { token: null }, 200);
    // Without an https BROKER_PUBLIC_URL there is no client metadata document.
    const plain = await startBroker({ env: { BROKER_PUBLIC_URL: 'http://127.0.0.1:1' } });
    try {
      const r = await plain.call('GET', '/oauth/client-metadata.json', { token: null });
      expect(r.status).toBe(400);
      expect(validatorFor('get', '/oauth/client-metadata.json', 400)(r.body)).toBe(true);
      seen.add('get /oauth/client-metadata.json 400');
    } finally {
      await plain.close();
    }
    // The record's status now shows the connection.
    const detail = await check('get', '/admin/servers/{label}', '/admin/servers/code', a, 200);
    expect(detail.body.status.oauth.state).toBe('connected');
  });

  it('console routes answer as documented', async () => {
    const page = await b.call('GET', '/console', { token: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    seen.add('get /console 200');
    const asset = await b.call('GET', '/console/app.js', { token: null });
    expect(asset.status).toBe(200);
    seen.add('get /console/{path} 200');
    await check('get', '/console/{path}', '/console/no-such-asset.js', { token: null }, 404);
    await check('get', '/admin/servers/{label}/tools', '/admin/servers/fx/tools', { token: ADMIN }, 200);
    await check('get', '/admin/servers/{label}/tools', '/admin/servers/nope/tools', { token: ADMIN }, 404);
    await check('get', '/admin/servers/{label}/tools', '/admin/servers/dead/tools', { token: ADMIN }, 424);
  });

  it('broker and approval routes answer as documented', async () => {
    const tool = { type: 'mcp', server_label: 'fx' };
    await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { body: { tool } }, 200);
    await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { body: {} }, 400);
    await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'nope' } } }, 404);
    await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'dead' } } }, 424);
    await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { token: 'wrong', body: { tool } }, 401);
    const ok = await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'hi' } } }, 200);
    expect(ok.body.type).toBe('mcp_call');
    await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool, name: 'fail', arguments: {} } }, 200);
    await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool, name: 'missing_tool', arguments: {} } }, 200);
    await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool, name: '' } }, 400);
    const gated = await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', arguments: { text: 'x' } } }, 200);
    expect(gated.body.type).toBe('mcp_approval_request');
    const id = gated.body.id as string;
    await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', approval_request_id: id } }, 409);

    await check('get', '/v1/mcp/approvals', '/v1/mcp/approvals', { token: APPROVER }, 200);
    await check('get', '/v1/mcp/approvals', '/v1/mcp/approvals?status=nonsense', { token: APPROVER }, 400);
    await check('get', '/v1/mcp/approvals', '/v1/mcp/approvals', { token: KEY_A }, 401);
    await check('get', '/v1/mcp/approvals/{id}', `/v1/mcp/approvals/${id}`, {}, 200);
    await check('get', '/v1/mcp/approvals/{id}', `/v1/mcp/approvals/${id}?wait_ms=-1`, {}, 400);
    await check('get', '/v1/mcp/approvals/{id}', `/v1/mcp/approvals/${id}`, { token: KEY_B }, 404);
    await check('post', '/v1/mcp/approvals/{id}/decision', `/v1/mcp/approvals/${id}/decision`, { token: APPROVER, body: { approve: 'yes' } }, 400);
    await check('post', '/v1/mcp/approvals/{id}/decision', `/v1/mcp/approvals/${id}/decision`, { token: APPROVER, body: { approve: true } }, 200);
    await check('post', '/v1/mcp/approvals/{id}/decision', `/v1/mcp/approvals/${id}/decision`, { token: APPROVER, body: { approve: false } }, 409);
    await check('post', '/v1/mcp/approvals/{id}/decision', '/v1/mcp/approvals/mcpr_nope/decision', { token: APPROVER, body: { approve: false } }, 404);
    const ran = await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'echo', approval_request_id: id } }, 200);
    expect(ran.body).toMatchObject({ type: 'mcp_call', status: 'completed' });
    await check('post', '/v1/mcp/call', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: 'x'.repeat(70_000) } }, 413);
  });

  it('Responses routes answer as documented', async () => {
    model.push({ calls: [{ name: 'echo', arguments: { text: 'from model' } }] }, { text: 'done' });
    const created = await check('post', '/v1/responses', '/v1/responses', { body: { model: 'm', input: 'hi', tools: [{ type: 'mcp', server_label: 'fx', require_approval: 'never' }] } }, 200);
    expect(created.body.output.map((i: { type: string }) => i.type)).toEqual(['mcp_list_tools', 'mcp_call', 'message']);
    const id = created.body.id as string;
    await check('post', '/v1/responses', '/v1/responses', { body: { input: 'hi' } }, 400);
    await check('post', '/v1/responses', '/v1/responses', { body: { model: 'm', input: 'hi', previous_response_id: 'resp_nope' } }, 400);
    model.push({ status: 500 });
    await check('post', '/v1/responses', '/v1/responses', { body: { model: 'm', input: 'hi' } }, 502);
    await check('get', '/v1/responses/{id}', `/v1/responses/${id}`, {}, 200);
    await check('get', '/v1/responses/{id}', `/v1/responses/${id}`, { token: KEY_B }, 404);
    await check('get', '/v1/responses/{id}/input_items', `/v1/responses/${id}/input_items?order=asc`, {}, 200);
    await check('get', '/v1/responses/{id}/input_items', `/v1/responses/${id}/input_items?limit=0`, {}, 400);
    await check('get', '/v1/responses/{id}/input_items', '/v1/responses/resp_nope/input_items', {}, 404);
    await check('get', '/v1/responses/{id}', `/v1/responses/${id}?stream=true`, {}, 400);
    await check('post', '/v1/responses/{id}/cancel', `/v1/responses/${id}/cancel`, {}, 400);
    await check('post', '/v1/responses/{id}/cancel', '/v1/responses/resp_nope/cancel', {}, 404);
    await check('delete', '/v1/responses/{id}', `/v1/responses/${id}`, {}, 200);
    await check('delete', '/v1/responses/{id}', `/v1/responses/${id}`, {}, 404);
    // A background response: queued, then cancelled.
    model.push({ text: 'slow', delayMs: 1000 });
    const bg = await check('post', '/v1/responses', '/v1/responses', { body: { model: 'm', input: 'hi', background: true } }, 200);
    expect(bg.body.background).toBe(true);
    const cancelled = await check('post', '/v1/responses/{id}/cancel', `/v1/responses/${bg.body.id}/cancel`, {}, 200);
    expect(cancelled.body.status).toBe('cancelled');
  });

  it('a named key\'s refusals are documented too: 403 for an inline server, 429 past its rate limit on any /v1 route', async () => {
    const a = { token: ADMIN };
    const made = await b.call('POST', '/admin/keys', { ...a, body: { name: 'limited', grants: [{ server_label: 'fx' }], rate_limit_per_min: 2 } });
    expect(made.status).toBe(201);
    const key = made.body.key as string;
    const inline = { tool: { type: 'mcp', server_label: 'elsewhere', server_url: 'https://mcp.example.com/mcp' } };
    const refused = await check('post', '/v1/mcp/list_tools', '/v1/mcp/list_tools', { token: key, body: inline }, 403);
    expect(refused.body.error).toMatchObject({ code: 'permission_denied', param: 'tool.server_url' });
    await b.call('GET', '/v1/responses/resp_nope', { token: key });
    const limited = await check('get', '/v1/responses/{id}', '/v1/responses/resp_nope', { token: key }, 429);
    expect(limited.body.error.code).toBe('rate_limit_exceeded');
    await check('get', '/v1/mcp/approvals/{id}', '/v1/mcp/approvals/mcpr_nope', { token: key }, 429);
    expect((await b.call('DELETE', '/admin/keys/limited', a)).status).toBe(200);
    // Every API route documents 429 and 503 (a shared store down), every authenticated one 503.
    for (const op of OPERATIONS.filter((o) => o.auth !== 'none')) {
      const statuses = Object.keys(doc.paths[op.path]![op.method].responses);
      expect({ op: op.operationId, statuses }).toEqual({ op: op.operationId, statuses: expect.arrayContaining(op.auth.startsWith('api') ? ['401', '429', '503'] : ['401', '503']) });
    }
  });

  it('every documented operation was answered with a success and an error above', () => {
    for (const op of OPERATIONS) {
      const mine = [...seen].filter((s) => s.startsWith(`${op.method} ${op.path} `)).map((s) => Number(s.split(' ')[2]));
      if (op.path === '/metrics') continue; // text, checked above
      expect({ op: op.operationId, success: mine.some((s) => s < 300) }).toEqual({ op: op.operationId, success: true });
      if (op.auth !== 'none' || op.errors.length) expect({ op: op.operationId, error: mine.some((s) => s >= 400) }).toEqual({ op: op.operationId, error: true });
    }
  });
});
