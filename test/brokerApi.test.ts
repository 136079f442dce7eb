import { startMcpFixture, type McpFixture } from './fixtures/mcpServer.js';
import { KEY_A, KEY_B, ADMIN, APPROVER, record, startBroker, type TestBroker } from './fixtures/broker.js';

describe('broker API against a real MCP server', () => {
  let mcp: McpFixture;
  let b: TestBroker;
  const tool = { type: 'mcp', server_label: 'fx' };

  beforeEach(async () => {
    mcp = await startMcpFixture();
    b = await startBroker({ servers: [record('fx', mcp.url, { transport: 'streamable_http' })] });
  });
  afterEach(async () => {
    await b.close();
    await mcp.close();
  });

  it('lists tools as an mcp_list_tools item; 20 lists → 1 upstream tools/list', async () => {
    const first = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-mcp-cache')).toBe('miss');
    expect(first.body).toMatchObject({ type: 'mcp_list_tools', server_label: 'fx' });
    expect(first.body.id).toMatch(/^mcpl_/);
    const add = first.body.tools.find((t: { name: string }) => t.name === 'add');
    expect(add).toEqual({ name: 'add', description: 'Add two numbers', input_schema: expect.objectContaining({ type: 'object' }), annotations: { read_only: true } });
    expect(first.body.tools.find((t: { name: string }) => t.name === 'echo').annotations).toEqual({ read_only: false });

    const rest = await Promise.all(Array.from({ length: 19 }, () => b.call('POST', '/v1/mcp/list_tools', { body: { tool } })));
    expect(rest.every((r) => r.status === 200 && r.headers.get('x-mcp-cache') === 'hit')).toBe(true);
    expect(mcp.counters.list).toBe(1);
  });

  it('concurrent cold lists share one upstream fetch', async () => {
    const all = await Promise.all(Array.from({ length: 20 }, () => b.call('POST', '/v1/mcp/list_tools', { body: { tool } })));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(mcp.counters.list).toBe(1);
  });

  it('calls a tool: mcp_call item with output; N calls → 1 initialize upstream', async () => {
    for (let i = 0; i < 10; i++) {
      const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: JSON.stringify({ text: `hi ${i}` }) } });
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ type: 'mcp_call', status: 'completed', server_label: 'fx', name: 'echo', output: `echo: hi ${i}`, error: null, approval_request_id: null });
      expect(r.body.arguments).toBe(JSON.stringify({ text: `hi ${i}` }));
    }
    expect(mcp.counters.initialize).toBe(1);
    expect(mcp.counters.calls.echo).toBe(10);
  });

  it('arguments may be an object; structuredContent becomes JSON output; mixed content gets placeholders', async () => {
    const add = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'add', arguments: { a: 2, b: 3 } } });
    expect(add.body).toMatchObject({ status: 'completed', output: '{"sum":5}' });
    const pic = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'picture', arguments: {} } });
    expect(pic.body.output).toBe('a picture\n[image: image/png]\n[resource: file:///x.txt (name: x)]');
  });

  it('a tool error is an mcp_tool_execution_error item', async () => {
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'fail', arguments: '{}' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'failed', output: null, error: { type: 'mcp_tool_execution_error', content: [{ type: 'text', text: 'it broke' }] } });
  });

  it('an unknown tool is refused without sending anything', async () => {
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'nope', arguments: '{}' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ type: 'mcp_call', status: 'failed', error: { type: 'mcp_protocol_error', code: -32602 } });
    expect(mcp.counters.calls.nope).toBeUndefined();
  });

  it('a tool disallowed by the caller or the admin is neither listed nor callable', async () => {
    const caller = { ...tool, allowed_tools: ['echo'] };
    const listed = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: caller } });
    expect(listed.body.tools.map((t: { name: string }) => t.name)).toEqual(['echo']);
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: caller, name: 'add', arguments: { a: 1, b: 1 } } });
    expect(r.body.error).toMatchObject({ type: 'mcp_protocol_error', code: -32602 });
    expect(mcp.counters.calls.add).toBeUndefined();

    await b.call('PUT', '/admin/servers/fx', { token: ADMIN, body: record('fx', mcp.url, { allowed_tools: { read_only: true } }) });
    const both = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...tool, allowed_tools: { tool_names: ['echo', 'add'] } } } });
    expect(both.body.tools.map((t: { name: string }) => t.name)).toEqual(['add']);
  });

  it('a call that needs approval returns an mcp_approval_request and runs nothing', async () => {
    const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { ...tool, require_approval: 'always' }, name: 'echo', arguments: { text: 'x' } } });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ id: expect.stringMatching(/^mcpr_[0-9a-f]{32}$/), type: 'mcp_approval_request', server_label: 'fx', name: 'echo', arguments: '{"text":"x"}' });
    expect(mcp.counters.calls.echo).toBeUndefined();
  });

  it('notifications/tools/list_changed drops the cached listing', async () => {
    await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
    expect(mcp.counters.list).toBe(1);
    mcp.addTool('late');
    // The notification arrives asynchronously over the session's GET stream.
    let names: string[] = [];
    const end = Date.now() + 5000;
    while (!names.includes('late') && Date.now() < end) {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      names = r.body.tools.map((t: { name: string }) => t.name);
      if (!names.includes('late')) await new Promise((res) => setTimeout(res, 25));
    }
    expect(names).toContain('late');
    expect(mcp.counters.list).toBe(2);
  });

  it('recovers after the upstream restarts (lost session → re-initialize once)', async () => {
    const ok = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'a' } } });
    expect(ok.body.status).toBe('completed');
    await mcp.stop();
    const down = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'b' } } });
    expect(down.status).toBe(200);
    expect(down.body).toMatchObject({ status: 'failed', error: { type: 'http_error', code: 502 } });
    await mcp.start();
    const again = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'c' } } });
    expect(again.body).toMatchObject({ status: 'completed', output: 'echo: c' });
    expect(mcp.counters.calls.echo).toBe(2);
  });

  it('forwards caller headers and authorization, but the record wins a name it sets', async () => {
    await b.call('PUT', '/admin/servers/fx', { token: ADMIN, body: record('fx', mcp.url, { headers: { 'X-Team': 'record-team' } }) });
    const r = await b.call('POST', '/v1/mcp/call', {
      body: { tool: { ...tool, authorization: 'caller-oauth-token', headers: { 'x-team': 'caller-team', 'X-Api-Key': 'caller-key' } }, name: 'whoami', arguments: {} },
    });
    expect(JSON.parse(r.body.output)).toEqual({ authorization: 'Bearer caller-oauth-token', 'x-team': 'record-team', 'x-api-key': 'caller-key' });
    // The caller's own broker credential never goes upstream.
    for (const h of mcp.counters.headers) expect(JSON.stringify(h)).not.toContain(KEY_A);
  });

  it('the authorization field replaces a caller Authorization header; duplicate names are refused', async () => {
    const r = await b.call('POST', '/v1/mcp/call', {
      body: { tool: { ...tool, headers: { authorization: 'Bearer from-header' }, authorization: 'from-field' }, name: 'whoami', arguments: {} },
    });
    expect(JSON.parse(r.body.output).authorization).toBe('Bearer from-field');
    const dup = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...tool, headers: { 'X-Team': 'a', 'x-team': 'b' } } } });
    expect(dup.status).toBe(400);
    expect(dup.body.error).toMatchObject({ code: 'invalid_value', param: 'tool.headers' });
  });

  it('each credential set gets its own session and listing', async () => {
    await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...tool, headers: { 'X-Team': 'a' } } } });
    const other = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...tool, headers: { 'X-Team': 'b' } } } });
    expect(other.headers.get('x-mcp-cache')).toBe('miss');
    expect(mcp.counters.list).toBe(2);
    expect(mcp.counters.initialize).toBe(2);
  });

  describe('errors', () => {
    it('unknown label → 404 unknown_server_label', async () => {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'nope' } } });
      expect(r.status).toBe(404);
      expect(r.body).toEqual({ error: { message: expect.any(String), type: 'not_found_error', param: 'tool.server_label', code: 'unknown_server_label' } });
    });
    it('a registered label with a server_url → 400 server_label_conflict', async () => {
      const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { ...tool, server_url: 'https://evil.example/mcp' }, name: 'echo' } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'server_label_conflict', param: 'tool.server_url', type: 'invalid_request_error' });
    });
    it('connector_id → 400 invalid_value', async () => {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'x', connector_id: 'connector_gmail' } } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_value', param: 'tool.connector_id' });
    });
    it.each([
      [{}, 'missing_required_parameter', 'tool'],
      [{ tool: { type: 'mcp' } }, 'missing_required_parameter', 'tool.server_label'],
      [{ tool: { type: 'mcp', server_label: 'bad label!' } }, 'invalid_value', 'tool.server_label'],
      [{ tool: { type: 'function', server_label: 'fx' } }, 'invalid_value', 'tool.type'],
      [{ tool: { type: 'mcp', server_label: 'fx', headers: { Host: 'x' } } }, 'invalid_value', 'tool.headers.Host'],
      [{ tool: { type: 'mcp', server_label: 'fx', headers: { 'X-A': 'a\r\nb' } } }, 'invalid_value', 'tool.headers.X-A'],
      [{ tool: { type: 'mcp', server_label: 'fx', require_approval: 'sometimes' } }, 'invalid_value', 'tool.require_approval'],
    ])('bad list body %j → 400 %s naming %s', async (body, code, param) => {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ type: 'invalid_request_error', code, param });
    });
    it('bad arguments → 400 naming arguments', async () => {
      for (const args of ['{nope', '[1]']) {
        const r = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: args } });
        expect(r.status).toBe(400);
        expect(r.body.error).toMatchObject({ code: 'invalid_value', param: 'arguments' });
      }
    });
    it('malformed JSON → 400 invalid_json; a non-object body → 400', async () => {
      const r = await b.call('POST', '/v1/mcp/call', { body: '{"tool":' });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_json');
      const arr = await b.call('POST', '/v1/mcp/call', { body: '[1,2]' });
      expect(arr.status).toBe(400);
    });
    it('no or wrong credential → 401 with WWW-Authenticate, checked before the body', async () => {
      for (const token of [null, 'wrong', ADMIN, APPROVER]) {
        const r = await b.call('POST', '/v1/mcp/call', { token, body: '{"broken' });
        expect(r.status).toBe(401);
        expect(r.headers.get('www-authenticate')).toBe('Bearer');
        expect(r.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
      }
      const other = await b.call('POST', '/v1/mcp/list_tools', { token: KEY_B, body: { tool } });
      expect(other.status).toBe(200);
    });
    it('unknown route → 404 JSON', async () => {
      const r = await b.call('GET', '/v1/nope');
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ type: 'not_found_error', code: 'not_found' });
    });
    it('an unreachable server → 424 external_connector_error for listing, http_error item for a call', async () => {
      await mcp.stop();
      const l = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      expect(l.status).toBe(424);
      expect(l.body.error).toMatchObject({ type: 'external_connector_error', param: 'tools' });
      expect(l.body.error.message).toMatch(/^Error retrieving tool list from MCP server: 'fx'\. /);
      await mcp.start();
      await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      await mcp.stop();
      const c = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'x' } } });
      expect(c.status).toBe(200);
      expect(c.body).toMatchObject({ type: 'mcp_call', status: 'failed', output: null, error: { type: 'http_error', code: 502 } });
      await mcp.start();
    });
  });

  it('inline servers go through the egress guard: loopback refused unless allowed', async () => {
    const inline = { type: 'mcp', server_label: 'inl', server_url: mcp.url.replace('http:', 'https:'), require_approval: 'never' };
    const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: inline } });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'egress_denied', param: 'tool.server_url' });
    const c = await b.call('POST', '/v1/mcp/call', { body: { tool: inline, name: 'echo', arguments: {} } });
    expect(c.status).toBe(400);
    expect(c.body.error.code).toBe('egress_denied');
    const httpUrl = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { ...inline, server_url: mcp.url } } });
    expect(httpUrl.status).toBe(400);
    expect(httpUrl.body.error).toMatchObject({ code: 'egress_denied', param: 'tool.server_url' });
    expect(mcp.counters.initialize).toBe(0);
  });
});

