// Bench child: real SDK MCP servers on loopback — a session-based 2025-era one (SDK v1) and a
// stateless 2026-07-28 one (SDK v2) — reports their URLs and counters over IPC.
import { startMcpFixture } from '../../test/fixtures/mcpServer.js';
import { startV2Server } from '../../test/fixtures/v2Server.js';

void (async () => {
  const mcp = await startMcpFixture();
  const modern = await startV2Server('stateless', { listTtlMs: 300_000 });
  // The fixture records every request's headers for tests; a long run keeps none.
  setInterval(() => mcp.counters.headers.splice(0), 1000).unref();
  process.on('message', (m) => {
    if (m === 'counters') process.send!({ counters: { list: mcp.counters.list, initialize: mcp.counters.initialize, calls: mcp.counters.calls } });
  });
  process.send!({ url: mcp.url, modernUrl: modern.url });
})();
