import { LRUCache } from 'lru-cache';
import { transcriptSize } from './size.js';
import type { Entry } from './transcript.js';

export interface StoredResponse {
  id: string;
  owner: string;
  /** The public response object as last returned. */
  response: Record<string, unknown>;
  /** Public form of this request's input items, with ids. */
  inputItems: Array<Record<string, unknown>>;
  /** The whole conversation through this response: what `previous_response_id` continues. */
  transcript: Entry[];
}

/** Stored responses. Embedded: a bounded in-memory LRU; shared: Redis (§9). */
export interface ResponseStore {
  put(r: StoredResponse): Promise<void>;
  get(id: string): Promise<StoredResponse | undefined>;
  delete(id: string): Promise<boolean>;

  // Background runs (SPEC §6, §15): what any instance needs to follow, resume or cancel one.
  /** Appends one serialized stream event; events are appended in sequence order from 0. */
  appendEvent(id: string, event: string): Promise<void>;
  /** The serialized events with a sequence number above `after`, in order. */
  events(id: string, after: number): Promise<string[]>;
  /** The running instance's lease, renewed while it runs. */
  setLease(id: string, instance: string, ttlMs: number): Promise<void>;
  leaseHolder(id: string): Promise<string | undefined>;
  clearLease(id: string): Promise<void>;
  /** A cancel asked for on any instance; the running one checks it with each renewal. */
  requestCancel(id: string): Promise<void>;
  cancelRequested(id: string): Promise<boolean>;
  /** True for exactly one caller: who writes the run's end (the run, a cancel, or a lost-instance finding). */
  claimEnd(id: string): Promise<boolean>;
}

const DAY_MS = 24 * 3600_000;

export class MemoryResponseStore implements ResponseStore {
  private readonly cache: LRUCache<string, StoredResponse>;
  /** Event logs of background responses, bounded by count and by bytes (each event may repeat the whole output). */
  private readonly log: LRUCache<string, { events: string[]; bytes: number }>;
  private readonly leases = new Map<string, { instance: string; until: number }>();
  private readonly cancels = new Set<string>();
  private readonly ended = new LRUCache<string, true>({ max: 100_000, ttl: DAY_MS });

  constructor(o: { max?: number; maxBytes?: number; ttlMs?: number; maxEventBytes?: number } = {}) {
    this.cache = new LRUCache<string, StoredResponse>({
      max: o.max ?? 10_000,
      maxSize: o.maxBytes ?? 512 * 1024 * 1024,
      // Rough size: the serialized transcript dominates (each entry measured once: ./size.js).
      sizeCalculation: (r) => Math.max(1, transcriptSize(r.transcript) + JSON.stringify(r.response).length),
      ttl: o.ttlMs ?? 30 * DAY_MS,
    });
    this.log = new LRUCache<string, { events: string[]; bytes: number }>({ max: 10_000, maxSize: o.maxEventBytes ?? 256 * 1024 * 1024, sizeCalculation: (l) => Math.max(1, l.bytes), ttl: DAY_MS });
  }

  async put(r: StoredResponse) {
    this.cache.set(r.id, r);
  }
  async get(id: string) {
    return this.cache.get(id);
  }
  async delete(id: string) {
    this.log.delete(id);
    return this.cache.delete(id);
  }
  async appendEvent(id: string, event: string) {
    const log = this.log.get(id) ?? { events: [], bytes: 0 };
    log.events.push(event);
    log.bytes += event.length;
    this.log.set(id, log);
  }
  async events(id: string, after: number) {
    return (this.log.get(id)?.events ?? []).slice(Math.max(0, after + 1));
  }
  async setLease(id: string, instance: string, ttlMs: number) {
    this.leases.set(id, { instance, until: Date.now() + ttlMs });
  }
  async leaseHolder(id: string) {
    const l = this.leases.get(id);
    if (l && l.until < Date.now()) this.leases.delete(id);
    return l && l.until >= Date.now() ? l.instance : undefined;
  }
  async clearLease(id: string) {
    this.leases.delete(id);
    this.cancels.delete(id);
  }
  async requestCancel(id: string) {
    this.cancels.add(id);
  }
  async cancelRequested(id: string) {
    return this.cancels.has(id);
  }
  async claimEnd(id: string) {
    if (this.ended.has(id)) return false;
    this.ended.set(id, true);
    return true;
  }
}
