import { Router } from 'express';
import { z } from 'zod';
import { ApprovalStatusSchema, approvalView } from '../../approvals/record.js';
import type { ApprovalService } from '../../approvals/service.js';
import { AuthenticationError } from '../../errors/index.js';
import { principalOf } from '../auth.js';
import { parseInput } from '../validate.js';
import { abortOnClose } from '../abort.js';
import type { Actor } from '../../approvals/service.js';
import type { Request } from 'express';

export const DecisionBody = z.strictObject({
  approve: z.boolean(),
  reason: z.string().max(4096).nullable().optional(),
  arguments_sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits').optional(),
});
export const WaitQuery = z.object({ wait_ms: z.coerce.number().int().min(0).optional() });
/** Pages (OpenAI list shape): `limit` [20, ≤ 100], `after` an id from the previous page. */
export const ListQuery = z.object({
  status: ApprovalStatusSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().min(1).max(128).optional(),
});

function actorOf(req: Request): Actor {
  const p = principalOf(req);
  if (p.kind === 'approver') return { kind: 'approver' };
  if (p.kind === 'api') return { kind: 'api', owner: p.owner };
  throw new AuthenticationError();
}

/** SPEC §4. */
export function approvalRoutes(approvals: ApprovalService): Router {
  const r = Router();

  r.get('/', async (req, res) => {
    if (principalOf(req).kind !== 'approver') throw new AuthenticationError('Listing approvals needs the approver token.');
    const q = parseInput(ListQuery, req.query);
    const page = await approvals.list(q);
    const data = page.data.map(approvalView);
    res.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.has_more });
  });

  r.get('/:id', async (req, res) => {
    const q = parseInput(WaitQuery, req.query);
    const wait = Math.min(q.wait_ms ?? 0, 60_000);
    const record = wait > 0
      ? await approvals.readWhenDecided(req.params.id, actorOf(req), wait, abortOnClose(req, res))
      : await approvals.read(req.params.id, actorOf(req));
    res.json(approvalView(record));
  });

  r.post('/:id/decision', async (req, res) => {
    const body = parseInput(DecisionBody, req.body);
    res.json(approvalView(await approvals.decide(req.params.id, actorOf(req), body)));
  });

  return r;
}
