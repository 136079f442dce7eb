import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { ServerRecordSchema, type ServerRecord } from '../config/serverRecord.js';
import { ConflictError } from '../errors/index.js';
import type { ClusterBus } from '../store/bus.js';
import type { RedisConnection } from '../store/redis.js';
import { unknownLabel } from './fileStore.js';
import { labelKey, type RegistryStore } from './store.js';

// Create only if absent; replace only if present: label uniqueness and 404s hold across instances.
const CREATE = `if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then return 1 end return 0`;
const REPLACE = `if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0`;

/**
 * Records in one Redis hash. Each instance reads from its own copy (the hot path touches no
 * network); every write goes to Redis first and is announced so the others reload it.
 */
export class RedisRegistryStore implements RegistryStore {
  private readonly records = new Map<string, ServerRecord>();
  private readonly events = new EventEmitter();
  private readonly hash: string;

  private constructor(
    private readonly conn: RedisConnection,
    private readonly bus: ClusterBus,
    private readonly logger: Logger,
  ) {
    this.hash = conn.key('servers');
  }

  /** Loads the store; `seed` (servers.config.json) is imported only into an empty store. */
  static async open(conn: RedisConnection, bus: ClusterBus, logger: Logger, seed: ServerRecord[]): Promise<RedisRegistryStore> {
    const store = new RedisRegistryStore(conn, bus, logger);
    const importLock = conn.key('imported');
    if (seed.length && (await conn.run((r) => r.set(importLock, '1', 'NX'))) === 'OK') {
      const len = await conn.run((r) => r.hlen(store.hash));
      if (len === 0) {
        await conn.run((r) => r.hset(store.hash, Object.fromEntries(seed.map((s) => [labelKey(s.server_label), JSON.stringify(s)]))));
        logger.info({ servers: seed.length }, 'imported servers.config.json into the shared store');
      }
    }
    await store.reloadAll();
    bus.subscribe((e) => {
      if (e.kind === 'registry' || e.kind === 'pins') void store.reloadOne(e.label, e.kind === 'registry');
    });
    // Anything missed while disconnected: read everything again.
    conn.cmd.on('ready', () => void store.reloadAll().catch(() => undefined));
    return store;
  }

  async list() {
    return [...this.records.values()];
  }
  async get(label: string) {
    return this.records.get(labelKey(label));
  }

  async create(record: ServerRecord) {
    const ok = await this.conn.run((r) => r.eval(CREATE, 1, this.hash, labelKey(record.server_label), JSON.stringify(record)));
    if (ok !== 1) {
      throw new ConflictError('server_label_taken', `server_label '${record.server_label}' is already registered`, { param: 'server_label' });
    }
    this.applied(record.server_label, record, true);
    return record;
  }

  async replace(label: string, record: ServerRecord) {
    const ok = await this.conn.run((r) => r.eval(REPLACE, 1, this.hash, labelKey(label), JSON.stringify(record)));
    if (ok !== 1) throw unknownLabel(label);
    this.applied(label, record, true);
    return record;
  }

  async delete(label: string) {
    const n = await this.conn.run((r) => r.hdel(this.hash, labelKey(label)));
    if (n === 1) this.applied(label, undefined, true);
    return n === 1;
  }

  async setPins(label: string, pins: Record<string, string>) {
    const cur = this.records.get(labelKey(label));
    if (!cur) return;
    const next = { ...cur, pinned_tools: pins };
    const ok = await this.conn.run((r) => r.eval(REPLACE, 1, this.hash, labelKey(label), JSON.stringify(next)));
    if (ok === 1) {
      this.records.set(labelKey(label), next);
      this.bus.publish({ kind: 'pins', label });
    }
  }

  onChange(listener: (label: string) => void) {
    this.events.on('change', listener);
    return () => void this.events.off('change', listener);
  }

  async close() {}

  private applied(label: string, record: ServerRecord | undefined, notify: boolean) {
    if (record) this.records.set(labelKey(label), record);
    else this.records.delete(labelKey(label));
    if (notify) {
      this.events.emit('change', label);
      this.bus.publish({ kind: 'registry', label });
    }
  }

  private parse(json: string | null): ServerRecord | undefined {
    if (!json) return undefined;
    const r = ServerRecordSchema.safeParse(JSON.parse(json));
    if (!r.success) this.logger.error({ issue: r.error.issues[0]?.message }, 'invalid record in the shared store; ignored');
    return r.success ? r.data : undefined;
  }

  private async reloadOne(label: string, adminChange: boolean) {
    const json = await this.conn.run((r) => r.hget(this.hash, labelKey(label))).catch(() => undefined);
    if (json === undefined) return;
    const rec = this.parse(json);
    if (rec) this.records.set(labelKey(label), rec);
    else this.records.delete(labelKey(label));
    if (adminChange) this.events.emit('change', label);
  }

  private async reloadAll() {
    const all = await this.conn.run((r) => r.hgetall(this.hash));
    const seen = new Set<string>();
    for (const [k, json] of Object.entries(all)) {
      const rec = this.parse(json);
      if (!rec) continue;
      seen.add(k);
      const before = this.records.get(k);
      this.records.set(k, rec);
      if (before && JSON.stringify(before) !== json) this.events.emit('change', rec.server_label);
    }
    for (const k of [...this.records.keys()]) {
      if (!seen.has(k)) {
        const gone = this.records.get(k)!;
        this.records.delete(k);
        this.events.emit('change', gone.server_label);
      }
    }
  }
}
