import { ConflictError, GoneError, InvalidRequestError, NotFoundError, PermissionError, RateLimitError, retryAfter } from '../errors/index.js';
import { newId } from '../util/ids.js';
import { nowS, type ApprovalRecord } from './record.js';
import { TooManyPendingError, UnknownCursorError, type ApprovalStore, type ListPage, type ListQuery } from './store.js';
import { approvalWaitSpan } from '../obs/tracing.js';

/** Bytes of approval requests one key may hold unless configured (BROKER_MAX_APPROVAL_BYTES). */
export const DEFAULT_MAX_BYTES_PER_KEY = 16 * 1024 * 1024;

/** Who is acting on an approval. */
export type Actor = { kind: 'approver' } | { kind: 'api'; owner: string };

export interface NewApproval {
  owner: string;
  mode: 'caller' | 'webhook';
  server_label: string;
  server_key: string;
  server_url: string;
  server_origin: string;
  name: string;
  arguments: string;
  arguments_sha256: string;
  tool_sha256: string;
}

/** What an execution must match (SPEC §4). */
export interface ExecutionBinding {
  owner: string;
  server_key: string;
  server_url: string;
  name: string;
  tool_sha256: string | undefined;
  arguments_sha256: string | undefined;
}

const noRetry = { noRetry: true };

export class ApprovalService {
  constructor(
    private readonly store: ApprovalStore,
    private readonly o: { ttlS: number; maxPendingPerKey: number; maxBytesPerKey?: number },
  ) {}

  /**
   * A new pending request. `bound` overrides the broker-wide holding bound for this key (a
   * named key's `max_pending_approvals`, §11): records of any status count until dropped.
   */
  async create(a: NewApproval, bound: { maxPending?: number | null; maxBytes?: number | null } = {}): Promise<ApprovalRecord> {
    const created_at = nowS();
    const record: ApprovalRecord = {
      ...a,
      id: newId('mcpr'),
      status: 'pending',
      created_at,
      expires_at: created_at + this.o.ttlS,
      decided_at: null,
      reason: null,
    };
    const holding = {
      maxCount: bound.maxPending ?? this.o.maxPendingPerKey,
      maxBytes: bound.maxBytes ?? this.o.maxBytesPerKey ?? DEFAULT_MAX_BYTES_PER_KEY,
    };
    try {
      await this.store.create(record, holding);
    } catch (e) {
      if (!(e instanceof TooManyPendingError)) throw e;
      const what = e.reason === 'count' ? `${holding.maxCount} approval requests` : `${holding.maxBytes} bytes of approval requests`;
      throw new RateLimitError(
        'too_many_pending_approvals',
        `Too many pending approval requests for this API key: it holds ${what}, the most it may. Decide or wait for some to expire.`,
        { headers: retryAfter(Math.min(e.retryAfterS, this.o.ttlS)) },
      );
    }
    return record;
  }

  /** The record if `actor` may see it; 404 for unknown and foreign ids alike. */
  async read(id: string, actor: Actor): Promise<ApprovalRecord> {
    const r = await this.store.get(id);
    if (!r || (actor.kind === 'api' && r.owner !== actor.owner)) throw notFound(id);
    return r;
  }

  /** Long-poll: as soon as the record is no longer pending, or at the timeout. */
  readWhenDecided(id: string, actor: Actor, waitMs: number, signal?: AbortSignal): Promise<ApprovalRecord> {
    return approvalWaitSpan(id, waitMs, () => this.waitDecided(id, actor, waitMs, signal));
  }

  private async waitDecided(id: string, actor: Actor, waitMs: number, signal?: AbortSignal): Promise<ApprovalRecord> {
    const deadline = Date.now() + waitMs;
    let r = await this.read(id, actor);
    while (r.status === 'pending' && Date.now() < deadline && !signal?.aborted) {
      await this.store.waitForChange(id, Math.min(deadline - Date.now(), r.expires_at * 1000 - Date.now() + 50), signal);
      r = await this.read(id, actor);
    }
    return r;
  }

