import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { composeBroker } from './compose.js';
import { ConfigError, isLoopbackHost, parseEnv } from './config/env.js';
import { createLogger, SecretValues } from './obs/logger.js';
import { startDemoServer } from './demo/dmcp.js';
import { startTracing, stopTracing, TracingConfigError } from './obs/tracing.js';

async function main() {
  const env = parseEnv(process.env);
  startTracing(process.env);
  const secrets = new SecretValues();
  const logger = createLogger(env.LOG_LEVEL, secrets);

  let adminToken = env.BROKER_ADMIN_TOKEN;
  if (!adminToken) {
    adminToken = `adm_${randomBytes(24).toString('base64url')}`;
    process.stderr.write(`BROKER_ADMIN_TOKEN not set; generated admin token: ${adminToken}\n`);
  }
  if (env.BROKER_EGRESS_ALLOW_CIDRS.length || env.BROKER_EGRESS_ALLOW_HTTP) {
    logger.warn({ cidrs: env.BROKER_EGRESS_ALLOW_CIDRS, http: env.BROKER_EGRESS_ALLOW_HTTP }, 'egress guard widened for caller-supplied URLs (tests/development only)');
  }

  const demo = env.BROKER_DEMO ? await startDemoServer(env.BROKER_DEMO_PORT) : undefined;
  if (demo) logger.info({ url: demo.url }, 'demo MCP server dmcp listening');

  const instance = await composeBroker({ env, processEnv: process.env, adminToken, logger, secrets });
  // Open mode (no BROKER_API_KEYS, no named key) only on loopback; named keys alone (config
  // file or Redis) are a key set like any other, and off loopback open mode never engages
  // later either (Credentials.openMode).
  if (env.BROKER_API_KEYS.length === 0 && instance.keys.size === 0 && !isLoopbackHost(env.HOST)) {
    await instance.close();
    await demo?.close();
    throw new ConfigError(`BROKER_API_KEYS is empty, no named key exists and HOST ${env.HOST} is not loopback: refusing to start in open mode`);
  }
  const server: Server = await new Promise((resolve, reject) => {
    const s = instance.app.listen(env.PORT, env.HOST, () => resolve(s));
    s.on('error', reject);
  });
  server.keepAliveTimeout = 65_000;
  logger.info({ host: env.HOST, port: env.PORT, open_mode: env.BROKER_API_KEYS.length === 0 }, 'mcp-broker listening');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    // Drain: /readyz turns 503 at once so load balancers stop sending; keep serving a while.
    instance.readiness.draining = true;
    logger.info({ signal, delay_ms: env.BROKER_DRAIN_DELAY_MS }, 'draining');
    await sleep(env.BROKER_DRAIN_DELAY_MS);
    const closed = new Promise((r) => server.close(() => r(undefined)));
    // Keep-alive connections go idle as their last response finishes: close each as it does.
    const reaper = setInterval(() => server.closeIdleConnections(), 50);
    server.closeIdleConnections();
    const timedOut = await Promise.race([closed.then(() => false), sleep(env.BROKER_DRAIN_TIMEOUT_MS).then(() => true)]);
    clearInterval(reaper);
    if (timedOut) {
      logger.warn('drain timeout: aborting in-flight requests');
      server.closeAllConnections();
    }
    await instance.close();
    await demo?.close();
    await stopTracing();
    logger.info('stopped');
    logger.flush();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((err) => {
  process.stderr.write(`mcp-broker: ${err instanceof ConfigError || err instanceof TracingConfigError ? err.message : (err as Error).stack}\n`);
  process.exit(1);
});
