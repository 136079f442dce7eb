import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { RedisConnection } from '../store/redis.js';
import type { SecretBox } from './crypto.js';

/**
 * Where OAuth secrets live (tokens, dynamically registered clients, pending authorizations).
 * Backends hold only sealed strings; `SecretStore` seals and opens them.
 */
export interface SealedKv {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Reads and deletes in one step: the basis of single-use `state`. */
  take(key: string): Promise<string | undefined>;
  deletePrefix(prefix: string): Promise<void>;
  close(): Promise<void>;
}

export class MemoryKv implements SealedKv {
  private readonly map = new Map<string, { v: string; exp: number | undefined }>();
  private live(key: string): string | undefined {
    const e = this.map.get(key);
    if (!e) return undefined;
    if (e.exp !== undefined && e.exp <= Date.now()) {
      this.map.delete(key);
      return undefined;
    }
    return e.v;
  }
  async get(key: string) {
    return this.live(key);
  }
  async set(key: string, v: string, ttlMs?: number) {
    this.map.set(key, { v, exp: ttlMs ? Date.now() + ttlMs : undefined });
  }
  async take(key: string) {
    // Read and delete in one synchronous step: concurrent takes get it once.
    const v = this.live(key);
    this.map.delete(key);
    return v;
  }
  async deletePrefix(prefix: string) {
    for (const k of [...this.map.keys()]) if (k.startsWith(prefix)) this.map.delete(k);
  }
  async close() {}
}

export class RedisKv implements SealedKv {
  constructor(private readonly conn: RedisConnection) {}
  private k(key: string) {
    return this.conn.key('oauth', key);
  }
  get(key: string) {
    return this.conn.run(async (r) => (await r.get(this.k(key))) ?? undefined);
  }
  async set(key: string, v: string, ttlMs?: number) {
    await this.conn.run((r) => (ttlMs ? r.set(this.k(key), v, 'PX', Math.ceil(ttlMs)) : r.set(this.k(key), v)));
  }
  take(key: string) {
    return this.conn.run(async (r) => (await r.getdel(this.k(key))) ?? undefined);
  }
  async deletePrefix(prefix: string) {
    await this.conn.run(async (r) => {
      let cursor = '0';
      do {
        const [next, keys] = await r.scan(cursor, 'MATCH', `${this.k(prefix)}*`, 'COUNT', 200);
        cursor = next;
        if (keys.length) await r.del(...keys);
      } while (cursor !== '0');
    });
  }
  async close() {}
}

interface FileShape {
  version: 1;
  entries: Record<string, { v: string; exp?: number }>;
}

/**
 * A JSON file beside the registry file (`<BROKER_CONFIG>.oauth.json`), mode 0600, rewritten
 * atomically (temp + fsync + rename) by each write, writes serialized. Values are sealed.
 */
export class FileKv implements SealedKv {
  private data: FileShape = { version: 1, entries: {} };
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(readonly path: string) {}

  static async open(path: string): Promise<FileKv> {
    const kv = new FileKv(path);
    const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw e;
    });
    if (text !== undefined) {
      const parsed = JSON.parse(text) as FileShape;
      if (parsed?.version !== 1 || typeof parsed.entries !== 'object') throw new Error(`${path}: not an OAuth secrets file`);
      kv.data = parsed;
    }
    return kv;
  }

  private live(key: string) {
    const e = this.data.entries[key];
    if (e && e.exp !== undefined && e.exp <= Date.now()) {
      delete this.data.entries[key];
      return undefined;
    }
    return e;
  }

  async get(key: string) {
    return this.live(key)?.v;
  }
  set(key: string, v: string, ttlMs?: number) {
    return this.mutate(() => {
      this.data.entries[key] = ttlMs ? { v, exp: Date.now() + ttlMs } : { v };
    });
  }
  async take(key: string) {
    const e = this.live(key);
    if (!e) return undefined;
    // Taken at once in memory (single use even before the write lands).
    delete this.data.entries[key];
    await this.mutate(() => undefined);
    return e.v;
  }
  deletePrefix(prefix: string) {
    return this.mutate(() => {
      for (const k of Object.keys(this.data.entries)) if (k.startsWith(prefix)) delete this.data.entries[k];
    });
  }

  private mutate(change: () => void): Promise<void> {
    const run = this.chain.then(async () => {
      change();
      const now = Date.now();
      for (const [k, e] of Object.entries(this.data.entries)) if (e.exp !== undefined && e.exp <= now) delete this.data.entries[k];
      await this.write();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async write() {
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(JSON.stringify(this.data, null, 2));
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (e) {
      await unlink(tmp).catch(() => undefined);
      throw e;
    }
  }

  async close() {
    await this.chain;
  }
}

/** JSON values sealed under `BROKER_SECRET_KEY`, each authenticated with its own key as label. */
export class SecretStore {
  constructor(
    private readonly kv: SealedKv,
    private readonly box: SecretBox,
  ) {}

  async get<T>(key: string): Promise<T | undefined> {
    const sealed = await this.kv.get(key);
    return sealed === undefined ? undefined : (JSON.parse(this.box.open(key, sealed)) as T);
  }
  set(key: string, value: unknown, ttlMs?: number): Promise<void> {
    return this.kv.set(key, this.box.seal(key, JSON.stringify(value)), ttlMs);
  }
  async take<T>(key: string): Promise<T | undefined> {
    const sealed = await this.kv.take(key);
    return sealed === undefined ? undefined : (JSON.parse(this.box.open(key, sealed)) as T);
  }
  deletePrefix(prefix: string): Promise<void> {
    return this.kv.deletePrefix(prefix);
  }
  close(): Promise<void> {
    return this.kv.close();
  }
}
