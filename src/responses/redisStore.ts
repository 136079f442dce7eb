import type { Logger } from 'pino';
import type { RedisConnection } from '../store/redis.js';
import type { ResponseStore, StoredResponse } from './store.js';

/** Stored responses in Redis, so `previous_response_id` works on any instance. Bounded by TTL and size. */
export class RedisResponseStore implements ResponseStore {
  constructor(
    private readonly conn: RedisConnection,
    private readonly logger: Logger,
    private readonly o: { ttlS?: number; maxBytes?: number } = {},
  ) {}

  private k = (id: string) => this.conn.key('resp', id);

  async put(r: StoredResponse) {
    const json = JSON.stringify(r);
    if (json.length > (this.o.maxBytes ?? 16 * 1024 * 1024)) {
      this.logger.warn({ response: r.id, bytes: json.length }, 'response too large to store; not retrievable');
      return;
    }
    await this.conn.run((c) => c.set(this.k(r.id), json, 'EX', this.o.ttlS ?? 7 * 24 * 3600));
  }

  async get(id: string) {
    const json = await this.conn.run((c) => c.get(this.k(id)));
    return json ? (JSON.parse(json) as StoredResponse) : undefined;
  }

  async delete(id: string) {
    return (await this.conn.run((c) => c.del(this.k(id)))) === 1;
  }
}
