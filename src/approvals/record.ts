import { z } from 'zod';

export const ApprovalStatusSchema = z.enum(['pending', 'approved', 'denied', 'expired', 'executed']);
export type ApprovalStatus = z.infer<typeof ApprovalStatusSchema>;

/** A stored approval request and everything it is bound to. */
export const ApprovalRecordSchema = z.object({
  id: z.string(),
  status: ApprovalStatusSchema,
  /** Hash of the creating API key; never the key. */
  owner: z.string(),
  mode: z.enum(['caller', 'webhook']),
  server_label: z.string(),
  server_key: z.string(),
  server_url: z.string(),
  server_origin: z.string(),
  name: z.string(),
  arguments: z.string(),
  arguments_sha256: z.string(),
  tool_sha256: z.string(),
  created_at: z.number().int(),
  expires_at: z.number().int(),
  decided_at: z.number().int().nullable(),
  reason: z.string().nullable(),
});
export type ApprovalRecord = z.infer<typeof ApprovalRecordSchema>;

/** What GET /v1/mcp/approvals/{id} shows (SPEC §4). */
export function approvalView(r: ApprovalRecord) {
  return {
    id: r.id,
    status: r.status,
    server_label: r.server_label,
    name: r.name,
    arguments: r.arguments,
    arguments_sha256: r.arguments_sha256,
    created_at: r.created_at,
    expires_at: r.expires_at,
    decided_at: r.decided_at,
    reason: r.reason,
  };
}

export const nowS = () => Math.floor(Date.now() / 1000);

/** Live records can still run (pending, approved, not past expiry); others only answer reads until dropped. */
export const isLive = (r: Pick<ApprovalRecord, 'status' | 'expires_at'>, now = nowS()) =>
  (r.status === 'pending' || r.status === 'approved') && now < r.expires_at;

/** What a record costs its key's byte bound: its strings (arguments dominate) plus fixed overhead. */
export function approvalBytes(r: ApprovalRecord): number {
  let n = 256;
  for (const v of Object.values(r)) if (typeof v === 'string') n += Buffer.byteLength(v);
  return n;
}
