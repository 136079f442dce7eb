import { EventEmitter } from 'node:events';
import { nowS, type ApprovalRecord, type ApprovalStatus } from './record.js';
import { TooManyPendingError, waitForEvent, type ApprovalStore, type TransitionResult } from './store.js';

const LIVE: readonly ApprovalStatus[] = ['pending', 'approved'];

/** In-memory approvals. Node runs each transition to completion, so CAS is a status check. */
export class MemoryApprovalStore implements ApprovalStore {
  private readonly records = new Map<string, ApprovalRecord>();
  private readonly pendingByOwner = new Map<string, Set<string>>();
  private readonly changes = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  /** Finished records are kept this long after expiry, for reads. */
  constructor(private readonly retainS = 3600) {
    this.changes.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), 5000).unref();
  }

  async create(record: ApprovalRecord, maxPendingPerOwner: number) {
    const pending = this.pendingByOwner.get(record.owner);
    if (pending) for (const id of pending) this.expireIfDue(id);
    if ((pending?.size ?? 0) >= maxPendingPerOwner) throw new TooManyPendingError();
    this.records.set(record.id, { ...record });
    this.track(record);
  }

  async get(id: string) {
    this.expireIfDue(id);
    const r = this.records.get(id);
    return r && { ...r };
  }

  async list(status?: ApprovalStatus) {
    for (const id of this.records.keys()) this.expireIfDue(id);
    return [...this.records.values()].filter((r) => !status || r.status === status).map((r) => ({ ...r }));
  }

  async transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult> {
    this.expireIfDue(id);
    return this.apply(id, from, patch);
  }

  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    return waitForEvent(this.changes, id, ms, signal);
  }

  pendingCount() {
    let n = 0;
    for (const s of this.pendingByOwner.values()) n += s.size;
    return n;
  }

  async close() {
    clearInterval(this.sweeper);
  }

  private apply(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): TransitionResult {
    const cur = this.records.get(id);
    if (!cur || !from.includes(cur.status)) return { ok: false, record: cur && { ...cur } };
    const next = { ...cur, ...patch, id: cur.id, owner: cur.owner };
    this.records.set(id, next);
    this.track(next);
    this.changes.emit(id);
    return { ok: true, record: { ...next } };
  }

  private track(r: ApprovalRecord) {
    let set = this.pendingByOwner.get(r.owner);
    if (r.status === 'pending') {
      if (!set) this.pendingByOwner.set(r.owner, (set = new Set()));
      set.add(r.id);
    } else if (set) {
      set.delete(r.id);
      if (set.size === 0) this.pendingByOwner.delete(r.owner);
    }
  }

  private expireIfDue(id: string) {
    const r = this.records.get(id);
    if (r && LIVE.includes(r.status) && nowS() >= r.expires_at) this.apply(id, LIVE, { status: 'expired' });
  }

  private sweep() {
    const now = nowS();
    for (const [id, r] of this.records) {
      this.expireIfDue(id);
      if (!LIVE.includes(r.status) && now > r.expires_at + this.retainS) this.records.delete(id);
    }
  }
}
