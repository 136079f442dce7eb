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

  private k = (id: string, part?: string) => (part ? this.conn.key('resp', id, part) : this.conn.key('resp', id));
  private get ttlS() {
    return this.o.ttlS ?? 7 * 24 * 3600;
  }

  async put(r: StoredResponse) {
    const json = JSON.stringify(r);
    if (json.length > (this.o.maxBytes ?? 16 * 1024 * 1024)) {
      this.logger.warn({ response: r.id, bytes: json.length }, 'response too large to store; not retrievable');
      return;
    }
    await this.conn.run((c) => c.set(this.k(r.id), json, 'EX', this.ttlS));
  }

  async get(id: string) {
    const json = await this.conn.run((c) => c.get(this.k(id)));
    return json ? (JSON.parse(json) as StoredResponse) : undefined;
  }

  async delete(id: string) {
    const [n] = await this.conn.run((c) => Promise.all([c.del(this.k(id)), c.del(this.k(id, 'events'))]));
    return n === 1;
  }

  async appendEvent(id: string, event: string) {
    await this.conn.run((c) => c.multi().rpush(this.k(id, 'events'), event).expire(this.k(id, 'events'), this.ttlS).exec());
  }

  async events(id: string, after: number) {
    return this.conn.run((c) => c.lrange(this.k(id, 'events'), Math.max(0, after + 1), -1));
  }

  async setLease(id: string, instance: string, ttlMs: number) {
    await this.conn.run((c) => c.set(this.k(id, 'lease'), instance, 'PX', ttlMs));
  }

  async leaseHolder(id: string) {
    return (await this.conn.run((c) => c.get(this.k(id, 'lease')))) ?? undefined;
  }

  async clearLease(id: string) {
    await this.conn.run((c) => c.del(this.k(id, 'lease'), this.k(id, 'cancel')));
  }

  async requestCancel(id: string) {
    await this.conn.run((c) => c.set(this.k(id, 'cancel'), '1', 'EX', 3600));
  }

  async cancelRequested(id: string) {
    return (await this.conn.run((c) => c.exists(this.k(id, 'cancel')))) === 1;
  }

  async claimEnd(id: string) {
    return (await this.conn.run((c) => c.set(this.k(id, 'end'), '1', 'EX', this.ttlS, 'NX'))) === 'OK';
  }
}
