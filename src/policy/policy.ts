import type { AllowedTools, ApprovalPolicy, Grant, Grants, RequireApproval, ToolFilter } from './schema.js';

/** What policy needs to know of a tool. A tool without annotations is not read-only. */
export interface PolicyTool {
  name: string;
  readOnly: boolean;
}

/** One party's say: the admin record's or the caller's. */
export interface PolicyLayer {
  allowed_tools: AllowedTools;
  require_approval: ApprovalPolicy;
}

export function matchesFilter(tool: PolicyTool, filter: ToolFilter): boolean {
  if (filter.tool_names && !filter.tool_names.includes(tool.name)) return false;
  if (filter.read_only === true && !tool.readOnly) return false;
  return true;
}

export function isAllowed(tool: PolicyTool, allowed: AllowedTools): boolean {
  if (allowed == null) return true;
  if (Array.isArray(allowed)) return allowed.includes(tool.name);
  return matchesFilter(tool, allowed);
}

/** A tool that matches neither `always` nor `never` needs approval; `always` wins a tie. */
export function needsApproval(tool: PolicyTool, policy: ApprovalPolicy): boolean {
  if (policy === 'always') return true;
  if (policy === 'never') return false;
  if (policy.always && matchesFilter(tool, policy.always)) return true;
  if (policy.never && matchesFilter(tool, policy.never)) return false;
  return true;
}

/**
 * The caller's layer. For an inline server an omitted require_approval is OpenAI's default
 * ("always"); for a registered label it adds nothing and the record's policy applies.
 */
export function callerLayer(
  param: { allowed_tools?: AllowedTools; require_approval?: RequireApproval },
  registered: boolean,
): PolicyLayer {
  return {
    allowed_tools: param.allowed_tools ?? null,
    require_approval: param.require_approval ?? (registered ? 'never' : 'always'),
  };
}

/** Stricter of all layers: listed and callable only if every layer allows it. */
export function effectiveAllowed(tool: PolicyTool, layers: readonly PolicyLayer[]): boolean {
  return layers.every((l) => isAllowed(tool, l.allowed_tools));
}

/** Approval is required if any layer requires it. */
export function effectiveNeedsApproval(tool: PolicyTool, layers: readonly PolicyLayer[]): boolean {
  return layers.some((l) => needsApproval(tool, l.require_approval));
}

/**
 * One `require_approval` value equivalent to the layers over a concrete tool list, for
 * echoing in `response.tools`: "always", "never", or `{never: {tool_names}}`.
 */
export function materializeApproval(tools: readonly PolicyTool[], layers: readonly PolicyLayer[]): ApprovalPolicy {
  if (layers.length === 1) return layers[0]!.require_approval;
  const free = tools.filter((t) => !effectiveNeedsApproval(t, layers)).map((t) => t.name);
  if (free.length === 0) return 'always';
  if (free.length === tools.length) return 'never';
  return { never: { tool_names: free } };
}

/**
 * The key's grant for a registered label: `undefined` when the label is not granted (the
 * caller must not learn it exists); null when every server is granted with no narrowing.
 */
export function grantFor(grants: Grants, label: string): Grant | null | undefined {
  if (grants === '*') return null;
  const k = label.toLowerCase();
  return grants.find((g) => g.server_label.toLowerCase() === k);
}

/**
 * The grant's layer. Like a registered caller's, an omitted require_approval adds nothing;
 * a grant can only narrow: it is one more layer that every tool must pass.
 */
export function grantLayer(grant: Grant): PolicyLayer {
  return { allowed_tools: grant.allowed_tools ?? null, require_approval: grant.require_approval ?? 'never' };
}

/** Layers of a registered server: record, then the key's grant (if it narrows), then caller. */
export function registeredLayers(record: PolicyLayer, grant: Grant | null, caller: PolicyLayer): PolicyLayer[] {
  return grant ? [record, grantLayer(grant), caller] : [record, caller];
}
