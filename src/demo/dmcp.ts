import { randomInt } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { z } from 'zod';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { describeRoll, roll } from './dice.js';

/** The bundled demo MCP server `dmcp`: a dice roller with two read-only tools. */
export function createDiceServer(): McpServer {
  // The tools never change: let 2026-07-28 clients cache the listing (SEP-2549 ttlMs).
  const server = new McpServer({ name: 'dmcp', version: '2.0.0' }, { cacheHints: { 'tools/list': { ttlMs: 300_000, cacheScope: 'public' } } });
  server.registerTool(
    'roll',
    {
      description: 'Roll dice in NdM+K notation',
      inputSchema: z.object({ notation: z.string().describe('Dice notation such as 2d4+1') }),
      annotations: { readOnlyHint: true },
    },
    async ({ notation }) => {
      try {
        return { content: [{ type: 'text', text: describeRoll(roll(notation)) }] };
      } catch (e) {
        return { isError: true, content: [{ type: 'text', text: (e as Error).message }] };
      }
    },
  );
  server.registerTool(
    'flip',
    {
      description: 'Flip a fair coin a number of times',
      inputSchema: z.object({ times: z.number().int().min(1).max(100).default(1).describe('How many flips') }),
      annotations: { readOnlyHint: true },
    },
    async ({ times }) => {
      const flips = Array.from({ length: times }, () => (randomInt(2) ? 'heads' : 'tails'));
      return { content: [{ type: 'text', text: flips.join(', ') }] };
    },
  );
  return server;
}

/**
 * Serves the dice server at /mcp in both MCP eras: the 2026-07-28 revision (stateless,
 * server/discover) and 2025-era clients (initialize, served statelessly per request).
 */
export async function startDemoServer(port: number, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const handler = createMcpHandler(() => createDiceServer(), { legacy: 'stateless' });
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  const node = toNodeHandler(handler);
  app.all('/mcp', (req, res) => node(req, res, req.body));

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.on('error', reject);
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${host}:${addr.port}/mcp`,
    async close() {
      await handler.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}
