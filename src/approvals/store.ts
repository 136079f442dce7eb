import type { EventEmitter } from 'node:events';
import type { ApprovalRecord, ApprovalStatus } from './record.js';

export type TransitionResult = { ok: true; record: ApprovalRecord } | { ok: false; record: ApprovalRecord | undefined };

/**
 * What one API key may hold (issue 10 item 3): records of every status count until they are
 * dropped. A create that does not fit first drops the key's oldest finished records (denied,
 * executed, expired); if the live ones alone do not leave room, it is refused.
 */
export interface HoldingBound {
  /** Records held per key. */
  maxCount: number;
  /** Bytes held per key (approvalBytes of each record). */
  maxBytes: number;
}

export interface ListQuery {
  status?: ApprovalStatus;
  /** An id from an earlier page: the page starts after it (creation order, oldest first). */
  after?: string;
  limit: number;
}

export interface ListPage {
  data: ApprovalRecord[];
  has_more: boolean;
}

/**
 * Approval requests. State changes are compare-and-set so that concurrent executions of
 * one approval reach the MCP server once. Embedded: memory; shared: Redis (§9).
 */
export interface ApprovalStore {
  /** Throws TooManyPendingError when the owner's holding does not leave room under `bound`. */
  create(record: ApprovalRecord, bound: HoldingBound): Promise<void>;
  /** Reads the record, expiring it first if its time has passed. */
  get(id: string): Promise<ApprovalRecord | undefined>;
  /** A page in creation order. Throws UnknownCursorError for an `after` that is not held. */
  list(q: ListQuery): Promise<ListPage>;
  /** Applies `patch` only if the current status is one of `from`. */
  transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult>;
  /** Resolves when the record changes, or after `ms`. */
  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void>;
  pendingCount(): number;
  close(): Promise<void>;
}

export class TooManyPendingError extends Error {
  constructor(
    readonly reason: 'count' | 'bytes',
    /** Seconds until the key's oldest live record expires (room frees up by then at the latest). */
    readonly retryAfterS: number,
  ) {
    super(`approval holding bound reached (${reason})`);
  }
}

export class UnknownCursorError extends Error {}

/** Resolves when `emitter` emits `id`, after `ms`, or on abort, whichever is first. */
export function waitForEvent(emitter: EventEmitter, id: string, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      emitter.off(id, done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    emitter.on(id, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
