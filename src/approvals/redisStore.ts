import { EventEmitter } from 'node:events';
import type { ClusterBus } from '../store/bus.js';
import type { RedisConnection } from '../store/redis.js';
import { ApprovalRecordSchema, nowS, type ApprovalRecord, type ApprovalStatus } from './record.js';
import { TooManyPendingError, waitForEvent, type ApprovalStore, type TransitionResult } from './store.js';

const RETAIN_S = 3600;

// KEYS: record, owner's pending set, all pending. ARGV: json, id, expires_at, max, now, ttl.
const CREATE = `
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
return 1`;

// Compare-and-set on the status, with expiry applied first. KEYS: record, all pending;
// ARGV: allowed statuses (JSON), patch (JSON), now, prefix of owner sets.
const TRANSITION = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, false} end
local rec = cjson.decode(raw)
local now = tonumber(ARGV[3])
local function unpend()
  redis.call('ZREM', ARGV[4] .. rec.owner, rec.id)
  redis.call('ZREM', KEYS[2], rec.id)
end
if (rec.status == 'pending' or rec.status == 'approved') and now >= rec.expires_at then
  rec.status = 'expired'
  unpend()
  raw = cjson.encode(rec)
  redis.call('SET', KEYS[1], raw, 'KEEPTTL')
end
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do if s == rec.status then ok = true end end
if not ok then return {0, raw} end
local patch = cjson.decode(ARGV[2])
for k, v in pairs(patch) do rec[k] = v end
if rec.status ~= 'pending' then unpend() end
raw = cjson.encode(rec)
redis.call('SET', KEYS[1], raw, 'KEEPTTL')
return {1, raw}`;

/**
 * Approvals in Redis: one key per request (expiring with it), state changes by a Lua
 * compare-and-set, so twenty concurrent executions across instances still run once.
 */
export class RedisApprovalStore implements ApprovalStore {
  private readonly changes = new EventEmitter();
  private pending = 0;
  private readonly sampler: NodeJS.Timeout;

  constructor(
    private readonly conn: RedisConnection,
    private readonly bus: ClusterBus,
  ) {
    this.changes.setMaxListeners(0);
    bus.subscribe((e) => {
      if (e.kind === 'approval') this.changes.emit(e.id);
    });
    this.sampler = setInterval(() => void this.samplePending(), 5000).unref();
  }

  private k = (id: string) => this.conn.key('appr', id);
  private ownerKey = (owner: string) => this.conn.key('pending', owner);
  private allPending = () => this.conn.key('pending-all');

  async create(record: ApprovalRecord, maxPendingPerOwner: number) {
    const now = nowS();
    const ttl = Math.max(1, record.expires_at - now + RETAIN_S);
    const ok = await this.conn.run((r) =>
      r.eval(CREATE, 3, this.k(record.id), this.ownerKey(record.owner), this.allPending(), JSON.stringify(record), record.id, record.expires_at, maxPendingPerOwner, now, ttl),
    );
    if (ok !== 1) throw new TooManyPendingError();
  }

  async get(id: string) {
    // A read applies expiry too: a transition from nothing.
    const t = await this.transition(id, [], {});
    return t.record;
  }

  async list(status?: ApprovalStatus) {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.conn.run((r) => r.scan(cursor, 'MATCH', this.k('*'), 'COUNT', 500));
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0' && keys.length < 10_000);
    const out: ApprovalRecord[] = [];
    for (const key of keys) {
      const rec = await this.get(key.slice(this.k('').length));
      if (rec && (!status || rec.status === status)) out.push(rec);
    }
    return out;
  }

  async transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult> {
    const now = nowS();
    const [ok, raw] = (await this.conn.run((r) =>
      r.eval(TRANSITION, 2, this.k(id), this.allPending(), JSON.stringify(from.length ? from : ['__none__']), JSON.stringify(patch), now, this.ownerKey('')),
    )) as [number, string | null];
    const record = raw ? parseRecord(raw) : undefined;
    if (ok === 1) {
      this.changes.emit(id);
      this.bus.publish({ kind: 'approval', id });
      return { ok: true, record: record! };
    }
    return { ok: false, record };
  }

  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return waitForEvent(this.changes, id, ms, signal);
  }

  pendingCount() {
    return this.pending;
  }

  async close() {
    clearInterval(this.sampler);
  }

  private async samplePending() {
    const now = nowS();
    this.pending = await this.conn.run((r) => r.zcount(this.allPending(), now, '+inf')).catch(() => this.pending);
  }
}

// cjson encodes an empty Lua table as {} and null fields disappear: restore them.
function parseRecord(raw: string): ApprovalRecord {
  const o = JSON.parse(raw) as Record<string, unknown>;
  for (const f of ['decided_at', 'reason']) if (o[f] === undefined) o[f] = null;
  return ApprovalRecordSchema.parse(o);
}
