import { startFaultServer, type Fault, type FaultServer } from './fixtures/faultServer.js';
import { startMcpFixture } from './fixtures/mcpServer.js';
import { record, startBroker, type TestBroker } from './fixtures/broker.js';

const tool = { type: 'mcp', server_label: 'bad' };

async function setup(list: Fault, call: Fault, env: Record<string, string> = {}, tuning?: object) {
  const other = await startMcpFixture();
  const fs = await startFaultServer({ list, call, otherOrigin: new URL(other.url).origin });
  const b = await startBroker({
    env,
    tuning,
    servers: [record('bad', fs.url, { call_timeout_ms: 400, transport: 'streamable_http' }), record('good', other.url)],
  });
  return { fs, b, other, close: async () => (await b.close(), await fs.close(), await other.close()) };
}

describe('misbehaving upstreams end in a well-formed item or a 4xx', () => {
  const listCases: Array<[Fault, string]> = [
    ['slow_headers', 'timeout'],
    ['silent_sse', 'timeout'],
    ['truncated_json', 'http_error'],
    ['html_200', 'http_error'],
    ['status_500', 'http_error'],
    ['status_502', 'http_error'],
    ['status_503', 'http_error'],
    ['status_429', 'http_error'],
    ['status_401', 'http_error'],
    ['wrong_id', 'timeout'],
    ['jsonrpc_error', 'http_error'],
    ['huge_error', 'http_error'],
    ['reset', 'connection_error'],
    ['redirect_cross', 'http_error'],
  ];
  it.each(listCases)('tools/list %s → 424 %s', async (fault, code) => {
    const t = await setup(fault, 'ok');
    try {
      const started = Date.now();
      const r = await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      expect(r.status).toBe(424);
      expect(r.body.error).toMatchObject({ type: 'external_connector_error', code, param: 'tools' });
      expect(r.body.error.message).toMatch(/^Error retrieving tool list from MCP server: 'bad'\. /);
      expect(r.body.error.message.length).toBeLessThan(2300);
      expect(Date.now() - started).toBeLessThan(5000);
      // The other server is untouched.
      expect((await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'good' } } })).status).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('a 401 at listing names the status like OpenAI', async () => {
    const t = await setup('status_401', 'ok');
    try {
      const r = await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      expect(r.body.error.message).toBe("Error retrieving tool list from MCP server: 'bad'. Http status code: 401 (Unauthorized)");
    } finally {
      await t.close();
    }
  });

  const callCases: Array<[Fault, object]> = [
    ['slow_headers', { type: 'http_error', code: 504 }],
    ['silent_sse', { type: 'http_error', code: 504 }],
    ['truncated_json', { type: 'http_error', code: 502 }],
    ['html_200', { type: 'http_error' }],
    ['status_500', { type: 'http_error', code: 500 }],
    ['status_503', { type: 'http_error', code: 503 }],
    ['status_429', { type: 'http_error', code: 429 }],
    ['wrong_id', { type: 'http_error', code: 504 }],
    ['jsonrpc_error', { type: 'mcp_protocol_error', code: -32000, message: 'the server refused' }],
    ['huge_error', { type: 'mcp_protocol_error', code: -32000 }],
    ['huge_result', { type: 'http_error', code: 502 }],
    ['reset', { type: 'http_error', code: 502 }],
  ];
  it.each(callCases)('tools/call %s → failed mcp_call %j', async (fault, error) => {
    const t = await setup('ok', fault);
    try {
      const heapBefore = process.memoryUsage().heapUsed;
      const started = Date.now();
      const r = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ type: 'mcp_call', status: 'failed', output: null, error });
      expect(JSON.stringify(r.body).length).toBeLessThan(5000);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(48 * 1024 * 1024);
      // Never retried once sent.
      expect(t.fs.hits.call).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('one failing request does not tear down the calls sharing its session', async () => {
    const t = await setup('ok', 'status_500');
    try {
      await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      const steady = t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 'steady', arguments: {} } });
      await new Promise((r) => setTimeout(r, 50));
      const failing = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(failing.body.error).toMatchObject({ type: 'http_error', code: 500 });
      expect((await steady).body).toMatchObject({ status: 'completed', output: 'steady' });
      expect(t.fs.hits.initialize).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('a server that asks to sample gets refused and the call still completes', async () => {
    const t = await setup('ok', 'sampling');
    try {
      const r = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(r.body).toMatchObject({ status: 'completed', output: 'fine' });
    } finally {
      await t.close();
    }
  });

  it('a same-origin redirect is followed; 10 000 tools are listed', async () => {
    const t = await setup('many_tools', 'redirect_same');
    try {
      const l = await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      expect(l.status).toBe(200);
      expect(l.body.tools).toHaveLength(10_000);
      t.fs.list = 'ok';
    } finally {
      await t.close();
    }
  });

  it('the circuit breaker opens after consecutive failures and fails fast', async () => {
    const t = await setup('ok', 'status_500', {}, { breakerThreshold: 3, breakerHalfOpenMs: 400 });
    try {
      await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      for (let i = 0; i < 3; i++) {
        const r = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
        expect(r.body.error).toMatchObject({ type: 'http_error', code: 500 });
      }
      const hits = t.fs.hits.total;
      const open = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(open.status).toBe(503);
      expect(open.body.error).toMatchObject({ type: 'server_error', code: 'circuit_open' });
      expect(Number(open.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(t.fs.hits.total).toBe(hits);
      expect(await (await fetch(`${t.b.url}/metrics`)).text()).toContain('broker_open_circuit_breakers 1');
      // Another origin is unaffected.
      const good = await t.b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'good' }, name: 'echo', arguments: { text: 'x' } } });
      expect(good.body.status).toBe('completed');
      // After the half-open delay a probe goes through and, succeeding, closes the breaker.
      t.fs.call = 'ok';
      await new Promise((r) => setTimeout(r, 500));
      const probe = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(probe.body).toMatchObject({ status: 'completed', output: 'fine' });
    } finally {
      await t.close();
    }
  });

  it('per-origin concurrency is bounded: beyond it, 429 upstream_busy with Retry-After', async () => {
    const t = await setup('ok', 'slow_headers', { BROKER_MAX_INFLIGHT_PER_ORIGIN: '2' });
    try {
      await t.b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      const slow = [0, 1].map(() => t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } }));
      await new Promise((r) => setTimeout(r, 100));
      const busy = await t.b.call('POST', '/v1/mcp/call', { body: { tool, name: 't', arguments: {} } });
      expect(busy.status).toBe(429);
      expect(busy.body.error).toMatchObject({ type: 'rate_limit_error', code: 'upstream_busy' });
      expect(busy.headers.get('retry-after')).toBeTruthy();
      for (const r of await Promise.all(slow)) expect(r.body.error.code).toBe(504);
    } finally {
      await t.close();
    }
  });

  it('an oversized inbound body is a JSON 413, after authentication', async () => {
    const t = await setup('ok', 'ok', { BROKER_MAX_BODY_BYTES: '2048' });
    try {
      const big = { tool, name: 't', arguments: { x: 'y'.repeat(5000) } };
      const r = await t.b.call('POST', '/v1/mcp/call', { body: big });
      expect(r.status).toBe(413);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code: 'payload_too_large' });
      const unauth = await t.b.call('POST', '/v1/mcp/call', { body: big, token: null });
      expect(unauth.status).toBe(401);
    } finally {
      await t.close();
    }
  });
});
