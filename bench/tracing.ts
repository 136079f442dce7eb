/**
 * npm run bench:tracing — what OpenTelemetry costs. Three brokers side by side, each its own
 * process, against one SDK MCP server and one instant fake model:
 *   base: a build of the code without tracing (BENCH_BASELINE_MAIN, default: `main` built
 *         into a temporary directory), so "off" can be compared with "no tracing code at all";
 *   off:  this build, no OTEL_* variables (the SDK is never loaded);
 *   on:   this build exporting http/protobuf to a local OTLP receiver (every span sampled).
 * Rounds are interleaved (base, off, on, base, …) so machine load hits all three alike;
 * each ratio is the median over rounds of p50 latency ÷ base p50 in the same round.
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
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const TURNS = Number(process.env.BENCH_TURNS ?? 120);

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
  const ref = process.env.BENCH_BASELINE_REF ?? 'main';
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

const median = (xs: number[]) => summarize(xs).p50;

/** CPU time (user + system, ms) a process has used: robust to other load on the machine. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** p50 latency and the broker's CPU ms per request over one batch. */
async function measure(b: { base: string; proc: ChildProcess }, path: string, body: unknown, n: number) {
  const c0 = cpuMs(b.proc.pid!);
  const lat = await p50(b.base, path, body, n);
  return { lat, cpu: (cpuMs(b.proc.pid!) - c0) / n };
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
    type Series = Record<string, number[]>;
    const series = () => ({ base: [], off: [], on: [] }) as Series;
    const lat = { call: series(), turn: series() };
    const cpu = { call: series(), turn: series() };
    const latRatio = { call: series(), turn: series() };
    const cpuRatio = { call: series(), turn: series() };
    for (let round = 0; round < ROUNDS; round++) {
      // Rotate the order so no variant always goes first.
      const order = names.map((_, i) => names[(i + round) % names.length]!);
      for (const [kind, path, body, n] of [['call', '/v1/mcp/call', CALL, CALLS], ['turn', '/v1/responses', TURN, TURNS]] as const) {
        const got: Record<string, { lat: number; cpu: number }> = {};
        for (const v of order) got[v] = await measure(brokers[v], path, body, n);
        for (const v of names) {
          lat[kind][v]!.push(got[v]!.lat);
          cpu[kind][v]!.push(got[v]!.cpu);
          latRatio[kind][v]!.push(got[v]!.lat / got.base!.lat);
          cpuRatio[kind][v]!.push(got[v]!.cpu / got.base!.cpu);
        }
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${kind}: ${names.map((v) => `${v} p50 ${ms(got[v]!.lat)} cpu ${ms(got[v]!.cpu)}/req`).join(', ')}\n`);
      }
    }
    const spans = otlp.requests.length;
    console.log(`\n| measurement (median of ${ROUNDS} interleaved rounds) | result | target |\n|---|---|---|`);
    for (const kind of ['call', 'turn'] as const) {
      const what = kind === 'call' ? 'POST /v1/mcp/call' : 'POST /v1/responses turn (2 model calls, 1 tools/call)';
      console.log(`| ${what} p50: base / off / on | ${names.map((v) => ms(median(lat[kind][v]!))).join(' / ')} | |`);
      console.log(`| ${what} broker CPU per request: base / off / on | ${names.map((v) => ms(median(cpu[kind][v]!))).join(' / ')} | |`);
      console.log(`| ${kind}: off ÷ base, p50 latency / CPU per request | ${median(latRatio[kind].off!).toFixed(3)} / ${median(cpuRatio[kind].off!).toFixed(3)} | ≤ 1.05 |`);
      console.log(`| ${kind}: on ÷ base, p50 latency / CPU per request | ${median(latRatio[kind].on!).toFixed(3)} / ${median(cpuRatio[kind].on!).toFixed(3)} | ≤ 1.15 |`);
    }
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
