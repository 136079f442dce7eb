// Bench child: the least a proxy hop costs on this machine. A bare node:http server that
// forwards each POST body's tool call to the MCP server as one JSON-RPC tools/call over
// undici on a warm session and answers the result's JSON: no auth, no validation, no policy,
// no SDK. The broker's call ratio is read against this (broker ÷ hop, hop ÷ direct).
// POST /turn (with a model URL as the second argument) is a bare Responses turn the same way:
// model POST → tools/call → model POST, answering the final text.
import { createServer } from 'node:http';
import { Agent, request } from 'undici';

const target = process.argv[2]!;
const model = process.argv[3];
/** The tools shown to the model (the bench passes every tool of the server, as the broker shows them). */
const modelTools = process.argv[4] ? (JSON.parse(process.argv[4]) as unknown[]) : undefined;
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
  const tool = { type: 'function', function: { name: 'add', description: 'Add two numbers', parameters: { type: 'object', properties: { a: { type: 'number' }, b: { type: 'number' } }, required: ['a', 'b'] } } };
  const chat = async (messages: unknown[]) => {
    const r = await request(`${model}/chat/completions`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: JSON.stringify({ model: 'm', messages, tools: modelTools ?? [tool], stream: false }) });
    return ((await r.body.json()) as { choices: Array<{ message: { content: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> } }> }).choices[0]!.message;
  };
  const turn = async (input: string) => {
    const user = { role: 'user', content: input };
    const first = await chat([user]);
    const call = first.tool_calls![0]!;
    const answer = (await rpc({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: call.function.name, arguments: JSON.parse(call.function.arguments) } })) as { result: { content: Array<{ text: string }> } };
    const text = answer.result.content.map((c) => c.text).join('');
    const second = await chat([user, { role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: call.function }] }, { role: 'tool', tool_call_id: call.id, content: text }]);
    return { object: 'response', status: 'completed', output: [{ type: 'mcp_call', output: text }, { type: 'message', content: [{ type: 'output_text', text: second.content }] }] };
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; arguments: unknown; input?: string };
      let out: unknown;
      if (req.url === '/turn') out = await turn(body.input ?? '');
      else {
        const answer = (await rpc({ jsonrpc: '2.0', id: ++id, method: 'tools/call', params: { name: body.name, arguments: body.arguments } })) as { result: unknown };
        out = { type: 'mcp_call', output: answer.result };
      }
      const s = JSON.stringify(out);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s) });
      res.end(s);
    });
  });
  // Its CPU so far (ms), for the same per-request comparison as the broker's.
  process.on('message', (m) => {
    if (m === 'cpu') {
      const c = process.cpuUsage();
      process.send!({ cpuMs: (c.user + c.system) / 1000 });
    }
  });
  server.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/call` }));
})();
