import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import type { RegistryFile } from '../registry/fileStore.js';
import { KeyRecordSchema, nameKey, type KeyRecord } from './schema.js';
import { KeyIndex, keyNameTaken, unknownKey, type KeyStore } from './store.js';

const KeysSchema = z.array(KeyRecordSchema);

/** Validates the registry file's `"keys"` section; names the key and field of the first problem. */
export function parseKeys(file: RegistryFile): KeyRecord[] {
  const raw = file.section('keys') ?? [];
  const r = KeysSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const [index, ...field] = issue.path;
    const rec = Array.isArray(raw) ? (raw[index as number] as { name?: unknown } | undefined) : undefined;
    const name = typeof rec?.name === 'string' ? `"${rec.name}"` : `#${String(index)}`;
    const where = index === undefined ? 'field keys' : `key ${name}, field ${field.join('.') || '(record)'}`;
    throw new ConfigError(`${file.path}: invalid ${where}: ${issue.message}`);
  }
  const seen = new Set<string>();
  for (const k of r.data) {
    if (seen.has(nameKey(k.name))) throw new ConfigError(`${file.path}: key name "${k.name}" appears twice`);
    seen.add(nameKey(k.name));
  }
  return r.data;
}

/** Embedded: the `"keys"` section of BROKER_CONFIG, written by the registry file's one writer. */
export class FileKeyStore implements KeyStore {
  private readonly index = new KeyIndex();

  private constructor(private readonly file: RegistryFile) {}

  static on(file: RegistryFile): FileKeyStore {
    const store = new FileKeyStore(file);
    store.index.replaceAll(parseKeys(file));
    return store;
  }

  get size() {
    return this.index.size;
  }
  async list() {
    return this.index.list();
  }
  async get(name: string) {
    return this.index.get(name);
  }
  find(digest: Buffer) {
    return this.index.find(digest);
  }
  local(name: string) {
    return this.index.get(name);
  }

  create(record: KeyRecord) {
    return this.write(() => {
      if (this.index.get(record.name)) throw keyNameTaken(record.name);
      return { next: [...this.index.list(), record], apply: () => this.index.set(record), result: record };
    });
  }

  update(name: string, change: (cur: KeyRecord) => KeyRecord) {
    return this.write(() => {
      const cur = this.index.get(name);
      if (!cur) throw unknownKey(name);
      const rec = change(cur);
      return { next: this.index.list().map((r) => (r === cur ? rec : r)), apply: () => this.index.set(rec), result: rec };
    });
  }

  delete(name: string) {
    return this.write(() => {
      const cur = this.index.get(name);
      return { next: this.index.list().filter((r) => r !== cur), apply: () => cur && this.index.remove(cur.name), result: cur };
    });
  }

  async close() {
    await this.file.close();
  }

  /** On disk first, then visible: an acknowledged delete is refused at once. */
  private write<T>(step: () => { next: KeyRecord[]; apply: () => unknown; result: T }): Promise<T> {
    return this.file.update('keys', () => {
      const s = step();
      return {
        value: s.next,
        commit: () => {
          s.apply();
          return s.result;
        },
      };
    });
  }
}
