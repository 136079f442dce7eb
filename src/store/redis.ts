import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { UpstreamError, retryAfter } from '../errors/index.js';

export class StoreUnavailableError extends UpstreamError {
  constructor(cause?: unknown) {
    super(503, 'store_unavailable', 'The shared state store is unavailable; try again shortly.', { headers: retryAfter(1), cause });
  }
}

/**
 * Connections to the shared store. Commands fail fast while disconnected (no offline queue):
 * a request that needs shared state gets 503 `store_unavailable`, never a silent fallback
 * to local memory, which would split state between instances.
 */
export class RedisConnection {
  readonly cmd: Redis;
  /** Pub/sub needs a connection of its own. */
  readonly sub: Redis;
  readonly prefix = 'mcpb:';

  constructor(
    url: string,
    private readonly logger: Logger,
  ) {
    const opts = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      commandTimeout: 3000,
      retryStrategy: (times: number) => Math.min(100 * times, 1000),
      lazyConnect: true,
    };
    this.cmd = new Redis(url, opts);
    this.sub = new Redis(url, { ...opts, commandTimeout: undefined });
    for (const c of [this.cmd, this.sub]) c.on('error', (e: Error) => this.logger.debug({ err: e.message }, 'redis connection error'));
  }

  async connect(): Promise<void> {
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
  }

  get healthy(): boolean {
    return this.cmd.status === 'ready' && this.sub.status === 'ready';
  }

  key(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  /** Runs a store operation; connection failures become 503 store_unavailable. */
  async run<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    if (this.cmd.status !== 'ready') throw new StoreUnavailableError();
    try {
      return await fn(this.cmd);
    } catch (e) {
      if (e instanceof Error && /Connection|connect|Stream isn't writeable|timed out|ECONN|EPIPE|closed/i.test(e.message)) throw new StoreUnavailableError(e);
      throw e;
    }
  }

  async close(): Promise<void> {
    this.cmd.disconnect();
    this.sub.disconnect();
  }
}
