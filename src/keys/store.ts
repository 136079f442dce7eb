import { timingSafeEqual } from 'node:crypto';
import { ConflictError, NotFoundError } from '../errors/index.js';
import { liveHashes } from './keys.js';
import { nameKey, type KeyRecord } from './schema.js';

/**
 * Named API keys (SPEC §11), stored with the registry: the file's `"keys"` section
 * embedded, Redis with BROKER_STORE. Names are unique case-insensitively. Every write
 * resolves once durable; `find` is the hot path and reads this instance's copy, which
 * every write (here or, within a second, on another instance) updates.
 */
export interface KeyStore {
  list(): Promise<KeyRecord[]>;
  get(name: string): Promise<KeyRecord | undefined>;
  /** Throws ConflictError `key_name_taken`. */
  create(record: KeyRecord): Promise<KeyRecord>;
  /** Read-modify-write of one key, atomic against concurrent writes. Throws 404 if unknown. */
  update(name: string, change: (cur: KeyRecord) => KeyRecord): Promise<KeyRecord>;
  delete(name: string): Promise<KeyRecord | undefined>;
  /** The key accepted with this SHA-256 digest now, if any. */
  find(digest: Buffer): KeyRecord | undefined;
  /** This instance's copy of one key (no store round trip): what in-flight work re-checks. */
  local(name: string): KeyRecord | undefined;
  /** How many named keys exist (open mode ends with the first). */
  readonly size: number;
  close(): Promise<void>;
}

export const keyNameTaken = (name: string) =>
  new ConflictError('key_name_taken', `An API key named '${name}' already exists.`, { param: 'name' });
export const unknownKey = (name: string) => new NotFoundError('not_found', `No API key named '${name}'.`);

/** This instance's copy of the keys: by name, and by the SHA-256 of each accepted key. */
export class KeyIndex {
  private readonly byName = new Map<string, KeyRecord>();
  private readonly byHash = new Map<string, { name: string; digest: Buffer }>();

  get size() {
    return this.byName.size;
  }
  list() {
    return [...this.byName.values()];
  }
  get(name: string) {
    return this.byName.get(nameKey(name));
  }

  set(r: KeyRecord) {
    this.remove(r.name);
    this.byName.set(nameKey(r.name), r);
    for (const h of r.hashes) this.byHash.set(h.sha256, { name: nameKey(r.name), digest: Buffer.from(h.sha256, 'hex') });
  }

  remove(name: string) {
    const cur = this.byName.get(nameKey(name));
    if (!cur) return;
    this.byName.delete(nameKey(name));
    for (const h of cur.hashes) this.byHash.delete(h.sha256);
  }

  replaceAll(records: readonly KeyRecord[]) {
    this.byName.clear();
    this.byHash.clear();
    for (const r of records) this.set(r);
  }

  /**
   * Looked up by digest (a map over SHA-256 values an attacker cannot steer), confirmed with
   * timingSafeEqual, then the hash must still be live (a rotated-out key's grace ends).
   */
  find(digest: Buffer, nowMs = Date.now()): KeyRecord | undefined {
    const e = this.byHash.get(digest.toString('hex'));
    if (!e || e.digest.length !== digest.length || !timingSafeEqual(e.digest, digest)) return undefined;
    const r = this.byName.get(e.name);
    if (!r) return undefined;
    const hex = digest.toString('hex');
    return liveHashes(r, nowMs).some((h) => h.sha256 === hex) ? r : undefined;
  }
}
