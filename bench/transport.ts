/**
 * npx tsx bench/transport.ts (or node dist-bench/bench/transport.js): the MCP client transport's
 * own cost. An SDK v2 server (dual era) and the v1 legacy fixture each run in a child process;
 * this process is the client. Per variant, on one warm session: callTool latency (p50/p99) and
 * this process's CPU per call (process.cpuUsage), blocks of calls interleaved A/B/C so every
 * variant sees the same machine load.
 *   sdk    — v2 Client over the SDK's StreamableHTTPClientTransport (fetch)
 *   undici — v2 Client over src/mcp/undiciTransport.ts (Dispatcher.request)
 *   raw    — the floor: the same request bytes POSTed with undici.request, body parsed
 */
import { fork, type ChildProcess } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { Client, StreamableHTTPClientTransport, type Transport } from '@modelcontextprotocol/client';
import { summarize, ms } from './stats.js';

const ext = __filename.endsWith('.ts') ? '.ts' : '.js';
function child(file: string, env: Record<string, string> = {}): Promise<{ proc: ChildProcess; url: string }> {
  const proc = fork(join(__dirname, file + ext), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
  return new Promise((resolve) => proc.once('message', (m) => resolve({ proc, url: (m as { url: string }).url })));
}

type Variant = { name: string; call: () => Promise<unknown>; close: () => Promise<void> };

async function loadUndiciTransport(): Promise<((url: URL, agent: Agent) => Transport) | undefined> {
  try {
    const mod = await import('../src/mcp/undiciTransport.js');
    return (url, agent) => new mod.UndiciTransport(url, { dispatcher: agent, maxBytes: 4 << 20 });
  } catch {
    return undefined;
  }
}

async function variants(url: string, mode: 'auto' | 'legacy'): Promise<Variant[]> {
  const agent = new Agent({ keepAliveTimeout: 60_000 });
  const args = { name: 'echo', arguments: { text: 'bench' } };
  const out: Variant[] = [];
  // Captures one tools/call request as the SDK transport sends it, for the raw floor.
  let captured: { headers: Record<string, string>; body: string } | undefined;
  const sdk = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode } });
  const sdkT = new StreamableHTTPClientTransport(new URL(url), {
    fetch: (u, init) => {
      if (!captured && typeof init?.body === 'string' && init.body.includes('"tools/call"')) captured = { headers: Object.fromEntries(new Headers(init.headers as HeadersInit)), body: init.body };
      // As the product does: no listener-leak warnings on the SDK's long-lived signal.
      if (init?.signal) setMaxListeners(1_000_000, init.signal);
      return fetch(u, init);
    },
  });
  await sdk.connect(sdkT);
  await sdk.callTool(args);
  out.push({ name: 'sdk', call: () => sdk.callTool(args), close: async () => (await sdkT.terminateSession().catch(() => undefined), await sdk.close()) });
  const make = await loadUndiciTransport();
  if (make) {
    const c = new Client({ name: 'bench', version: '1' }, { versionNegotiation: { mode } });
    const t = make(new URL(url), agent);
    await c.connect(t);
    out.push({ name: 'undici', call: () => c.callTool(args), close: async () => (await (t as { terminateSession?: () => Promise<void> }).terminateSession?.().catch(() => undefined), await c.close()) });
  }
  const cap = captured!;
  let id = 1_000_000;
  out.push({
    name: 'raw',
    call: async () => {
      const body = cap.body.replace(/"id":\d+/, `"id":${id++}`);
      const r = await request(url, { method: 'POST', dispatcher: agent, headers: cap.headers, body });
      const text = await r.body.text();
      const json = text.startsWith('{') ? text : text.slice(text.indexOf('data: ') + 6, text.indexOf('\n', text.indexOf('data: ')));
      const msg = JSON.parse(json);
      if (!msg.result) throw new Error(`raw call failed: ${text.slice(0, 200)}`);
      return msg;
    },
    close: async () => undefined,
  });
  return out;
}

async function measure(label: string, vs: Variant[], blocks = 40, perBlock = 50) {
  const lat: Record<string, number[]> = {};
  const cpu: Record<string, number> = {};
  for (const v of vs) (lat[v.name] = []), (cpu[v.name] = 0);
  for (let b = 0; b < blocks + 4; b++) {
    const order = b % 2 ? vs : [...vs].reverse();
    for (const v of order) {
      const c0 = process.cpuUsage();
      for (let i = 0; i < perBlock; i++) {
        const t = performance.now();
        await v.call();
        if (b >= 4) lat[v.name]!.push(performance.now() - t);
      }
      const c = process.cpuUsage(c0);
      if (b >= 4) cpu[v.name]! += c.user + c.system;
    }
  }
  const n = blocks * perBlock;
  const floor = summarize(lat.raw!).p50;
  const floorCpu = cpu.raw! / n;
  for (const v of vs) {
    const s = summarize(lat[v.name]!);
    const cpuPer = cpu[v.name]! / n / 1000;
    console.log(`| ${label} | ${v.name} | ${ms(s.p50)} / ${ms(s.p99)} | ${(s.p50 / floor).toFixed(2)} | ${cpuPer.toFixed(3)} ms | ${(cpu[v.name]! / n / floorCpu).toFixed(2)} |`);
  }
}

async function main() {
  const v2 = await child('procs/v2');
  const v1 = await child('procs/mcp');
  console.log('| server | client transport | callTool p50 / p99 | p50 ÷ raw | client CPU per call | CPU ÷ raw |\n|---|---|---|---|---|---|');
  try {
    for (const [label, url, mode] of [
      ['v2 server, 2026-07-28 (JSON answers)', v2.url, 'auto'],
      ['v2 server, 2025-11-25 stateless (SSE answers)', v2.url, 'legacy'],
      ['v1 server, 2025-11-25 session (SSE answers)', v1.url, 'legacy'],
    ] as const) {
      const vs = await variants(url, mode);
      await measure(label, vs);
      for (const v of vs) await v.close();
    }
  } finally {
    v2.proc.kill();
    v1.proc.kill();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
