import { z } from 'zod';

const bool = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'on', 'off', 'yes', 'no'])
    .optional()
    .transform((v) => (v === undefined ? def : ['true', '1', 'on', 'yes'].includes(v)));
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).optional().transform((v) => v ?? def);
const list = z
  .string()
  .optional()
  .transform((v) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean));
const optionalString = z.string().optional().transform((v) => (v ? v : undefined));

/** Every environment variable of SPEC §0, validated once at start. */
export const EnvSchema = z.object({
  PORT: int(8080, 0, 65535),
  HOST: z.string().default('127.0.0.1'),
  BROKER_PUBLIC_URL: optionalString,
  BROKER_CONFIG: z.string().default('./servers.config.json'),
  BROKER_ADMIN_TOKEN: optionalString,
  BROKER_API_KEYS: list,
  BROKER_APPROVER_TOKEN: optionalString,
  UPSTREAM_BASE_URL: optionalString,
  UPSTREAM_API_KEY: optionalString,
  UPSTREAM_API: z.enum(['chat_completions', 'responses']).default('chat_completions'),
  UPSTREAM_TIMEOUT_MS: int(120000, 1000),
  /** The model upstream's HTTP client: undici (default), or the `openai` package (for A/B). */
  UPSTREAM_CLIENT: z.enum(['undici', 'openai']).default('undici'),
  APPROVAL_WEBHOOK_URL: optionalString,
  APPROVAL_WEBHOOK_SECRET: optionalString,
  APPROVAL_TTL_S: int(900, 1),
  BROKER_ALLOW_INLINE_SERVERS: bool(true),
  BROKER_EGRESS_ALLOW_CIDRS: list,
  BROKER_EGRESS_ALLOW_HTTP: bool(false),
  BROKER_MAX_BODY_BYTES: int(10485760, 1024),
  BROKER_MAX_UPSTREAM_BYTES: int(4194304, 1024),
  /** The MCP client transport: the broker's own on undici, or the SDK's (for comparison). */
  BROKER_MCP_TRANSPORT: z.enum(['undici', 'sdk']).default('undici'),
  /** The hot routes outside express's router (http/fastPath.ts), or all through express (for comparison). */
  BROKER_HTTP_FAST_PATH: z.enum(['on', 'off']).default('on'),
  BROKER_MAX_PENDING_APPROVALS: int(1000, 1),
  /** Bytes of approval requests (arguments included) one API key may hold, any status, until dropped. */
  BROKER_MAX_APPROVAL_BYTES: int(16 * 1024 * 1024, 4096),
  BROKER_MAX_INFLIGHT_PER_SERVER: z.coerce.number().int().min(1).optional(),
  /** The old name of BROKER_MAX_INFLIGHT_PER_SERVER, still accepted. */
  BROKER_MAX_INFLIGHT_PER_ORIGIN: z.coerce.number().int().min(1).optional(),
  BROKER_MAX_LISTING_BYTES: int(8 * 1024 * 1024, 1024),
  BROKER_MAX_INFLIGHT: int(1024, 1),
  BROKER_MAX_TOOLS_PER_REQUEST: int(20, 1),
  BROKER_MAX_ITERATIONS: int(16, 1),
  BROKER_DRAIN_DELAY_MS: int(5000),
  BROKER_DRAIN_TIMEOUT_MS: int(25000),
  BROKER_DEMO: bool(true),
  BROKER_DEMO_PORT: int(8931, 0, 65535),
  BROKER_STORE: optionalString,
  /** Names `${NAME}` may expand (SPEC §2); unset: all but BROKER_*, UPSTREAM_*, APPROVAL_*, OTEL_*. */
  BROKER_EXPAND_ENV: optionalString,
  BROKER_BACKGROUND_LEASE_MS: int(10000, 200, 600000),
  BROKER_MAX_BACKGROUND_RESPONSES: int(1000, 1),
  /** Background runs one API key may have running on an instance, so one tenant cannot take every slot. */
  BROKER_MAX_BACKGROUND_PER_KEY: int(100, 1),
  /** AES-256-GCM key for upstream OAuth tokens and secrets at rest: 32 bytes, base64. */
  BROKER_SECRET_KEY: optionalString,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type Env = z.infer<typeof EnvSchema>;

/** In-flight bound per server URL: BROKER_MAX_INFLIGHT_PER_SERVER, or its old name [64]. */
export const maxInflightPerServer = (env: Pick<Env, 'BROKER_MAX_INFLIGHT_PER_SERVER' | 'BROKER_MAX_INFLIGHT_PER_ORIGIN'>) =>
  env.BROKER_MAX_INFLIGHT_PER_SERVER ?? env.BROKER_MAX_INFLIGHT_PER_ORIGIN ?? 64;

export class ConfigError extends Error {}

export function parseEnv(source: NodeJS.ProcessEnv): Env {
  const r = EnvSchema.safeParse(source);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new ConfigError(`invalid environment variable ${String(i.path[0])}: ${i.message}`);
  }
  const env = r.data;
  if (env.APPROVAL_WEBHOOK_URL && !env.APPROVAL_WEBHOOK_SECRET) {
    throw new ConfigError('APPROVAL_WEBHOOK_URL is set but APPROVAL_WEBHOOK_SECRET is not');
  }
  if (env.APPROVAL_WEBHOOK_SECRET && !env.APPROVAL_WEBHOOK_SECRET.startsWith('whsec_')) {
    throw new ConfigError('APPROVAL_WEBHOOK_SECRET must start with whsec_');
  }
  if (env.APPROVAL_WEBHOOK_URL && !URL.canParse(env.APPROVAL_WEBHOOK_URL)) {
    throw new ConfigError('APPROVAL_WEBHOOK_URL is not a URL');
  }
  if (env.BROKER_STORE && !/^rediss?:\/\//.test(env.BROKER_STORE)) {
    throw new ConfigError('BROKER_STORE must be a redis:// or rediss:// URL');
  }
  if (env.BROKER_SECRET_KEY) {
    const raw = env.BROKER_SECRET_KEY.trim();
    const key = Buffer.from(raw, /[-_]/.test(raw) ? 'base64url' : 'base64');
    if (key.length !== 32) throw new ConfigError('BROKER_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
  }
  if (env.UPSTREAM_BASE_URL && !URL.canParse(env.UPSTREAM_BASE_URL)) {
    throw new ConfigError('UPSTREAM_BASE_URL is not a URL');
  }
  return env;
}

/** Loopback hosts on which open mode (no BROKER_API_KEYS) is allowed. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}
