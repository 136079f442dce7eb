import v8 from 'node:v8';
import vm from 'node:vm';
import { startHostileServer, type HostileServer } from './fixtures/hostileServer.js';
import { GOOD_TOKEN, startHostileServer as startHostileUpstream, type HostileServer as HostileUpstream } from './fixtures/hostileUpstream.js';
import { KEY_A, KEY_B, record, startBroker, type TestBroker } from './fixtures/broker.js';

/**
 * Soak (issue 10): SOAK_DURATION_S [120, bounded 5–600] seconds of mixed hostile traffic from
 * key A — request-side attacks, and MCP-side ones: a paged listing bomb, SSE answers left
 * open, calls that hang, wrong credentials against the server key B shares, a server that
 * echoes its credentials — while key B's calls keep succeeding. Key B: 0 failures. RSS after the run within
 * 64 MiB of the warmed-up baseline (both measured after a full GC).
 */
const DURATION_S = Math.min(600, Math.max(5, Number(process.env.SOAK_DURATION_S ?? 120) || 120));
const RSS_BUDGET = 64 * 1024 * 1024;
const SECRET = 'so"ak\\caller-secret-77';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
  return process.memoryUsage();
};
const MiB = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

describe(`soak: ${DURATION_S} s of hostile traffic from one key`, () => {
  let hostile: HostileServer;
  let hu: HostileUpstream;
  let b: TestBroker;
  const ECHO_SECRET = 'soak-record-secret-4f9e21';
  beforeAll(async () => {
    hostile = await startHostileServer();
    hu = await startHostileUpstream();
    hu.pageTools = 32; // 2 MiB pages: under the per-response cap, so only the listing bound stops the bomb
    hu.toolBytes = 64 * 1024;
    b = await startBroker({
      env: { BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8', LOG_LEVEL: 'warn', BROKER_MAX_APPROVAL_BYTES: String(8 * 1024 * 1024) },
      servers: [
        record('shared', hostile.url),
        record('gated', hostile.url, { require_approval: 'always' }),
        record('bomb', hu.url('bomb')),
        record('open', hu.url('sse_open'), { call_timeout_ms: 10_000 }),
        record('hang', hu.url('hang'), { call_timeout_ms: 300 }),
        record('authed', hu.url('auth')),
        record('echo', hu.url('echo'), { headers: { Authorization: `Bearer ${ECHO_SECRET}` } }),
      ],
    });
  });
  afterAll(async () => {
    await b.close();
    await hostile.close();
    await hu.close();
  });

  it('the good key sees 0 failures, RSS stays flat, nothing leaks', async () => {
    const deep = '{"x":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    const blob = { n: 1, blob: 'z'.repeat(1_000_000) };
    const attacks: Array<[string, (i: number) => Promise<boolean>]> = [
      ['deep nesting', async () => (await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'shared' }, name: 'ok', arguments: deep } })).status === 400],
      ['huge approval create/cancel', async () => {
        const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'ok', arguments: blob } });
        if (r.status === 429) return true;
        if (r.body?.type !== 'mcp_approval_request') return false;
        return (await b.call('POST', `/v1/mcp/approvals/${r.body.id}/decision`, { body: { approve: false } })).status === 200;
      }],
      ['huge approval left pending', async () => {
        const r = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'gated' }, name: 'ok', arguments: blob } });
        return r.status === 429 || r.body?.type === 'mcp_approval_request';
      }],
      ['bad header value', async (i) => {
        const v = ['a\x01b-long-value', 'nul\0-long-value', 'euro€-long-value', 'del\x7f-long-value'][i % 4];
        return (await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'shared', headers: { 'X-A': v } } } })).status === 400;
      }],
      ['short credential', async () => (await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'shared', authorization: 'abc' } } })).status === 400],
      ['metrics-cardinality labels', async (i) => {
        const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: `atk_${i}`, server_url: hostile.url, require_approval: 'never' } } });
        return r.status === 200;
      }],
      ['header echo', async (i) => {
        const r = await b.call('POST', '/v1/mcp/call', {
          body: { tool: { type: 'mcp', server_label: 'shared', headers: { 'X-Caller': SECRET }, authorization: `${SECRET}-${i % 50}` }, name: ['echo_json', 'echo_raw', 'echo_structured', 'echo_error'][i % 4], arguments: {} },
        });
        return r.status === 200 && !JSON.stringify(r.body).includes('caller-secret-77');
      }],
    ];
    let sseAnswered = 0;
    let hangTimedOut = 0;
    const mcpCall = (label: string, extra: Record<string, unknown> = {}) => b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: label, ...extra }, name: 't', arguments: {} } });
    attacks.push(
      ['paged listing bomb', async (i) => {
        const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'bomb', headers: { 'X-Tenant': `t-${i % 7}` } } } });
        return r.status === 424 && /tool list too large/.test(r.body?.error?.message ?? '');
      }],
      ['SSE answer left open', async () => {
        const r = await mcpCall('open');
        const ok = r.body?.status === 'completed' && r.body?.output === 'answered, stream left open';
        if (ok) sseAnswered++;
        return ok;
      }],
      ['call that hangs', async () => {
        const r = await mcpCall('hang');
        const ok = r.body?.status === 'failed' && r.body?.error?.code === 504;
        if (ok) hangTimedOut++;
        // Timeouts are the server's own failures: its breaker opens and fails fast until a probe succeeds.
        return ok || (r.status === 503 && r.body?.error?.code === 'circuit_open') || (console.log('hang', r.status, JSON.stringify(r.body)), false);
      }],
      ['wrong credentials on the shared server', async (i) => {
        const r = i % 2
          ? await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'authed', authorization: `wrong-token-${i % 9}` } } })
          : await mcpCall('authed', { authorization: `wrong-token-${i % 9}` });
        return (r.status === 424 && /401/.test(r.body?.error?.message ?? '')) || (r.body?.status === 'failed' && r.body?.error?.code === 401);
      }],
      ['server echoing its credentials', async () => {
        const r = await mcpCall('echo');
        return r.body?.status === 'failed' && /call refused/.test(r.body?.error?.message ?? '') && !JSON.stringify(r.body).includes(ECHO_SECRET);
      }],
    );
    const stats = new Map(attacks.map(([n]) => [n, { runs: 0, unexpected: 0 }]));
    let good = 0;
    const goodFailures: string[] = [];

    const started = Date.now();
    const warmUntil = started + Math.min(10_000, DURATION_S * 200);
    const end = started + DURATION_S * 1000;
    let baseline: NodeJS.MemoryUsage | undefined;
    let peak = 0;

    const attacker = async (w: number) => {
      for (let i = w; Date.now() < end; i += 3) {
        const [name, run] = attacks[i % attacks.length]!;
        const s = stats.get(name)!;
        s.runs++;
        if (!(await run(i).catch(() => false))) s.unexpected++;
      }
    };
    const goodKey = async () => {
      for (let i = 0; Date.now() < end; i++) {
        const r = await b
          .call('POST', '/v1/mcp/call', { token: KEY_B, body: { tool: { type: 'mcp', server_label: 'shared' }, name: 'ok', arguments: { n: i } } })
          .catch((e: Error) => ({ status: 0, body: e.message }));
        if (r.status !== 200 || r.body?.output !== `ok ${i}`) goodFailures.push(`${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        else good++;
        if (i % 25 === 0) {
          const l = await b.call('POST', '/v1/mcp/list_tools', { token: KEY_B, body: { tool: { type: 'mcp', server_label: 'shared' } } });
          if (l.status !== 200) goodFailures.push(`list ${l.status}`);
        }
        if (i % 5 === 0) {
          // The server the attacker keeps failing against with wrong credentials: B's right ones still work.
          const a = await b.call('POST', '/v1/mcp/call', { token: KEY_B, body: { tool: { type: 'mcp', server_label: 'authed', authorization: GOOD_TOKEN.slice('Bearer '.length) }, name: 't', arguments: {} } });
          if (a.status !== 200 || a.body?.output !== 'called t') goodFailures.push(`authed ${a.status} ${JSON.stringify(a.body).slice(0, 200)}`);
        }
      }
    };
    const sampler = async () => {
      while (Date.now() < end) {
        await new Promise((r) => setTimeout(r, 1000));
        if (baseline === undefined && Date.now() >= warmUntil) baseline = await settle();
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    };
    await Promise.all([attacker(0), attacker(1), attacker(2), goodKey(), sampler()]);
    // Every SSE answer left open and every hung call had its upstream socket closed by the broker.
    for (const stop = Date.now() + 10_000; (hu.sseClosed < sseAnswered || hu.hangClosed < hangTimedOut) && Date.now() < stop; ) await new Promise((r) => setTimeout(r, 50));
    const after = await settle();
    const logBytes = b.logs.reduce((n, l) => n + l.length, 0);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();

    const report = Object.fromEntries([...stats].map(([n, s]) => [n, `${s.runs} runs, ${s.unexpected} unexpected`]));
    console.log(
      `soak ${DURATION_S} s: good key ${good} calls, ${goodFailures.length} failures; RSS baseline ${MiB(baseline?.rss ?? 0)} MiB, after ${MiB(after.rss)} MiB, peak ${MiB(peak)} MiB; ` +
        `SSE answers ${sseAnswered} (sockets closed ${hu.sseClosed}), hung calls ${hangTimedOut} (closed ${hu.hangClosed}); heap used baseline ${MiB(baseline?.heapUsed ?? 0)} MiB, after ${MiB(after.heapUsed)} MiB; test-captured logs ${b.logs.length} lines ${MiB(logBytes)} MiB; /metrics ${metrics.length} bytes\n` +
        JSON.stringify(report, null, 1),
    );
    expect(goodFailures).toEqual([]);
    expect(good).toBeGreaterThan(DURATION_S);
    for (const [name, s] of stats) {
      expect(s.runs).toBeGreaterThan(0);
      expect({ name, unexpected: s.unexpected }).toEqual({ name, unexpected: 0 });
    }
    expect(after.rss - baseline!.rss).toBeLessThanOrEqual(RSS_BUDGET);
    expect(metrics).not.toContain('atk_');
    expect(metrics.length).toBeLessThan(200_000);
    expect(b.logs.join('')).not.toContain('caller-secret-77');
    expect(b.logs.join('')).not.toContain(ECHO_SECRET);
    expect({ sseClosed: hu.sseClosed >= sseAnswered, hangClosed: hu.hangClosed >= hangTimedOut }).toEqual({ sseClosed: true, hangClosed: true });
  }, (DURATION_S + 90) * 1000);
});
