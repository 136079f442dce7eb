import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import type { RegistryFile } from '../registry/fileStore.js';
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
    const now = Date.now();
    // Expired entries (authorization states never redeemed) go as new ones come: no growth.
    for (const [k, e] of this.map) if (e.exp !== undefined && e.exp <= now) this.map.delete(k);
    this.map.set(key, { v, exp: ttlMs ? now + ttlMs : undefined });
  }
  /** Entries held now, expired or not (for tests of the bound). */
  get size(): number {
    return this.map.size;
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

const FileEntrySchema = z.strictObject({ v: z.string().regex(/^v1\./, 'not a sealed value'), exp: z.number().optional() });
const OAuthSectionSchema = z.record(z.string(), FileEntrySchema);
type FileEntry = z.infer<typeof FileEntrySchema>;

/** Validates the registry file's `"oauth"` section: sealed values only. */
export function parseOAuthSection(file: RegistryFile): Record<string, FileEntry> {
  const r = OAuthSectionSchema.safeParse(file.section('oauth') ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new ConfigError(`${file.path}: invalid field oauth${issue.path.length ? `, entry ${JSON.stringify(String(issue.path[0]))}` : ''}: ${issue.message}`);
  }
  return r.data;
}

/**
 * Embedded: the `"oauth"` section of BROKER_CONFIG (sealed values only), written by the
 * registry file's one serialized writer (atomic rewrite, mode 0600). Each write applies its
 * change to memory only once the file is durable; a `take` removes its entry from memory at
 * once, so a state is single use even before its write lands.
 */
export class FileKv implements SealedKv {
  private readonly entries = new Map<string, FileEntry>();

  private constructor(private readonly file: RegistryFile) {}

  static on(file: RegistryFile): FileKv {
    const kv = new FileKv(file);
    for (const [k, e] of Object.entries(parseOAuthSection(file))) kv.entries.set(k, e);
    return kv;
  }

  private live(key: string) {
    const e = this.entries.get(key);
    return e && (e.exp === undefined || e.exp > Date.now()) ? e : undefined;
  }

  async get(key: string) {
    return this.live(key)?.v;
  }
  set(key: string, v: string, ttlMs?: number) {
    const entry: FileEntry = ttlMs ? { v, exp: Date.now() + ttlMs } : { v };
    return this.write((m) => void m.set(key, entry));
  }
  async take(key: string) {
    const e = this.live(key);
    if (!e) return undefined;
    this.entries.delete(key);
    await this.write((m) => void m.delete(key));
    return e.v;
  }
  deletePrefix(prefix: string) {
    return this.write((m) => {
      for (const k of [...m.keys()]) if (k.startsWith(prefix)) m.delete(k);
    });
  }

  /** Imports entries (an older `<BROKER_CONFIG>.oauth.json`); those already present win. */
  import(entries: Record<string, FileEntry>): Promise<void> {
    return this.write((m) => {
      for (const [k, e] of Object.entries(entries)) if (!m.has(k)) m.set(k, e);
    });
  }

  /** The change is applied to a copy for the file, then (once durable) to memory. */
  private write(change: (m: Map<string, FileEntry>) => void): Promise<void> {
    return this.file.update('oauth', () => {
      const next = new Map(this.entries);
      change(next);
      const now = Date.now();
      for (const [k, e] of next) if (e.exp !== undefined && e.exp <= now) next.delete(k);
      return {
        value: next.size ? Object.fromEntries(next) : undefined,
        commit: () => {
          change(this.entries);
          for (const [k, e] of this.entries) if (e.exp !== undefined && e.exp <= now) this.entries.delete(k);
        },
      };
    });
  }

  async close() {
    await this.file.close();
  }
}

/** Reads the entries of an older `<BROKER_CONFIG>.oauth.json`; undefined when there is none. */
export async function readLegacyOAuthFile(path: string): Promise<Record<string, FileEntry> | undefined> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw e;
  });
  if (text === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  const r = z.object({ version: z.literal(1), entries: OAuthSectionSchema }).safeParse(parsed);
  if (!r.success) throw new ConfigError(`${path}: not an OAuth secrets file`);
  return r.data.entries;
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
