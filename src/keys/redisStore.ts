import type { Logger } from 'pino';
import type { RedisConnection } from '../store/redis.js';
import { KeyRecordSchema, nameKey, type KeyRecord } from './schema.js';
import { KeyIndex, keyNameTaken, unknownKey, type KeyStore } from './store.js';

// Replace only if the stored value is still the one the change was computed from.
const CAS = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) return 1 end return 0`;

/**
 * Keys in one Redis hash (lower-cased name → record JSON). Each instance authenticates from
 * its own copy; every write goes to Redis first and is announced on a channel of its own,
 * so another instance drops a deleted or rotated-out key within milliseconds (and reloads
 * everything after a reconnect, in case it missed an announcement).
 */
export class RedisKeyStore implements KeyStore {
  private readonly index = new KeyIndex();
  private readonly hash: string;
  private readonly channel: string;
  private readonly origin = Math.random().toString(36).slice(2);
  private closed = false;

  private constructor(
    private readonly conn: RedisConnection,
    private readonly logger: Logger,
  ) {
    this.hash = conn.key('keys');
    this.channel = conn.key('keys', 'events');
  }

  /** `seed` (the file's keys) is imported only into an empty store, once. */
  static async open(conn: RedisConnection, logger: Logger, seed: KeyRecord[]): Promise<RedisKeyStore> {
    const store = new RedisKeyStore(conn, logger);
    conn.sub.on('message', (channel: string, message: string) => {
      if (channel !== store.channel) return;
      try {
        const m = JSON.parse(message) as { origin: string; name: string };
        if (m.origin !== store.origin && typeof m.name === 'string') void store.reloadOne(m.name);
      } catch {
        /* not ours */
      }
    });
    await conn.sub.subscribe(store.channel);
    if (seed.length && (await conn.run((r) => r.set(conn.key('imported', 'keys'), '1', 'NX'))) === 'OK') {
      if ((await conn.run((r) => r.hlen(store.hash))) === 0) {
        await conn.run((r) => r.hset(store.hash, Object.fromEntries(seed.map((k) => [nameKey(k.name), JSON.stringify(k)]))));
        logger.info({ keys: seed.length }, 'imported the keys of servers.config.json into the shared store');
      }
    }
    await store.reloadAll();
    conn.cmd.on('ready', () => void store.reloadAll().catch(() => undefined));
    return store;
  }

  get size() {
    return this.index.size;
  }
  /** Admin reads go to Redis: a key created on another instance a moment ago is listed. */
  async list() {
    await this.reloadAll();
    return this.index.list();
  }
  async get(name: string) {
    const json = await this.conn.run((r) => r.hget(this.hash, nameKey(name)));
    const rec = this.parse(json);
    if (rec) this.index.set(rec);
    else this.index.remove(name);
    return rec;
  }
  find(digest: Buffer) {
    return this.index.find(digest);
  }
  local(name: string) {
    return this.index.get(name);
  }

  async create(record: KeyRecord) {
    const ok = await this.conn.run((r) => r.hsetnx(this.hash, nameKey(record.name), JSON.stringify(record)));
    if (ok !== 1) throw keyNameTaken(record.name);
    this.applied(record.name, record);
    return record;
  }

  async update(name: string, change: (cur: KeyRecord) => KeyRecord) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const json = await this.conn.run((r) => r.hget(this.hash, nameKey(name)));
      const cur = this.parse(json);
      if (!cur || json === null) throw unknownKey(name);
      const next = change(cur);
      const ok = await this.conn.run((r) => r.eval(CAS, 1, this.hash, nameKey(name), json, JSON.stringify(next)));
      if (ok === 1) {
        this.applied(name, next);
        return next;
      }
    }
    throw new Error(`key '${name}' is being changed concurrently; try again`);
  }

  async delete(name: string) {
    const json = await this.conn.run((r) => r.hget(this.hash, nameKey(name)));
    const n = await this.conn.run((r) => r.hdel(this.hash, nameKey(name)));
    if (n !== 1) return undefined;
    this.applied(name, undefined);
    return this.parse(json) ?? undefined;
  }

  async close() {
    this.closed = true;
  }

  private applied(name: string, record: KeyRecord | undefined) {
    if (record) this.index.set(record);
    else this.index.remove(name);
    this.conn.cmd.publish(this.channel, JSON.stringify({ origin: this.origin, name })).catch(() => undefined);
  }

  private parse(json: string | null): KeyRecord | undefined {
    if (!json) return undefined;
    const r = KeyRecordSchema.safeParse(JSON.parse(json));
    if (!r.success) this.logger.error({ issue: r.error.issues[0]?.message }, 'invalid key in the shared store; ignored');
    return r.success ? r.data : undefined;
  }

  private async reloadOne(name: string, attempt = 0) {
    if (this.closed) return;
    const json = await this.conn.run((r) => r.hget(this.hash, nameKey(name))).catch(() => undefined);
    if (json === undefined) {
      // Unreadable now: refuse the key (fail closed) and read it again shortly.
      this.index.remove(name);
      if (attempt < 30) setTimeout(() => void this.reloadOne(name, attempt + 1), 1000).unref();
      return;
    }
    const rec = this.parse(json);
    if (rec) this.index.set(rec);
    else this.index.remove(name);
  }

  private async reloadAll() {
    const all = await this.conn.run((r) => r.hgetall(this.hash));
    const recs: KeyRecord[] = [];
    for (const json of Object.values(all)) {
      const rec = this.parse(json);
      if (rec) recs.push(rec);
    }
    this.index.replaceAll(recs);
  }
}
