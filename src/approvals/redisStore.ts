import { EventEmitter } from 'node:events';
import type { ClusterBus } from '../store/bus.js';
import type { RedisConnection } from '../store/redis.js';
import { ApprovalRecordSchema, approvalBytes, isLive, nowS, type ApprovalRecord, type ApprovalStatus } from './record.js';
import {
  TooManyPendingError,
  UnknownCursorError,
  waitForEvent,
  type ApprovalStore,
  type HoldingBound,
  type ListPage,
  type ListQuery,
  type TransitionResult,
} from './store.js';

const RETAIN_S = 3600;

// The owner's holding is a hash id → "bytes:expires_at:drop_at:seq:live", plus a field
// "#sum" → "count:bytes" kept as an upper bound (record keys that expire on their own are
// still in it). While the upper bound leaves room, a create is O(1); otherwise it scans the
// holding: drops entries whose record key has expired (recomputing the sum exactly), then the
// owner's oldest finished records while the new one does not fit; if the live ones alone
// leave no room it refuses with the seconds until the oldest live one expires.
// KEYS: record, holding, index of all, index of pending, pending by expiry, sequence.
// ARGV: json, id, expires_at, max count, max bytes, now, ttl, bytes, record key prefix.
const CREATE = `
local now = tonumber(ARGV[6])
local add = tonumber(ARGV[8])
local maxCount, maxBytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local count, bytes = 0, 0
local sum = redis.call('HGET', KEYS[2], '#sum')
if sum then
  local c, b = string.match(sum, '^(%d+):(-?%d+)$')
  count, bytes = tonumber(c), tonumber(b)
end
if count + 1 > maxCount or bytes + add > maxBytes then
  local held = redis.call('HGETALL', KEYS[2])
  count, bytes = 0, 0
  local finished = {}
  local soonest = nil
  local function forget(id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    redis.call('ZREM', KEYS[5], id)
  end
  for i = 1, #held, 2 do
    local id = held[i]
    if id ~= '#sum' then
      local b, exp, dropAt, n, live = string.match(held[i + 1], '^(%d+):(%d+):(%d+):(%d+):(%d)$')
      b, exp, dropAt, n = tonumber(b), tonumber(exp), tonumber(dropAt), tonumber(n)
      if dropAt <= now then
        forget(id)
      else
        count = count + 1
        bytes = bytes + b
        if live == '0' or exp <= now then
          table.insert(finished, {id = id, n = n, b = b})
        elseif soonest == nil or exp < soonest then
          soonest = exp
        end
      end
    end
  end
  table.sort(finished, function(x, y) return x.n < y.n end)
  local i = 1
  while (count + 1 > maxCount or bytes + add > maxBytes) and i <= #finished do
    local f = finished[i]
    redis.call('DEL', ARGV[9] .. f.id)
    forget(f.id)
    count = count - 1
    bytes = bytes - f.b
    i = i + 1
  end
  redis.call('HSET', KEYS[2], '#sum', count .. ':' .. bytes)
  if count + 1 > maxCount then return {0, 'count', (soonest or (now + 1)) - now} end
  if bytes + add > maxBytes then return {0, 'bytes', (soonest or (now + 1)) - now} end
end
local ttl = tonumber(ARGV[7])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
local seq = redis.call('INCR', KEYS[6])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[8] .. ':' .. ARGV[3] .. ':' .. (now + ttl) .. ':' .. seq .. ':1', '#sum', (count + 1) .. ':' .. (bytes + add))
if redis.call('TTL', KEYS[2]) < ttl then redis.call('EXPIRE', KEYS[2], ttl) end
redis.call('ZADD', KEYS[3], seq, ARGV[2])
redis.call('ZADD', KEYS[4], seq, ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[2])
return {1, '', 0}`;

