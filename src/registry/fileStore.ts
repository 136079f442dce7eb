import { promises as fs } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { ServerRecordSchema, type ServerRecord } from '../config/serverRecord.js';
import { ConfigError } from '../config/env.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import { labelKey, type RegistryStore } from './store.js';

/**
 * Top-level sections of the registry file, each owned by one store: `servers` (this file),
 * `keys` (src/keys), `oauth` (src/oauth: sealed values only). Another section is added by naming it here and giving it a store that
 * calls RegistryFile.update with its own serialized value, as FileKeyStore does.
 */
export const REGISTRY_SECTIONS = ['servers', 'keys', 'oauth'] as const;
export type RegistrySection = (typeof REGISTRY_SECTIONS)[number];

/**
 * The registry file (`BROKER_CONFIG`): one JSON object of sections, read once, rewritten
 * atomically and whole by one serialized writer whichever section changes.
 */
export class RegistryFile {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly path: string,
    private readonly doc: Partial<Record<RegistrySection, unknown>>,
  ) {}

  /** A missing file is an empty registry; anything unreadable is a ConfigError. */
  static async open(path: string): Promise<RegistryFile> {
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new RegistryFile(path, {});
      throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${path}: invalid the file: expected a JSON object`);
    for (const k of Object.keys(json)) {
      if (!(REGISTRY_SECTIONS as readonly string[]).includes(k)) throw new ConfigError(`${path}: invalid the file: unknown field "${k}"`);
    }
    return new RegistryFile(path, json as Partial<Record<RegistrySection, unknown>>);
  }

  /** The section as read from disk or last written; undefined when absent. */
  section(name: RegistrySection): unknown {
    return this.doc[name];
  }

  /**
   * Serialized write of one section: `step` runs once every earlier write is done, returns
   * the section's next value and a commit run only after the whole file is durable. A
   * throwing step writes nothing.
   */
  update<T>(name: RegistrySection, step: () => { value: unknown; commit: () => T }): Promise<T> {
    const run = async () => {
      const { value, commit } = step();
      const next = { ...this.doc, [name]: value };
      const ordered = Object.fromEntries(REGISTRY_SECTIONS.filter((k) => next[k] !== undefined).map((k) => [k, next[k]]));
      await writeFileAtomic(this.path, JSON.stringify(ordered, null, 2) + '\n');
      this.doc[name] = value;
      return commit();
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }

  async close() {
    await this.queue.catch(() => undefined);
  }
}

/** Validates the `servers` section; names the record and field of the first problem. */
export function parseServers(file: RegistryFile): ServerRecord[] {
  const path = file.path;
  const raw = file.section('servers') ?? [];
  const r = ServersSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const [index, ...field] = issue.path;
    const rec = Array.isArray(raw) ? (raw[index as number] as { server_label?: unknown } | undefined) : undefined;
    const name = typeof rec?.server_label === 'string' ? `"${rec.server_label}"` : `#${String(index)}`;
    const where = index === undefined ? 'the file' : `server ${name}, field ${field.join('.') || '(record)'}`;
    throw new ConfigError(`${path}: invalid ${where}: ${issue.message}`);
  }
  const seen = new Set<string>();
  for (const s of r.data) {
    if (seen.has(labelKey(s.server_label))) {
      throw new ConfigError(`${path}: server_label "${s.server_label}" appears twice`);
    }
    seen.add(labelKey(s.server_label));
  }
  return r.data;
}

const ServersSchema = z.array(ServerRecordSchema);

/** Reads and validates the servers of servers.config.json; a missing file is an empty registry. */
export async function readServersFile(path: string): Promise<ServerRecord[]> {
  return parseServers(await RegistryFile.open(path));
}

/** Atomic replace: temp file + fsync + rename + directory fsync, mode 0600. */
export async function writeFileAtomic(path: string, data: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await fs.open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await fs.rename(tmp, path);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  const dir = await fs.open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** The embedded registry: records in memory, every write serialized and persisted first. */
export class FileRegistryStore implements RegistryStore {
  private readonly records = new Map<string, ServerRecord>();
  private readonly events = new EventEmitter();

  private constructor(private readonly file: RegistryFile) {}

  static async open(path: string): Promise<FileRegistryStore> {
    return FileRegistryStore.on(await RegistryFile.open(path));
  }

  /** The `servers` section of an opened registry file (shared with the other sections). */
  static on(file: RegistryFile): FileRegistryStore {
    const store = new FileRegistryStore(file);
    for (const r of parseServers(file)) store.records.set(labelKey(r.server_label), r);
    return store;
  }

  async list() {
    return [...this.records.values()];
  }
  async get(label: string) {
    return this.records.get(labelKey(label));
  }

  create(record: ServerRecord) {
    return this.write(record.server_label, (next) => {
      if (next.has(labelKey(record.server_label))) {
        throw new ConflictError('server_label_taken', `server_label '${record.server_label}' is already registered`, {
          param: 'server_label',
        });
      }
      next.set(labelKey(record.server_label), record);
      return record;
    });
  }

  replace(label: string, record: ServerRecord) {
    return this.write(label, (next) => {
      if (!next.has(labelKey(label))) throw unknownLabel(label);
      next.set(labelKey(label), record);
      return record;
    });
  }

  delete(label: string) {
    return this.write(label, (next) => next.delete(labelKey(label)));
  }

  async setPins(label: string, pins: Record<string, string>) {
    await this.write(
      label,
      (next) => {
        const r = next.get(labelKey(label));
        if (r) next.set(labelKey(label), { ...r, pinned_tools: pins });
      },
      false,
    );
  }

  onChange(listener: (label: string) => void) {
    this.events.on('change', listener);
    return () => void this.events.off('change', listener);
  }

  async close() {
    await this.file.close();
  }

  /** Serialized copy-on-write: the new state is on disk before it is visible or acknowledged. */
  private write<T>(label: string, mutate: (next: Map<string, ServerRecord>) => T, notify = true): Promise<T> {
    return this.file.update('servers', () => {
      const next = new Map(this.records);
      const result = mutate(next);
      return {
        value: [...next.values()],
        commit: () => {
          this.records.clear();
          for (const [k, v] of next) this.records.set(k, v);
          if (notify) this.events.emit('change', label);
          return result;
        },
      };
    });
  }
}

export function unknownLabel(label: string, param: string | null = 'server_label') {
  return new NotFoundError('unknown_server_label', `No MCP server is registered with server_label '${label}'.`, {
    param,
  });
}
