import type { McpApprovalRequestItem, McpCallItem, McpListToolsItem } from '../broker/items.js';
import type { ContentPart } from './schema.js';

/**
 * The broker's own record of a conversation: Responses items in order, plus what only
 * the broker needs (the upstream's call ids). It is what `previous_response_id` rebuilds
 * and what every upstream call is made from; the public shapes are derived from it.
 */
export type MessageEntry = {
  type: 'message';
  id: string;
  role: 'user' | 'assistant' | 'system' | 'developer';
  content: string | ContentPart[];
  status?: string;
};
export type ReasoningEntry = {
  type: 'reasoning';
  id: string;
  summary: Array<{ type: 'summary_text'; text: string }>;
  content?: Array<{ type: string; text: string }> | null;
  encrypted_content?: string | null;
  /** Set when the item was cut short (`incomplete`). */
  status?: string;
};
/** `internal`: the broker's note to the model (a call it refused to run); never in output. */
export type FunctionCallEntry = { type: 'function_call'; id: string; call_id: string; name: string; arguments: string; status?: string; internal?: boolean };
export type FunctionOutputEntry = { type: 'function_call_output'; id: string; call_id: string; output: unknown; internal?: boolean };
/** An MCP item plus the function call the model made for it (hidden from callers). */
export type Upstreamed = { call_id?: string; fc_id?: string; fn_name?: string; internal?: boolean };
export type McpCallEntry = McpCallItem & { hidden?: Upstreamed };
export type McpApprovalRequestEntry = McpApprovalRequestItem & { hidden?: Upstreamed };
export type ApprovalResponseEntry = {
  type: 'mcp_approval_response';
  id: string;
  approval_request_id: string;
  approve: boolean;
  reason: string | null;
  /** Set when the call was refused after all (the approver denied it); `internal` when the broker wrote it. */
  hidden?: { denied_reason?: string | null; internal?: boolean };
};

export type Entry =
  | MessageEntry
  | ReasoningEntry
  | FunctionCallEntry
  | FunctionOutputEntry
  | McpListToolsItem
  | McpCallEntry
  | McpApprovalRequestEntry
  | ApprovalResponseEntry;

export function isInternal(e: Entry): boolean {
  if (e.type === 'function_call' || e.type === 'function_call_output') return e.internal === true;
  if (e.type === 'mcp_call' || e.type === 'mcp_approval_request' || e.type === 'mcp_approval_response') return e.hidden?.internal === true;
  return false;
}

/** The public form of an entry: hidden fields removed; reasoning's encrypted_content only on request. */
export function publicItem(e: Entry, includeEncrypted: boolean): Record<string, unknown> {
  if (e.type === 'mcp_call' || e.type === 'mcp_approval_request' || e.type === 'mcp_approval_response') {
    const { hidden: _hidden, ...rest } = e;
    return rest;
  }
  if (e.type === 'reasoning') {
    const { encrypted_content, ...rest } = e;
    return includeEncrypted && encrypted_content != null ? { ...rest, encrypted_content } : rest;
  }
  return e;
}
