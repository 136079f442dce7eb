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
  /**
   * Appends one serialized stream event; events are appended in sequence order from 0. Each
   * log is bounded in bytes (UTF-8, `maxEventBytes`): past it the oldest events are dropped
   * (the newest that fit are kept; an event bigger than the bound alone is not kept), while
   * sequence numbers stay those of the events appended (see eventLogRules).
   */
  appendEvent(id: string, event: string): Promise<void>;
  /** The kept serialized events with a sequence number above `after`, in order (dropped ones are skipped). */
  events(id: string, after: number): Promise<string[]>;
  /** How many events were ever appended to the log (kept or dropped): the next sequence number. */
  eventCount(id: string): Promise<number>;
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
/** Default bound of one background response's event log (and, embedded, of all of them together). */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024 * 1024;

/** UTF-8 size of an event, as both stores count it (Redis counts bytes). */
export const eventBytes = (event: string) => Buffer.byteLength(event, 'utf8');

/** One event log: the kept events, their bytes, and how many older ones were dropped (the first kept one's sequence number). */
interface EventLog {
  events: string[];
  bytes: number;
  first: number;
}

/**
 * The bound both stores apply on append (the Redis one in a Lua script, redisStore.ts): the
 * event is appended, then the oldest are dropped until the log fits; one bigger than the
 * bound empties the log and is itself dropped. Sequence numbers are kept: `first` counts
 * what was dropped.
 */
export function appendBounded(log: EventLog, event: string, maxBytes: number): void {
  const size = eventBytes(event);
  if (size > maxBytes) {
    log.first += log.events.length + 1;
    log.events = [];
    log.bytes = 0;
    return;
  }
  log.events.push(event);
  log.bytes += size;
  let drop = 0;
  while (log.bytes > maxBytes) log.bytes -= eventBytes(log.events[drop++]!);
  if (drop) {
    log.events.splice(0, drop);
    log.first += drop;
  }
}

export class MemoryResponseStore implements ResponseStore {
  private readonly cache: LRUCache<string, StoredResponse>;
  /**
   * Event logs of background responses, bounded by count, each by bytes, and all of them by the
   * same bytes (each event may repeat the whole output): the least recently written log goes first.
   */
  private readonly log: LRUCache<string, EventLog>;
  private readonly maxEventBytes: number;
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
    this.maxEventBytes = o.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.log = new LRUCache<string, EventLog>({ max: 10_000, maxSize: this.maxEventBytes, sizeCalculation: (l) => Math.max(1, l.bytes), ttl: DAY_MS });
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
    const log = this.log.get(id) ?? { events: [], bytes: 0, first: 0 };
    appendBounded(log, event, this.maxEventBytes);
    // Set again: the size (and recency) the LRU bounds all logs by.
    this.log.set(id, log);
  }
  async events(id: string, after: number) {
    const log = this.log.get(id);
    return log ? log.events.slice(Math.max(0, after + 1 - log.first)) : [];
  }
  async eventCount(id: string) {
    const log = this.log.get(id);
    return log ? log.first + log.events.length : 0;
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
