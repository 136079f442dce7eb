import { promises as fs } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { ServersFileSchema, type ServerRecord } from '../config/serverRecord.js';
import { ConfigError } from '../config/env.js';
import { ConflictError, NotFoundError } from '../errors/index.js';
import { labelKey, type RegistryStore } from './store.js';

/** Reads and validates servers.config.json; a missing file is an empty registry. */
export async function readServersFile(path: string): Promise<ServerRecord[]> {
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ConfigError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  const r = ServersFileSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const [, index, ...field] = issue.path;
    const raw = (json as { servers?: Array<{ server_label?: unknown }> })?.servers?.[index as number];
    const name = typeof raw?.server_label === 'string' ? `"${raw.server_label}"` : `#${String(index)}`;
    const where = index === undefined ? 'the file' : `server ${name}, field ${field.join('.') || '(record)'}`;
    throw new ConfigError(`${path}: invalid ${where}: ${issue.message}`);
  }
  const seen = new Set<string>();
  for (const s of r.data.servers) {
    if (seen.has(labelKey(s.server_label))) {
      throw new ConfigError(`${path}: server_label "${s.server_label}" appears twice`);
    }
    seen.add(labelKey(s.server_label));
  }
  return r.data.servers;
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
  private queue: Promise<unknown> = Promise.resolve();
  private readonly events = new EventEmitter();

  private constructor(private readonly path: string) {}

  static async open(path: string): Promise<FileRegistryStore> {
    const store = new FileRegistryStore(path);
    for (const r of await readServersFile(path)) store.records.set(labelKey(r.server_label), r);
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
    await this.queue.catch(() => undefined);
  }

  /** Serialized copy-on-write: the new state is on disk before it is visible or acknowledged. */
  private write<T>(label: string, mutate: (next: Map<string, ServerRecord>) => T, notify = true): Promise<T> {
    const run = async () => {
      const next = new Map(this.records);
      const result = mutate(next);
      await writeFileAtomic(this.path, JSON.stringify({ servers: [...next.values()] }, null, 2) + '\n');
      this.records.clear();
      for (const [k, v] of next) this.records.set(k, v);
      if (notify) this.events.emit('change', label);
      return result;
    };
    const p = this.queue.then(run, run);
    this.queue = p.catch(() => undefined);
    return p;
  }
}

export function unknownLabel(label: string, param: string | null = 'server_label') {
  return new NotFoundError('unknown_server_label', `No MCP server is registered with server_label '${label}'.`, {
    param,
  });
}
