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
