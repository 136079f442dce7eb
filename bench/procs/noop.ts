// Bench child: the floor any express 5 JSON service pays on this machine — parse a JSON
// body, answer a listing-sized JSON document, nothing else.
import express from 'express';

const app = express();
app.use(express.json());
const body = { id: 'mcpl_0', type: 'mcp_list_tools', server_label: 'fx', tools: Array.from({ length: 6 }, (_, i) => ({ name: `tool_${i}`, description: 'x'.repeat(40), input_schema: { type: 'object', properties: { a: { type: 'number' } } }, annotations: { read_only: true } })) };
app.post('/noop', (_req, res) => void res.json(body));
const server = app.listen(0, '127.0.0.1', () => process.send!({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}/noop` }));