describe('inline servers when widened for tests', () => {
  it('list and call an inline server; omitted require_approval means always', async () => {
    const mcp = await startMcpFixture();
    const b = await startBroker({ env: { BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', BROKER_EGRESS_ALLOW_HTTP: 'true' } });
    try {
      const inline = { type: 'mcp', server_label: 'inl', server_url: mcp.url };
      const l = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: inline } });
      expect(l.status).toBe(200);
      expect(l.body.tools.length).toBeGreaterThan(3);
      const c = await b.call('POST', '/v1/mcp/call', { body: { tool: inline, name: 'echo', arguments: { text: 'x' } } });
      expect(c.body.type).toBe('mcp_approval_request');
      const n = await b.call('POST', '/v1/mcp/call', { body: { tool: { ...inline, require_approval: 'never' }, name: 'echo', arguments: { text: 'x' } } });
      expect(n.body).toMatchObject({ type: 'mcp_call', output: 'echo: x' });
      const off = await startBroker({ env: { BROKER_ALLOW_INLINE_SERVERS: 'false' } });
      const d = await off.call('POST', '/v1/mcp/list_tools', { body: { tool: inline } });
      expect(d.status).toBe(400);
      expect(d.body.error.code).toBe('inline_servers_disabled');
      await off.close();
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});

describe('transport auto', () => {
  it('falls back to legacy HTTP+SSE and remembers it', async () => {
    const mcp = await startMcpFixture({ sseOnly: true });
    const b = await startBroker({ servers: [record('old', mcp.url, { transport: 'auto' })] });
    try {
      const tool = { type: 'mcp', server_label: 'old' };
      const l = await b.call('POST', '/v1/mcp/list_tools', { body: { tool } });
      expect(l.status).toBe(200);
      expect(l.body.tools.map((t: { name: string }) => t.name)).toContain('echo');
      const c = await b.call('POST', '/v1/mcp/call', { body: { tool, name: 'echo', arguments: { text: 'sse' } } });
      expect(c.body).toMatchObject({ status: 'completed', output: 'echo: sse' });
      const s = await b.call('GET', '/admin/servers/old', { token: ADMIN });
      expect(s.body.status.transport_in_use).toBe('sse');
    } finally {
      await b.close();
      await mcp.close();
    }
  });
});
