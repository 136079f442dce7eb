import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMcpFixture } from './fixtures/mcpServer.js';
import { startBrokerProcess } from './fixtures/child.js';
import { ADMIN, KEY_A, record, startBroker } from './fixtures/broker.js';
import { readServersFile } from '../src/registry/fileStore.js';

const tmpConfig = (servers: object[] = []) => {
  const p = join(mkdtempSync(join(tmpdir(), 'ops-')), 'servers.config.json');
  writeFileSync(p, JSON.stringify({ servers }));
  return p;
};

describe('operations', () => {
  it('/metrics exposes route, upstream, cache and approval metrics labelled by server_label only', async () => {
    const mcp = await startMcpFixture();
    const b = await startBroker({ servers: [record('fx', mcp.url)] });
    try {
      await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'fx' } } });
      await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'm' } } });
      const res = await fetch(`${b.url}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toMatch(/broker_http_request_duration_seconds_count\{method="POST",route="\/v1\/mcp\/call",status="200"\} 1/);
      expect(text).toMatch(/broker_mcp_upstream_duration_seconds_count\{server_label="fx",method="tools\/call",outcome="ok"\} 1/);
      expect(text).toMatch(/broker_tool_cache_lookups_total\{server_label="fx",result="miss"\} 1/);
      expect(text).toContain('broker_mcp_open_sessions 1');
      expect(text).toContain('broker_pending_approvals 0');
      expect(text).toContain('broker_open_circuit_breakers 0');
      expect(text).not.toContain(String(mcp.port));
      expect(text).not.toContain(KEY_A);
      const health = await fetch(`${b.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok' });
    } finally {
      await b.close();
      await mcp.close();
    }
  });

  it('SIGTERM: /readyz turns 503 at once, in-flight calls complete, exit 0', async () => {
    const mcp = await startMcpFixture();
    const child = await startBrokerProcess({
      BROKER_CONFIG: tmpConfig([record('fx', mcp.url)]),
      BROKER_ADMIN_TOKEN: ADMIN,
      BROKER_DRAIN_DELAY_MS: '3000',
      BROKER_DRAIN_TIMEOUT_MS: '10000',
    });
    try {
      const call = (ms: number) =>
        fetch(`${child.url}/v1/mcp/call`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ tool: { type: 'mcp', server_label: 'fx' }, name: 'slow', arguments: { ms } }),
        }).then(async (r) => ({ status: r.status, body: await r.json() }));
      const inflight = call(1500);
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      child.proc.kill('SIGTERM');
      // "At once": the first /readyz after the signal is handled; poll so a loaded machine's
      // signal latency does not count, bounded well inside the 3 s drain delay.
      let ready = 200;
      for (const end = Date.now() + 2000; ready !== 503 && Date.now() < end; ) {
        ready = (await fetch(`${child.url}/readyz`)).status;
        if (ready !== 503) await new Promise((r) => setTimeout(r, 20));
      }
      expect(ready).toBe(503);
      expect((await fetch(`${child.url}/healthz`)).status).toBe(200);
      const during = await call(10); // still served during the drain delay
      expect(during.body.status).toBe('completed');
      const done = await inflight;
      expect(done).toMatchObject({ status: 200, body: { status: 'completed', output: 'waited 1500' } });
      expect(await child.exited).toBe(0);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      child.proc.kill('SIGKILL');
      await mcp.close();
    }
  }, 40_000);

  it('kill -9 during concurrent admin writes leaves a valid file with every acknowledged write', async () => {
    const config = tmpConfig();
    const child = await startBrokerProcess({ BROKER_CONFIG: config, BROKER_ADMIN_TOKEN: ADMIN });
    const acked: string[] = [];
    const write = (i: number) =>
      fetch(`${child.url}/admin/servers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ server_label: `s${i}`, server_url: 'http://127.0.0.1:9/mcp', allow_private_network: true }),
      }).then((r) => {
        if (r.status === 201) acked.push(`s${i}`);
      }, () => undefined);
    const writes = Array.from({ length: 200 }, (_, i) => write(i));
    for (const end = Date.now() + 10_000; acked.length < 20 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 5));
    child.proc.kill('SIGKILL');
    await Promise.all(writes);
    await child.exited;
    expect(acked.length).toBeGreaterThanOrEqual(20);
    const onDisk = (await readServersFile(config)).map((r) => r.server_label);
    for (const label of acked) expect(onDisk).toContain(label);
  }, 40_000);

  it('refuses to start in open mode on a non-loopback HOST, and on an invalid config', async () => {
    await expect(startBrokerProcess({ HOST: '0.0.0.0', BROKER_CONFIG: tmpConfig() })).rejects.toThrow(/open mode/);
    const bad = tmpConfig([{ server_label: 'x', server_url: 'nope' }]);
    await expect(startBrokerProcess({ BROKER_CONFIG: bad })).rejects.toThrow(/server "x", field server_url/);
    await expect(startBrokerProcess({ BROKER_CONFIG: tmpConfig(), APPROVAL_WEBHOOK_URL: 'http://127.0.0.1:9/h' })).rejects.toThrow(/APPROVAL_WEBHOOK_SECRET/);
  }, 60_000);

  it('prints a generated admin token once when none is set', async () => {
    const child = await startBrokerProcess({ BROKER_CONFIG: tmpConfig() });
    try {
      const token = /generated admin token: (\S+)/.exec(child.stderr())?.[1];
      expect(token).toBeDefined();
      const r = await fetch(`${child.url}/admin/servers`, { headers: { authorization: `Bearer ${token}` } });
      expect(r.status).toBe(200);
    } finally {
      child.proc.kill('SIGKILL');
    }
  }, 30_000);
});
