/**
 * In-process interleaved A/B of the JSON edges on express 5: (A) express.json + res.json, as the
 * broker's routes do; (B) one body read + JSON.parse under the same limit + one JSON.stringify +
 * res.end. Same client (undici keep-alive), same bodies, blocks alternated; the process's CPU
 * (process.cpuUsage: client and server) per request, and p50 latency, for a small list_tools-like
 * request and a 32 KB Responses-like one.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import { Agent, request } from 'undici';
import { summarize, ms } from './stats.js';

const LIMIT = 1024 * 1024;
const item = { id: 'mcpl_0', type: 'mcp_list_tools', server_label: 'fx', tools: Array.from({ length: 6 }, (_, i) => ({ name: `tool_${i}`, description: 'x'.repeat(40), input_schema: { type: 'object', properties: { a: { type: 'number' } } }, annotations: { read_only: true } })) };

function readJson(limit: number) {
  return (req: Request, _res: Response, next: NextFunction) => {
    const len = Number(req.headers['content-length']);
    if (len > limit) return next(Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 }));
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n <= limit) chunks.push(c);
    });
    req.on('end', () => {
      if (n > limit) return next(Object.assign(new Error('too large'), { type: 'entity.too.large', status: 413 }));
      if (n === 0) return ((req as { body?: unknown }).body = undefined), next();
      try {
        req.body = JSON.parse(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
      } catch {
        return next(Object.assign(new Error('bad json'), { type: 'entity.parse.failed', status: 400 }));
      }
      next();
    });
    req.on('error', next);
  };
}

function sendJson(res: Response, body: unknown) {
  const s = JSON.stringify(body);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(s));
  res.end(s);
}

async function main() {
  const app = express();
  app.set('etag', false);
  app.post('/a', express.json({ limit: LIMIT, type: () => true }), (req, res) => void res.json(req.body.big ? { ...item, n: req.body.big.length } : item));
  app.post('/b', readJson(LIMIT), (req, res) => sendJson(res, req.body.big ? { ...item, n: req.body.big.length } : item));
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  const bodies = {
    small: JSON.stringify({ tool: { type: 'mcp', server_label: 'fx' } }),
    large: JSON.stringify({ model: 'm', big: Array.from({ length: 400 }, (_, i) => ({ role: 'user', content: `message ${i} `.repeat(6) })) }),
  };
  for (const [size, body] of Object.entries(bodies)) {
    const lat: Record<string, number[]> = { a: [], b: [] };
    const cpu: Record<string, number> = { a: 0, b: 0 };
    const per = 200;
    const blocks = 20;
    for (let blk = 0; blk < blocks + 2; blk++) {
      for (const v of blk % 2 ? ['a', 'b'] : ['b', 'a']) {
        const c0 = process.cpuUsage();
        for (let i = 0; i < per; i++) {
          const t = performance.now();
          const r = await request(`${base}/${v}`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body });
          await r.body.json();
          if (blk >= 2) lat[v]!.push(performance.now() - t);
        }
        const d = process.cpuUsage(c0);
        if (blk >= 2) cpu[v]! += (d.user + d.system) / 1000;
      }
    }
    const n = blocks * per;
    const a = summarize(lat.a!);
    const b = summarize(lat.b!);
    console.log(`| JSON edges, ${size} body: express.json + res.json | ${ms(a.p50)} p50, ${ms(cpu.a! / n)} CPU/request |`);
    console.log(`| JSON edges, ${size} body: one read + JSON.parse, JSON.stringify + res.end | ${ms(b.p50)} p50, ${ms(cpu.b! / n)} CPU/request (CPU ${(cpu.b! / cpu.a!).toFixed(2)}×) |`);
  }
  server.close();
  await agent.close();
}

void main();
