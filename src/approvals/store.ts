import type { EventEmitter } from 'node:events';
import type { ApprovalRecord, ApprovalStatus } from './record.js';

export type TransitionResult = { ok: true; record: ApprovalRecord } | { ok: false; record: ApprovalRecord | undefined };

/**
 * Approval requests. State changes are compare-and-set so that concurrent executions of
 * one approval reach the MCP server once. Embedded: memory; shared: Redis (§9).
 */
export interface ApprovalStore {
  /** Throws TooManyPendingError beyond `maxPendingPerOwner`. */
  create(record: ApprovalRecord, maxPendingPerOwner: number): Promise<void>;
  /** Reads the record, expiring it first if its time has passed. */
  get(id: string): Promise<ApprovalRecord | undefined>;
  list(status?: ApprovalStatus): Promise<ApprovalRecord[]>;
  /** Applies `patch` only if the current status is one of `from`. */
  transition(id: string, from: readonly ApprovalStatus[], patch: Partial<ApprovalRecord>): Promise<TransitionResult>;
  /** Resolves when the record changes, or after `ms`. */
  waitForChange(id: string, ms: number, signal?: AbortSignal): Promise<void>;
  pendingCount(): number;
  close(): Promise<void>;
}

export class TooManyPendingError extends Error {}

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
