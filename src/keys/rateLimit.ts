import type { RedisConnection } from '../store/redis.js';

/**
 * Per-key token buckets over `/v1/*` requests (SPEC §11): capacity `perMin`, refilled at
 * `perMin` per minute. `take` answers 0 when the request may go on, else the whole seconds
 * (1–60) until a token is back.
 */
export interface RateLimiter {
  take(bucket: string, perMin: number): Promise<number>;
}

/** Seconds until one token is back, as Retry-After wants it: whole, 1–60. */
export const retryAfterSeconds = (waitMs: number) => Math.min(60, Math.max(1, Math.ceil(waitMs / 1000)));

/** One bucket step, pure: the same arithmetic as the Redis script. */
export function step(b: { tokens: number; at: number } | undefined, perMin: number, nowMs: number) {
  const rate = perMin / 60_000;
  const tokens = b ? Math.min(perMin, b.tokens + Math.max(0, nowMs - b.at) * rate) : perMin;
  if (tokens >= 1) return { bucket: { tokens: tokens - 1, at: nowMs }, waitMs: 0 };
  return { bucket: { tokens, at: nowMs }, waitMs: (1 - tokens) / rate };
}

/** Embedded: buckets in memory (one per named key with a limit, so bounded by the keys). */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  async take(bucket: string, perMin: number): Promise<number> {
    const now = Date.now();
    const s = step(this.buckets.get(bucket), perMin, now);
    this.buckets.set(bucket, s.bucket);
    if (this.buckets.size > 10_000) {
      // Full buckets carry no state worth keeping.
      for (const [k, v] of this.buckets) if (now - v.at > 60_000) this.buckets.delete(k);
    }
    return s.waitMs > 0 ? retryAfterSeconds(s.waitMs) : 0;
  }
}

// The bucket in a Redis hash, on Redis's clock so that every instance agrees.
const TAKE = `
local cap = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate = cap / 60000
local tokens = cap
if v[1] then
  local elapsed = now - tonumber(v[2])
  if elapsed < 0 then elapsed = 0 end
  tokens = math.min(cap, tonumber(v[1]) + elapsed * rate)
end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], 120000)
return wait
`;

/** Shared across instances with BROKER_STORE: one small Lua script per request. */
export class RedisRateLimiter implements RateLimiter {
  constructor(private readonly conn: RedisConnection) {}

  async take(bucket: string, perMin: number): Promise<number> {
    const waitMs = Number(await this.conn.run((r) => r.eval(TAKE, 1, this.conn.key('ratelimit', bucket), String(perMin))));
    return waitMs > 0 ? retryAfterSeconds(waitMs) : 0;
  }
}
