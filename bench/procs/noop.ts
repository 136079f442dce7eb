// Bench child: the floor any JSON service pays on this machine — parse a JSON body, answer a
// listing-sized JSON document, nothing else: on express 5 (express.json + res.json), and on
// bare node:http (one read, JSON.parse, JSON.stringify, res.end).
import { createServer } from 'node:http';
import express from 'express';

const app = express();
app.use(express.json());
const body = { id: 'mcpl_0', type: 'mcp_list_tools', server_label: 'fx', tools: Array.from({ length: 6 }, (_, i) => ({ name: `tool_${i}`, description: 'x'.repeat(40), input_schema: { type: 'object', properties: { a: { type: 'number' } } }, annotations: { read_only: true } })) };
app.post('/noop', (_req, res) => void res.json(body));
const raw = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const s = JSON.stringify(body);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(s) });
    res.end(s);
  });
});
const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;
const server = app.listen(0, '127.0.0.1', () =>
  raw.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${port(server)}/noop`, rawUrl: `http://127.0.0.1:${port(raw)}/noop` })),
);
process.on('message', (m) => {
  if (m === 'cpu') {
    const c = process.cpuUsage();
    process.send!({ cpuMs: (c.user + c.system) / 1000 });
  }
});
