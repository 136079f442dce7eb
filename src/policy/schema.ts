import { z } from 'zod';

/** `{tool_names?, read_only?}`: both hold when both are given (OpenAI's McpToolFilter). */
export const ToolFilterSchema = z.strictObject({
  tool_names: z.array(z.string().min(1).max(128)).max(1000).optional(),
  read_only: z.boolean().optional(),
});
export type ToolFilter = z.infer<typeof ToolFilterSchema>;

/** `allowed_tools`: a list of names, a filter, or null (no constraint). */
export const AllowedToolsSchema = z.union([z.array(z.string().min(1).max(128)).max(1000), ToolFilterSchema]).nullable();
export type AllowedTools = z.infer<typeof AllowedToolsSchema>;

/** `require_approval`: "always" | "never" | {always?, never?}; null means the default. */
export const RequireApprovalSchema = z
  .union([
    z.enum(['always', 'never']),
    z.strictObject({ always: ToolFilterSchema.optional(), never: ToolFilterSchema.optional() }),
  ])
  .nullable();
export type RequireApproval = z.infer<typeof RequireApprovalSchema>;
/** A materialized policy: never null. */
export type ApprovalPolicy = NonNullable<RequireApproval>;

/** One server a named key may use, optionally narrowed (SPEC §11). */
export const GrantSchema = z.strictObject({
  server_label: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'server_label must match ^[A-Za-z0-9_-]{1,64}$'),
  allowed_tools: AllowedToolsSchema.optional(),
  require_approval: RequireApprovalSchema.optional(),
});
export type Grant = z.infer<typeof GrantSchema>;

/** `"*"` (every registered server) or a list of grants, one per label. (The list first: a missing value reads as missing.) */
export const GrantsSchema = z.union([
  z
    .array(GrantSchema)
    .max(1000)
    .superRefine((grants, ctx) => {
      const seen = new Set<string>();
      grants.forEach((g, i) => {
        const k = g.server_label.toLowerCase();
        if (seen.has(k)) ctx.addIssue({ code: 'custom', message: `server_label '${g.server_label}' is granted twice`, path: [i, 'server_label'] });
        seen.add(k);
      });
    }),
  z.literal('*'),
]);
export type Grants = z.infer<typeof GrantsSchema>;