  /** A page of every key's requests, oldest first (approver only). */
  async list(q: ListQuery): Promise<ListPage> {
    try {
      return await this.store.list(q);
    } catch (e) {
      if (!(e instanceof UnknownCursorError)) throw e;
      throw new InvalidRequestError('invalid_value', `No approval request '${q.after}' to page after (it may have been dropped); list again without 'after'.`, {
        param: 'after',
      });
    }
  }

  async decide(id: string, actor: Actor, d: { approve: boolean; reason?: string | null; arguments_sha256?: string }): Promise<ApprovalRecord> {
    const r = await this.read(id, actor);
    if (actor.kind === 'api' && r.mode === 'webhook' && d.approve) {
      throw new PermissionError('approval_requires_approver', 'This server requires the approval service to approve; the caller may only deny.', noRetry);
    }
    if (d.arguments_sha256 !== undefined && d.arguments_sha256 !== r.arguments_sha256) {
      throw new ConflictError('approval_mismatch', 'arguments_sha256 does not match the approval request.', { ...noRetry, param: 'arguments_sha256' });
    }
    const reason = d.reason ?? (d.approve ? null : actor.kind === 'api' ? 'cancelled by caller' : null);
    const t = await this.store.transition(id, ['pending'], {
      status: d.approve ? 'approved' : 'denied',
      decided_at: nowS(),
      reason,
    });
    if (t.ok) return t.record;
    const cur = t.record!;
    if (cur.status === 'expired') throw expired(id);
    const same = d.approve ? cur.status === 'approved' || cur.status === 'executed' : cur.status === 'denied';
    if (same) return cur;
    throw new ConflictError('decision_conflict', `Approval request ${id} was already ${cur.status}.`, noRetry);
  }

  /**
   * Claims an approved request for execution (approved → executed, compare-and-set): of any
   * number of concurrent claims exactly one wins. Returns the record with the stored arguments.
   */
  async claim(id: string, b: ExecutionBinding): Promise<ApprovalRecord> {
    const r = await this.store.get(id);
    if (!r || r.owner !== b.owner) throw notFound(id);
    if (r.server_key !== b.server_key || r.server_url !== b.server_url || r.name !== b.name) {
      throw new ConflictError('approval_mismatch', `Approval request ${id} was made for another server or tool.`, noRetry);
    }
    if (b.arguments_sha256 !== undefined && b.arguments_sha256 !== r.arguments_sha256) {
      throw new ConflictError('approval_mismatch', `The arguments differ from those of approval request ${id}.`, { ...noRetry, param: 'arguments' });
    }
    if (b.tool_sha256 !== undefined && b.tool_sha256 !== r.tool_sha256) {
      throw new ConflictError('approval_mismatch', `The tool's definition changed since approval request ${id} was made.`, noRetry);
    }
    const t = await this.store.transition(id, ['approved'], { status: 'executed' });
    if (t.ok) return t.record;
    throw refusal(id, t.record?.status);
  }
}

function notFound(id: string) {
  return new NotFoundError('not_found', `No approval request found with id '${id}'.`);
}
function expired(id: string) {
  return new GoneError('approval_expired', `Approval request ${id} has expired.`, noRetry);
}

export function refusal(id: string, status: ApprovalRecord['status'] | undefined) {
  switch (status) {
    case 'pending':
      return new ConflictError('approval_pending', `Approval request ${id} has not been decided yet.`, noRetry);
    case 'denied':
      return new PermissionError('approval_denied', `Approval request ${id} was denied.`, noRetry);
    case 'expired':
      return expired(id);
    case 'executed':
      return new ConflictError('approval_already_used', `Approval request ${id} was already executed.`, noRetry);
    default:
      return notFound(id);
  }
}
