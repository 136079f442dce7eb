import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startBroker, record, ADMIN } from './fixtures/broker.js';

/** A dual-stack server that counts every request: the guard must keep it at zero. */
async function countingServer(): Promise<{ port: number; hits: () => number; close(): Promise<void> }> {
  let hits = 0;
  const server: Server = createServer((_req, res) => {
    hits++;
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen({ port: 0, host: '::', ipv6Only: false }, () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    hits: () => hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

describe('egress guard at connect time', () => {
  it('refuses every loopback form for caller URLs and lets them through once allowed', async () => {
    const target = await countingServer();
    const p = target.port;
    const forms = [`127.0.0.1:${p}`, `[::1]:${p}`, `[::ffff:127.0.0.1]:${p}`, `0x7f000001:${p}`, `2130706433:${p}`, `127.1:${p}`, `0.0.0.0:${p}`, `[::]:${p}`, `localhost:${p}`];
    const strict = await startBroker({ env: { BROKER_EGRESS_ALLOW_HTTP: 'true' } });
    try {
      for (const host of forms) {
        const r = await strict.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'x', server_url: `http://${host}/mcp` } } });
        expect([r.status, r.body.error.code, r.body.error.param, host]).toEqual([400, 'egress_denied', 'tool.server_url', host]);
      }
      expect(target.hits()).toBe(0);
    } finally {
      await strict.close();
    }
    const widened = await startBroker({ env: { BROKER_EGRESS_ALLOW_HTTP: 'true', BROKER_EGRESS_ALLOW_CIDRS: '127.0.0.0/8,::1/128' } });
    try {
      const r = await widened.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'x', server_url: `http://127.0.0.1:${p}/mcp` } } });
      expect(r.status).toBe(424); // it is not an MCP server, but it was reached
      expect(r.body.error.code).not.toBe('egress_denied');
      expect(target.hits()).toBeGreaterThan(0);
      const v6 = await widened.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'y', server_url: `http://[::1]:${p}/mcp` } } });
      expect(v6.body.error.code).not.toBe('egress_denied');
      const zero = await widened.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'z', server_url: `http://0.0.0.0:${p}/mcp` } } });
      expect(zero.status).toBe(400);
      expect(zero.body.error.code).toBe('egress_denied');
    } finally {
      await widened.close();
      await target.close();
    }
  });

  it('refuses bad caller URLs with 400 before any connection', async () => {
    const target = await countingServer();
    const b = await startBroker();
    try {
      for (const url of [`http://127.0.0.1:${target.port}/`, 'file:///etc/passwd', `https://u:p@127.0.0.1:${target.port}/`, 'gopher://x', `https://127.0.0.1:${target.port}/#f`]) {
        const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'x', server_url: url } } });
        expect(r.status).toBe(400);
        expect(r.body.error.param).toBe('tool.server_url');
      }
      expect(target.hits()).toBe(0);
    } finally {
      await b.close();
      await target.close();
    }
  });

  it('a loaded admin record without allow_private_network fails like an unreachable server', async () => {
    const target = await countingServer();
    const b = await startBroker({ servers: [record('priv', `http://127.0.0.1:${target.port}/mcp`, { allow_private_network: false })] });
    try {
      const r = await b.call('POST', '/v1/mcp/list_tools', { body: { tool: { type: 'mcp', server_label: 'priv' } } });
      expect(r.status).toBe(424);
      expect(r.body.error.code).toBe('egress_denied');
      const c = await b.call('POST', '/v1/mcp/call', { body: { tool: { type: 'mcp', server_label: 'priv' }, name: 'x' } });
      expect(c.status).toBe(424);
      expect(target.hits()).toBe(0);
      const admin = await b.call('PUT', '/admin/servers/priv', { token: ADMIN, body: { server_url: `http://[::1]:${target.port}/mcp` } });
      expect(admin.status).toBe(400);
      expect(admin.body.error.code).toBe('egress_denied');
    } finally {
      await b.close();
      await target.close();
    }
  });
});
