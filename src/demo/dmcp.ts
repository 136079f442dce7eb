import { randomInt } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { describeRoll, roll } from './dice.js';
import { mountMcpSessions } from './sessions.js';

/** The bundled demo MCP server `dmcp`: a dice roller with two read-only tools. */
export function createDiceServer(): McpServer {
  const server = new McpServer({ name: 'dmcp', version: '1.0.0' });
  server.registerTool(
    'roll',
    {
      description: 'Roll dice in NdM+K notation',
      inputSchema: { notation: z.string().describe('Dice notation such as 2d4+1') },
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
      inputSchema: { times: z.number().int().min(1).max(100).default(1).describe('How many flips') },
      annotations: { readOnlyHint: true },
    },
    async ({ times }) => {
      const flips = Array.from({ length: times }, () => (randomInt(2) ? 'heads' : 'tails'));
      return { content: [{ type: 'text', text: flips.join(', ') }] };
    },
  );
  return server;
}

/** Serves a fresh McpServer per session over Streamable HTTP at /mcp. */
export async function startDemoServer(port: number, host = '127.0.0.1'): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  const sessions = mountMcpSessions(app, '/mcp', createDiceServer);

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(port, host, () => resolve(s));
    s.on('error', reject);
  });
  const addr = server.address() as { port: number };
  return {
    url: `http://${host}:${addr.port}/mcp`,
    async close() {
      await sessions.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}