// Compare-and-set on the status, with expiry applied first. KEYS: record, pending by expiry,
// index of pending; ARGV: allowed statuses (JSON), patch (JSON), now, prefix of holdings.
const TRANSITION = `
local raw = redis.call('GET', KEYS[1])
if not raw then return {0, false} end
local rec = cjson.decode(raw)
local now = tonumber(ARGV[3])
local function reasonBytes()
  if type(rec.reason) == 'string' then return string.len(rec.reason) end
  return 0
end
local function settle(delta)
  if rec.status ~= 'pending' then
    redis.call('ZREM', KEYS[2], rec.id)
    redis.call('ZREM', KEYS[3], rec.id)
  end
  local h = ARGV[4] .. rec.owner
  local v = redis.call('HGET', h, rec.id)
  if v then
    local b, rest = string.match(v, '^(%d+):(.*):%d$')
    local live = (rec.status == 'pending' or rec.status == 'approved') and '1' or '0'
    redis.call('HSET', h, rec.id, (tonumber(b) + delta) .. ':' .. rest .. ':' .. live)
    local sum = redis.call('HGET', h, '#sum')
    if sum and delta ~= 0 then
      local c, sb = string.match(sum, '^(%d+):(-?%d+)$')
      redis.call('HSET', h, '#sum', c .. ':' .. (tonumber(sb) + delta))
    end
  end
end
if (rec.status == 'pending' or rec.status == 'approved') and now >= rec.expires_at then
  rec.status = 'expired'
  settle(0)
  raw = cjson.encode(rec)
  redis.call('SET', KEYS[1], raw, 'KEEPTTL')
end
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do if s == rec.status then ok = true end end
if not ok then return {0, raw} end
local before = reasonBytes()
local patch = cjson.decode(ARGV[2])
for k, v in pairs(patch) do rec[k] = v end
settle(reasonBytes() - before)
raw = cjson.encode(rec)
redis.call('SET', KEYS[1], raw, 'KEEPTTL')
return {1, raw}`;

/**
 * Approvals in Redis: one key per request (expiring with it), state changes by a Lua
 * compare-and-set, so twenty concurrent executions across instances still run once. Each
 * key's holding (count and bytes) is bounded in the same script that creates.
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
  private holdingKey = (owner: string) => this.conn.key('held', owner);
  private indexAll = () => this.conn.key('appr-index');
  private indexPending = () => this.conn.key('appr-index-pending');
  private allPending = () => this.conn.key('pending-all');
  private seq = () => this.conn.key('appr-seq');

  async create(record: ApprovalRecord, bound: HoldingBound) {
    const now = nowS();
    const ttl = Math.max(1, record.expires_at - now + RETAIN_S);
    const [ok, reason, retry] = (await this.conn.run((r) =>
      r.eval(
        CREATE,
        6,
        this.k(record.id),
        this.holdingKey(record.owner),
        this.indexAll(),
        this.indexPending(),
        this.allPending(),
        this.seq(),
        JSON.stringify(record),
        record.id,
        record.expires_at,
        bound.maxCount,
        bound.maxBytes,
        now,
        ttl,
        approvalBytes(record),
        this.k(''),
      ),
    )) as [number, string, number];
    if (ok !== 1) throw new TooManyPendingError(reason === 'bytes' ? 'bytes' : 'count', Math.max(1, Number(retry)));
  }

  async get(id: string) {
    // A read applies expiry too: a transition from nothing.
    const t = await this.transition(id, [], {});
    return t.record;
  }

  async list(q: ListQuery): Promise<ListPage> {
    let min = '-inf';
    if (q.after !== undefined) {
      const after = q.after;
      const score = await this.conn.run((r) => r.zscore(this.indexAll(), after));
      if (score === null) throw new UnknownCursorError();
      min = `(${score}`;
    }
    const index = q.status === 'pending' ? this.indexPending() : this.indexAll();
    const now = nowS();
    const data: ApprovalRecord[] = [];
    for (;;) {
      const from = min;
      const batch = await this.conn.run((r) => r.zrangebyscore(index, from, '+inf', 'WITHSCORES', 'LIMIT', 0, 200));
      if (batch.length === 0) return { data, has_more: false };
      const ids = batch.filter((_, i) => i % 2 === 0);
      const raws = await this.conn.run((r) => r.mget(...ids.map((id) => this.k(id))));
      const gone: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const raw = raws[i];
        if (!raw) {
          gone.push(ids[i]!);
          continue;
        }
        const rec = parseRecord(raw);
        // Shown as reads show it: a live status past its expiry is expired.
        if ((rec.status === 'pending' || rec.status === 'approved') && !isLive(rec, now)) rec.status = 'expired';
        if (q.status && rec.status !== q.status) continue;
        if (data.length === q.limit) return { data, has_more: true };
        data.push(rec);
      }
      // Record keys expire on their own: forget their index entries.
      if (gone.length) await this.conn.run((r) => r.multi().zrem(this.indexAll(), ...gone).zrem(this.indexPending(), ...gone).exec());
      min = `(${batch[batch.length - 1]}`;
    }
  }

  async transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult> {
    const now = nowS();
    const [ok, raw] = (await this.conn.run((r) =>
      r.eval(
        TRANSITION,
        3,
        this.k(id),
        this.allPending(),
        this.indexPending(),
        JSON.stringify(from.length ? from : ['__none__']),
        JSON.stringify(patch),
        now,
        this.holdingKey(''),
      ),
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
