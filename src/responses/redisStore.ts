import type { Logger } from 'pino';
import type { RedisConnection } from '../store/redis.js';
import { DEFAULT_MAX_EVENT_BYTES, type ResponseStore, type StoredResponse } from './store.js';

/**
 * appendBounded (store.ts) in one step, so two instances never race: KEYS[1] the event list,
 * KEYS[2] its meta hash (`bytes` kept, `first` = sequence number of the first kept event);
 * ARGV event, bound in bytes, TTL in seconds. string.len counts bytes, as eventBytes does.
 */
const APPEND = `
local size = string.len(ARGV[1])
local max = tonumber(ARGV[2])
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
local first = tonumber(redis.call('HGET', KEYS[2], 'first') or '0')
if size > max then
  first = first + redis.call('LLEN', KEYS[1]) + 1
  bytes = 0
  redis.call('DEL', KEYS[1])
else
  redis.call('RPUSH', KEYS[1], ARGV[1])
  bytes = bytes + size
  while bytes > max do
    local old = redis.call('LPOP', KEYS[1])
    if not old then bytes = 0 break end
    bytes = bytes - string.len(old)
    first = first + 1
  end
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
redis.call('HSET', KEYS[2], 'bytes', bytes, 'first', first)
redis.call('EXPIRE', KEYS[2], ARGV[3])
return first
`;

/** The kept events after sequence number ARGV[1]: KEYS as APPEND's. */
const AFTER = `
local first = tonumber(redis.call('HGET', KEYS[2], 'first') or '0')
local start = tonumber(ARGV[1]) + 1 - first
if start < 0 then start = 0 end
return redis.call('LRANGE', KEYS[1], start, -1)
`;

/** Stored responses in Redis, so `previous_response_id` works on any instance. Bounded by TTL and size. */
export class RedisResponseStore implements ResponseStore {
  constructor(
    private readonly conn: RedisConnection,
    private readonly logger: Logger,
    private readonly o: { ttlS?: number; maxBytes?: number; maxEventBytes?: number } = {},
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
    const [n] = await this.conn.run((c) => Promise.all([c.del(this.k(id)), c.del(this.k(id, 'events'), this.k(id, 'events_meta'))]));
    return n === 1;
  }

  /** Each log bounded like the embedded store's (appendBounded), atomically on the server. */
  async appendEvent(id: string, event: string) {
    const max = this.o.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    await this.conn.run((c) => c.eval(APPEND, 2, this.k(id, 'events'), this.k(id, 'events_meta'), event, String(max), String(this.ttlS)));
  }

  async events(id: string, after: number) {
    return (await this.conn.run((c) => c.eval(AFTER, 2, this.k(id, 'events'), this.k(id, 'events_meta'), String(after)))) as string[];
  }

  async eventCount(id: string) {
    const r = await this.conn.run((c) => c.multi().hget(this.k(id, 'events_meta'), 'first').llen(this.k(id, 'events')).exec());
    if (!r) return 0;
    return Number(r[0]?.[1] ?? 0) + Number(r[1]?.[1] ?? 0);
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
