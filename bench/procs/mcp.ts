// Bench child: a real SDK MCP server on loopback; reports its port and counters over IPC.
import { startMcpFixture } from '../../test/fixtures/mcpServer.js';

void (async () => {
  const mcp = await startMcpFixture();
  process.on('message', (m) => {
    if (m === 'counters') process.send!({ counters: { list: mcp.counters.list, initialize: mcp.counters.initialize, calls: mcp.counters.calls } });
  });
  process.send!({ url: mcp.url });
})();
