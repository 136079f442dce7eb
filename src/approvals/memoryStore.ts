import { EventEmitter } from 'node:events';
import { approvalBytes, isLive, nowS, type ApprovalRecord, type ApprovalStatus } from './record.js';
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

const LIVE: readonly ApprovalStatus[] = ['pending', 'approved'];

interface Holding {
  /** Insertion order = creation order: the oldest first. */
  ids: Set<string>;
  bytes: number;
}

/** In-memory approvals. Node runs each transition to completion, so CAS is a status check. */
export class MemoryApprovalStore implements ApprovalStore {
  /** Insertion order = creation order (pages follow it). */
  private readonly records = new Map<string, { record: ApprovalRecord; bytes: number }>();
  private readonly holdings = new Map<string, Holding>();
  private readonly pending = new Set<string>();
  private readonly changes = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  /** Finished records are kept this long after expiry, for reads (unless their key needs the room). */
  constructor(private readonly retainS = 3600) {
    this.changes.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), 5000).unref();
  }

  async create(record: ApprovalRecord, bound: HoldingBound) {
    const bytes = approvalBytes(record);
    let h = this.holdings.get(record.owner);
    if (h) {
      const over = () => h!.ids.size + 1 > bound.maxCount || h!.bytes + bytes > bound.maxBytes;
      // Make room from the key's own finished records (a live status past its expiry is
      // finished), oldest first. Nothing is scanned while the key is under its bound.
      if (over()) {
        const now = nowS();
        for (const id of h.ids) {
          if (!over()) break;
          if (!isLive(this.records.get(id)!.record, now)) this.drop(id);
        }
      }
      if (over()) throw this.refusal(h, bytes, bound);
    } else if (bytes > bound.maxBytes) {
      throw new TooManyPendingError('bytes', 1);
    }
    if (!h || !this.holdings.has(record.owner)) this.holdings.set(record.owner, (h = { ids: new Set(), bytes: 0 }));
    this.records.set(record.id, { record: { ...record }, bytes });
    h.ids.add(record.id);
    h.bytes += bytes;
    if (record.status === 'pending') this.pending.add(record.id);
  }

  async get(id: string) {
    this.expireIfDue(id);
    const r = this.records.get(id)?.record;
    return r && { ...r };
  }

  async list(q: ListQuery): Promise<ListPage> {
    if (q.after !== undefined && !this.records.has(q.after)) throw new UnknownCursorError();
    const data: ApprovalRecord[] = [];
    let started = q.after === undefined;
    for (const [id, e] of this.records) {
      if (!started) {
        started = id === q.after;
        continue;
      }
      this.expireIfDue(id);
      if (q.status && e.record.status !== q.status) continue;
      if (data.length === q.limit) return { data, has_more: true };
      data.push({ ...e.record });
    }
    return { data, has_more: false };
  }

  async transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult> {
    this.expireIfDue(id);
    return this.apply(id, from, patch);
  }

  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return waitForEvent(this.changes, id, ms, signal);
  }

  pendingCount() {
    return this.pending.size;
  }

  async close() {
    clearInterval(this.sweeper);
  }

  private refusal(h: Holding, bytes: number, bound: HoldingBound): TooManyPendingError {
    const now = nowS();
    let soonest = Infinity;
    for (const id of h.ids) soonest = Math.min(soonest, this.records.get(id)!.record.expires_at);
    const reason = h.ids.size + 1 > bound.maxCount ? 'count' : 'bytes';
    return new TooManyPendingError(bytes > bound.maxBytes ? 'bytes' : reason, Number.isFinite(soonest) ? Math.max(1, soonest - now) : 1);
  }

  private apply(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): TransitionResult {
    const cur = this.records.get(id);
    if (!cur || !from.includes(cur.record.status)) return { ok: false, record: cur && { ...cur.record } };
    const next = { ...cur.record, ...patch, id: cur.record.id, owner: cur.record.owner };
    // Only the status and decision fields change; a reason adds to the key's bytes.
    const delta = Buffer.byteLength(next.reason ?? '') - Buffer.byteLength(cur.record.reason ?? '');
    cur.record = next;
    cur.bytes += delta;
    const h = this.holdings.get(next.owner);
    if (h) h.bytes += delta;
    if (next.status === 'pending') this.pending.add(id);
    else this.pending.delete(id);
    this.changes.emit(id);
    return { ok: true, record: { ...next } };
  }

  private drop(id: string) {
    const e = this.records.get(id);
    if (!e) return;
    this.records.delete(id);
    this.pending.delete(id);
    const h = this.holdings.get(e.record.owner);
    if (!h) return;
    h.ids.delete(id);
    h.bytes -= e.bytes;
    if (h.ids.size === 0) this.holdings.delete(e.record.owner);
  }

  private expireIfDue(id: string) {
    const r = this.records.get(id)?.record;
    if (r && LIVE.includes(r.status) && nowS() >= r.expires_at) this.apply(id, LIVE, { status: 'expired' });
  }

  private sweep() {
    const now = nowS();
    for (const [id, e] of this.records) {
      this.expireIfDue(id);
      if (!LIVE.includes(e.record.status) && now > e.record.expires_at + this.retainS) this.drop(id);
    }
  }
}
