import { LRUCache } from 'lru-cache';
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
}

export class MemoryResponseStore implements ResponseStore {
  private readonly cache: LRUCache<string, StoredResponse>;

  constructor(o: { max?: number; maxBytes?: number; ttlMs?: number } = {}) {
    this.cache = new LRUCache<string, StoredResponse>({
      max: o.max ?? 10_000,
      maxSize: o.maxBytes ?? 512 * 1024 * 1024,
      // Rough size: the serialized transcript dominates.
      sizeCalculation: (r) => Math.max(1, JSON.stringify(r.transcript).length + JSON.stringify(r.response).length),
      ttl: o.ttlMs ?? 30 * 24 * 3600_000,
    });
  }

  async put(r: StoredResponse) {
    this.cache.set(r.id, r);
  }
  async get(id: string) {
    return this.cache.get(id);
  }
  async delete(id: string) {
    return this.cache.delete(id);
  }
}
