import { randomUUID } from 'node:crypto';
import type { Router, RequestHandler } from 'express';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';

const sessionNotFound = { jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null };

/**
 * Stateful Streamable HTTP at `path`: a fresh McpServer per session (so each can send
 * list_changed on its own GET stream). Returns a close-all for shutdown.
 */
export function mountMcpSessions(app: Router, path: string, build: () => McpServer): { close(): Promise<void> } {
  const sessions = new Map<string, StreamableHTTPServerTransport>();
  app.post(path, async (req, res) => {
    const id = req.header('mcp-session-id');
    let transport = id ? sessions.get(id) : undefined;
    if (!transport) {
      if (id || !isInitializeRequest(req.body)) return void res.status(404).json(sessionNotFound);
      const t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (sid) => void sessions.set(sid, t) });
      t.onclose = () => t.sessionId && sessions.delete(t.sessionId);
      await build().connect(t);
      transport = t;
    }
    await transport.handleRequest(req, res, req.body);
  });
  const bySession: RequestHandler = async (req, res) => {
    const t = sessions.get(req.header('mcp-session-id') ?? '');
    if (!t) return void res.status(404).json(sessionNotFound);
    await t.handleRequest(req, res);
  };
  app.get(path, bySession);
  app.delete(path, bySession);
  return {
    async close() {
      for (const t of sessions.values()) await t.close().catch(() => undefined);
      sessions.clear();
    },
  };
}
