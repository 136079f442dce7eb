/**
 * npm run bench:tracing — what OpenTelemetry costs. Three brokers side by side, each its own
 * process, against one SDK MCP server and one instant fake model:
 *   base: a build of the code without tracing (BENCH_BASELINE_MAIN, default: the last commit before tracing landed, built
 *         into a temporary directory), so "off" can be compared with "no tracing code at all";
 *   off:  this build, no OTEL_* variables (the SDK is never loaded);
 *   on:   this build exporting http/protobuf to a local OTLP receiver (every span sampled).
 * Requests are interleaved (base, off, on, rotated) so machine load hits all three alike;
 * latency is p50 per variant, CPU each broker process's user+system time per request.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { startOtlpReceiver } from '../test/fixtures/otlpReceiver.js';
import { summarize, ms } from './stats.js';

const ROOT = join(__dirname, '../..');
const KEY = 'bench-key';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const TURNS = Number(process.env.BENCH_TURNS ?? 600);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function child<T>(file: string): Promise<{ proc: ChildProcess; info: T }> {
  const proc = fork(join(__dirname, file), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve) => proc.once('message', (info) => resolve({ proc, info: info as T })));
}

/** `main` (or BENCH_BASELINE_MAIN) compiled: the broker without any tracing code. */
function baselineMain(): string {
  if (process.env.BENCH_BASELINE_MAIN) return process.env.BENCH_BASELINE_MAIN;
  const dir = mkdtempSync(join(tmpdir(), 'bench-base-'));
  // The last main before tracing landed (the perf2 merge): the same code without any tracing.
  const ref = process.env.BENCH_BASELINE_REF ?? '1954429';
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive ${ref} | tar -x -C "${dir}"`]);
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.build.json')], { stdio: 'inherit' });
  const main = join(dir, 'dist/src/main.js');
  return existsSync(main) ? main : join(dir, 'dist/main.js');
}

async function startBroker(main: string, config: string, modelUrl: string, extra: Record<string, string>) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('OTEL_')) delete env[k];
  const proc = spawn(process.execPath, [main], {
    env: {
      ...env,
      PORT: String(port),
      BROKER_CONFIG: config,
      BROKER_DEMO: 'off',
      BROKER_ADMIN_TOKEN: 'bench-admin',
      BROKER_API_KEYS: KEY,
      UPSTREAM_BASE_URL: modelUrl,
      LOG_LEVEL: 'warn',
      ...extra,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 400; i++) {
    if ((await fetch(`${base}/readyz`).catch(() => undefined))?.ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proc, base };
}

const gateway = new Agent({ keepAliveTimeout: 60_000, connections: 16 });
async function post(base: string, path: string, body: unknown): Promise<unknown> {
  const r = await request(base + path, {
    method: 'POST',
    dispatcher: gateway,
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` },
    body: JSON.stringify(body),
  });
  const json = await r.body.json();
  if (r.statusCode !== 200) throw new Error(`${path}: HTTP ${r.statusCode} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

const CALL = { tool: { type: 'mcp', server_label: 'fx' }, name: 'echo', arguments: { text: 'bench' } };
const TURN = { model: 'bench', input: 'add 1 and 2', tools: [{ type: 'mcp', server_label: 'fx', require_approval: 'never' }] };

async function p50(base: string, path: string, body: unknown, n: number): Promise<number> {
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await post(base, path, body);
    lat.push(performance.now() - t);
  }
  return summarize(lat).p50;
}


/** CPU time (user + system, ms) a process has used: robust to other load on the machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}


async function main() {
  const baseline = baselineMain();
  const mcp = await child<{ url: string }>('procs/mcp.js');
  const model = await child<{ url: string }>('procs/model.js');
  const otlp = await startOtlpReceiver();
  const dir = mkdtempSync(join(tmpdir(), 'bench-tracing-'));
  const config = join(dir, 'servers.config.json');
  writeFileSync(config, JSON.stringify({ servers: [{ server_label: 'fx', server_url: mcp.info.url, require_approval: 'never', allow_private_network: true }] }));
  const self = join(ROOT, 'dist/src/main.js');
  const brokers = {
    base: await startBroker(baseline, config, model.info.url, {}),
    off: await startBroker(existsSync(self) ? self : join(ROOT, 'dist/main.js'), config, model.info.url, {}),
    on: await startBroker(existsSync(self) ? self : join(ROOT, 'dist/main.js'), config, model.info.url, { OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_SERVICE_NAME: 'bench' }),
  };
  const names = ['base', 'off', 'on'] as const;
  try {
    // Warm up every broker (sessions, listings, JIT).
    for (const n of names) {
      await p50(brokers[n].base, '/v1/mcp/call', CALL, 200);
      await p50(brokers[n].base, '/v1/responses', TURN, 50);
    }
    // Interleaved per request (base, off, on, then rotated) so that load from elsewhere on
    // the machine falls on all three alike; CPU is each broker's total over the same window.
    console.log(`\n| measurement (requests interleaved across the three brokers) | result | target |\n|---|---|---|`);
    for (const [kind, path, body, n] of [['call', '/v1/mcp/call', CALL, CALLS * ROUNDS], ['turn', '/v1/responses', TURN, TURNS * ROUNDS]] as const) {
      const lat: Record<string, number[]> = { base: [], off: [], on: [] };
      const cpu0 = Object.fromEntries(names.map((v) => [v, cpuMs(brokers[v].proc.pid!)]));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < names.length; j++) {
          const v = names[(i + j) % names.length]!;
          const t = performance.now();
          await post(brokers[v].base, path, body);
          lat[v]!.push(performance.now() - t);
        }
      }
      const cpu = Object.fromEntries(names.map((v) => [v, (cpuMs(brokers[v].proc.pid!) - cpu0[v]!) / n]));
      const p = Object.fromEntries(names.map((v) => [v, summarize(lat[v]!)]));
      const what = kind === 'call' ? 'POST /v1/mcp/call' : 'POST /v1/responses turn (2 model calls, 1 tools/call)';
      console.log(`| ${what}, n=${n} each: p50 base / off / on | ${names.map((v) => ms(p[v]!.p50)).join(' / ')} | |`);
      console.log(`| ${what}: p99 base / off / on | ${names.map((v) => ms(p[v]!.p99)).join(' / ')} | |`);
      console.log(`| ${what}: broker CPU per request base / off / on | ${names.map((v) => ms(cpu[v]!)).join(' / ')} | |`);
      console.log(`| ${kind}: tracing off ÷ no tracing code (p50 / CPU) | ${(p.off!.p50 / p.base!.p50).toFixed(3)} / ${(cpu.off! / cpu.base!).toFixed(3)} | ≤ 1.05 |`);
      console.log(`| ${kind}: tracing on ÷ no tracing code (p50 / CPU) | ${(p.on!.p50 / p.base!.p50).toFixed(3)} / ${(cpu.on! / cpu.base!).toFixed(3)} | ≤ 1.15 |`);
      // The base build is older than this one (it predates later speed-ups too), so on ÷ off of this
      // build is what turning tracing on costs.
      console.log(`| ${kind}: tracing on ÷ off, this build (p50 / CPU) | ${(p.on!.p50 / p.off!.p50).toFixed(3)} / ${(cpu.on! / cpu.off!).toFixed(3)} | |`);
    }
    const spans = otlp.requests.length;
    console.log(`| OTLP export requests received (on) | ${spans} | > 0 |`);
    if (spans === 0) throw new Error('the traced broker exported nothing');
  } finally {
    for (const n of names) brokers[n].proc.kill('SIGKILL');
    mcp.proc.kill();
    model.proc.kill();
    await otlp.close();
    await gateway.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
