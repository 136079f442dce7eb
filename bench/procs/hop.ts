// Bench child: the least a proxy hop costs on this machine. A bare node:http server that
// forwards each POST body's tool call to the MCP server as one JSON-RPC tools/call over
// undici on a warm session and answers the result's JSON: no auth, no validation, no policy,
// no SDK. The broker's call ratio is read against this (broker ÷ hop, hop ÷ direct).
import { createServer } from 'node:http';
import { Agent, request } from 'undici';

const target = process.argv[2]!;
const agent = new Agent({ keepAliveTimeout: 60_000 });
let session: string | undefined;
let id = 0;

async function rpc(message: object): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
  if (session) headers['mcp-session-id'] = session;
  const r = await request(target, { method: 'POST', dispatcher: agent, headers, body: JSON.stringify(message) });
  const sid = r.headers['mcp-session-id'];
  if (typeof sid === 'string') session = sid;
  const text = await r.body.text();
  if (!('id' in message)) return undefined;
  // JSON or one SSE event: the answer is the last `data:` line.
  const json = text.startsWith('{') ? text : text.split('\n').filter((l) => l.startsWith('data:')).pop()!.slice(5);
  return JSON.parse(json);
}

void (async () => {
  await rpc({ jsonrpc: '2.0', id: ++id, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'hop', version: '1' } } });
  await rpc({ jsonrpc: '2.0', method: 'notifications/initialized' });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; arguments: unknown };
      const answer = (await rpc({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: body.name, arguments: body.arguments } })) as { result: unknown };
      const s = JSON.stringify({ type: 'mcp_call', output: answer.result });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
      res.end(s);
    });
  });
  server.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/call` }));
})();
