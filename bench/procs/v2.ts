// Bench child: an SDK v2 MCP server (createMcpHandler, dual era) on loopback; reports its URL.
import { startTransportV2Server } from '../../test/fixtures/transportV2Server.js';

void (async () => {
  const fx = await startTransportV2Server({ mode: process.env.V2_MODE === 'modern' ? 'modern' : 'dual' });
  process.send!({ url: fx.url });
})();
