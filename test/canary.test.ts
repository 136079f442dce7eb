import OpenAI from 'openai';
import { startMcpFixture } from './fixtures/mcpServer.js';
import { startFaultServer } from './fixtures/faultServer.js';
import { startFakeModel } from './fixtures/fakeModel.js';
import { startReceiver, WEBHOOK_SECRET } from './fixtures/webhookReceiver.js';
import { ADMIN, APPROVER, KEY_A, record, startBroker } from './fixtures/broker.js';

/** security.md D.18: plant unique secrets everywhere, run every flow, search every output. */
describe('secrets never leave the broker', () => {
  it('no response, SSE event, stored response, webhook, upstream request or log line carries a secret', async () => {
    const c = {
      callerHeader: 'canary-caller-header-7f3a9',
      callerAuth: 'canary-caller-oauth-1c8e2',
      recordHeader: 'canary-record-env-5d4b6',
      pathSecret: 'canary-path-token-9e2f1',
      failingAuth: 'canary-failing-auth-3b7c0',
    };
    const mcp = await startMcpFixture();
    const faulty = await startFaultServer({ call: 'echo_credentials' });
    const model = await startFakeModel();
    const rx = await startReceiver([]);
    const b = await startBroker({
      env: { UPSTREAM_BASE_URL: model.url, BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true', APPROVAL_WEBHOOK_URL: rx.url, APPROVAL_WEBHOOK_SECRET: WEBHOOK_SECRET },
      processEnv: { CANARY_TOKEN: c.recordHeader },
      servers: [
        record('fx', mcp.url, { headers: { Authorization: 'Bearer ${CANARY_TOKEN}' }, require_approval: { never: { read_only: true } } }),
        record('faulty', faulty.url, { headers: { 'X-Canary': '${CANARY_TOKEN}' } }),
      ],
    });
    const seen: string[] = [];
    const keep = (x: unknown) => seen.push(typeof x === 'string' ? x : JSON.stringify(x));
    const inlineUrl = mcp.url.replace('/mcp', `/mcp?session=${c.pathSecret}`);
    const caller = { headers: { 'X-Canary': c.callerHeader }, authorization: c.callerAuth };
    try {
      // Broker API: registered and inline, list, call, approval, a failing server that echoes credentials.
      const fx = { type: 'mcp', server_label: 'fx', ...caller };
      keep((await b.call('POST', '/v1/mcp/list_tools', { body: { tool: fx } })).body);
      keep((await b.call('POST', '/v1/mcp/call', { body: { tool: fx, name: 'add', arguments: { a: 1, b: 2 } } })).body);
      const approval = (await b.call('POST', '/v1/mcp/call', { body: { tool: fx, name: 'echo', arguments: { text: 'x' } } })).body;
      keep(approval);
      keep((await b.call('GET', `/v1/mcp/approvals/${approval.id}`)).body);
      keep((await b.call('GET', '/v1/mcp/approvals?status=pending', { token: APPROVER })).body);
      keep((await b.call('POST', `/v1/mcp/approvals/${approval.id}/decision`, { token: APPROVER, body: { approve: true } })).body);
      keep((await b.call('POST', '/v1/mcp/call', { body: { tool: fx, name: 'echo', approval_request_id: approval.id } })).body);
      const inline = { type: 'mcp', server_label: 'inl', server_url: inlineUrl, require_approval: 'never', ...caller };
      keep((await b.call('POST', '/v1/mcp/list_tools', { body: { tool: inline } })).body);
      keep((await b.call('POST', '/v1/mcp/call', { body: { tool: inline, name: 'echo', arguments: { text: 'y' } } })).body);
      const bad = { type: 'mcp', server_label: 'faulty', authorization: c.failingAuth };
      keep((await b.call('POST', '/v1/mcp/list_tools', { body: { tool: bad } })).body);
      const echoed = (await b.call('POST', '/v1/mcp/call', { body: { tool: bad, name: 't', arguments: {} } })).body;
      keep(echoed);
      expect(echoed.error.message).toContain('<redacted>');
      const unreachable = { type: 'mcp', server_label: 'gone', server_url: `http://127.0.0.1:1/${c.pathSecret}`, ...caller };
      keep((await b.call('POST', '/v1/mcp/list_tools', { body: { tool: unreachable } })).body);

      // Admin views.
      keep((await b.call('GET', '/admin/servers', { token: ADMIN })).body);
      keep((await b.call('GET', '/admin/servers/fx', { token: ADMIN })).body);

      // Responses, plain and streamed, stored and listed.
      const client = new OpenAI({ baseURL: `${b.url}/v1`, apiKey: KEY_A, maxRetries: 0 });
      model.push({ calls: [{ name: 'add', arguments: { a: 2, b: 2 } }] }, { text: 'four' });
      const tools = [fx as OpenAI.Responses.Tool, inline as OpenAI.Responses.Tool];
      const r = await client.responses.create({ model: 'm', input: 'x', tools });
      keep(r);
      keep((await b.call('GET', `/v1/responses/${r.id}`)).body);
      keep((await b.call('GET', `/v1/responses/${r.id}/input_items`)).body);
      model.push({ calls: [{ name: 'add', arguments: { a: 1, b: 1 } }] }, { text: 'two' });
      const res = await fetch(`${b.url}/v1/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY_A}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', input: 'y', tools, stream: true }),
      });
      keep(await res.text());
      keep(Object.fromEntries(res.headers));

      await rx.waitFor(1);
      await new Promise((r2) => setTimeout(r2, 200));
      keep(rx.deliveries);
      keep(model.requests.map((q) => q.body));
      const logs = b.logs.join('');
      expect(logs).toContain('mcp upstream request'); // the debug lines ran
      keep(logs);

      const all = seen.join('\n');
      for (const [name, value] of Object.entries(c)) {
        expect([name, all.includes(value)]).toEqual([name, false]);
      }
      for (const key of [KEY_A, ADMIN, APPROVER, WEBHOOK_SECRET]) expect(all.includes(key)).toBe(false);
      expect(all).not.toContain(mcp.url.replace('/mcp', '/mcp?'));
    } finally {
      await b.close();
      await rx.close();
      await model.close();
      await faulty.close();
      await mcp.close();
    }
  });
});
