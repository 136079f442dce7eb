import { z } from 'zod';
import { GrantsSchema } from '../policy/schema.js';

export const KEY_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const KeyNameSchema = z.string().regex(KEY_NAME_RE, 'name must match ^[A-Za-z0-9_-]{1,64}$');

const limit = z.number().int().min(1).max(1_000_000).nullable();

/** POST and PUT /admin/keys (SPEC §11, §15). `name` and `grants` are required. */
export const KeyBodySchema = z.strictObject({
  name: KeyNameSchema,
  grants: GrantsSchema,
  allow_inline_servers: z.boolean().default(false),
  rate_limit_per_min: limit.default(null),
  max_pending_approvals: limit.default(null),
});
export type KeyBody = z.infer<typeof KeyBodySchema>;

/** POST /admin/keys/{name}/rotate: how long the old key keeps working. */
export const RotateBodySchema = z.strictObject({
  grace_s: z.number().int().min(0).max(7 * 86400).default(0),
});

/** One accepted key, by its SHA-256 only; `expires_at_ms` is set on a rotated-out key in grace. */
export const KeyHashSchema = z.strictObject({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  expires_at_ms: z.number().int().nullable(),
});
export type KeyHash = z.infer<typeof KeyHashSchema>;

/**
 * A named key as stored (file `"keys"` section or Redis). Never the key itself. `id` is the
 * key's identity for ownership (approvals, responses) and rate limiting: it survives
 * rotation and PUT, not delete — a key re-created under the same name owns nothing old.
 */
export const KeyRecordSchema = KeyBodySchema.extend({
  id: z.string().regex(/^key_[0-9a-f]{32}$/),
  created_at: z.number().int().min(0),
  hashes: z.array(KeyHashSchema).min(1).max(32),
});
export type KeyRecord = z.infer<typeof KeyRecordSchema>;

export const nameKey = (name: string) => name.toLowerCase();

/** What admins see (GET/PUT answers): never the key or its hash. */
export const KeyViewSchema = KeyBodySchema.extend({ created_at: z.number().int() });
export type KeyView = z.infer<typeof KeyViewSchema>;
/** POST /admin/keys and rotate: the view plus the key, shown this once. */
export const KeyWithSecretSchema = KeyViewSchema.extend({ key: z.string().regex(/^mcpb_[A-Za-z0-9_-]{20,}$/) });

export function keyView(r: KeyRecord): KeyView {
  return {
    name: r.name,
    grants: r.grants,
    allow_inline_servers: r.allow_inline_servers,
    rate_limit_per_min: r.rate_limit_per_min,
    max_pending_approvals: r.max_pending_approvals,
    created_at: r.created_at,
  };
}
