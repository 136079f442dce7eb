import type { McpCallItem } from '../broker/items.js';
import type { ApprovalResponseEntry, Entry, McpApprovalRequestEntry, McpCallEntry } from './transcript.js';
import type { ModelMessage } from './upstream/types.js';
import type { ContentPart } from './schema.js';

/** What the model is told an MCP call returned. */
export function resultText(call: McpCallItem): string {
  const e = call.error;
  if (!e) return call.output ?? '';
  if (e.type === 'mcp_tool_execution_error') {
    const text = e.content.map((c) => ((c as { type?: string }).type === 'text' ? String((c as { text?: unknown }).text ?? '') : '')).join('\n');
    return `Error from the tool: ${text || JSON.stringify(e.content)}`;
  }
  return `Error: ${e.message}`;
}

export const deniedText = (reason: string | null | undefined) =>
  `The user denied this tool call${reason ? `. Reason: ${reason}` : '.'} Do not call it again unless asked.`;

function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) return output.map((p) => (p as { text?: string }).text ?? '').join('');
  return JSON.stringify(output);
}

/**
 * The transcript as the model sees it: MCP items become the model's function calls and
 * their results (with the upstream's own call ids); listings and approvals travel as that.
 * A call that waited for approval is shown where the model made it.
 */
export function toModelMessages(transcript: readonly Entry[], fnNameOf: (label: string, tool: string) => string): ModelMessage[] {
  const executed = new Map<string, McpCallEntry>();
  const responses = new Map<string, ApprovalResponseEntry>();
  const requests = new Set<string>();
  for (const e of transcript) {
    if (e.type === 'mcp_call' && e.approval_request_id) executed.set(e.approval_request_id, e);
    if (e.type === 'mcp_approval_response') responses.set(e.approval_request_id, e);
    if (e.type === 'mcp_approval_request') requests.add(e.id);
  }
  const out: ModelMessage[] = [];
  const call = (c: { call_id: string; fc_id?: string; name: string; arguments: string }, output: string) => {
    out.push({ kind: 'call', ...c });
    out.push({ kind: 'result', call_id: c.call_id, output });
  };
  const callOf = (e: McpCallEntry | McpApprovalRequestEntry, fallbackId: string) => ({
    call_id: e.hidden?.call_id ?? fallbackId,
    ...(e.hidden?.fc_id ? { fc_id: e.hidden.fc_id } : {}),
    name: e.hidden?.fn_name ?? fnNameOf(e.server_label, e.name),
    arguments: e.arguments,
  });

  for (const e of transcript) {
    switch (e.type) {
      case 'message':
        out.push({ kind: 'message', role: e.role, content: e.content });
        break;
      case 'reasoning':
        out.push({ kind: 'reasoning', id: e.id, summary: e.summary, encrypted_content: e.encrypted_content });
        break;
      case 'function_call':
        out.push({ kind: 'call', call_id: e.call_id, name: e.name, arguments: e.arguments });
        break;
      case 'function_call_output':
        out.push({ kind: 'result', call_id: e.call_id, output: outputText(e.output), ...(Array.isArray(e.output) ? { parts: e.output as ContentPart[] } : {}) });
        break;
      case 'mcp_call':
        // An approved call is shown at its approval request, where the model made it.
        if (e.approval_request_id && requests.has(e.approval_request_id)) break;
        call(callOf(e, e.id), resultText(e));
        break;
      case 'mcp_approval_request': {
        const ran = executed.get(e.id);
        const answer = responses.get(e.id);
        if (ran) call({ ...callOf(e, e.id), arguments: ran.arguments }, resultText(ran));
        else if (answer && (!answer.approve || answer.hidden?.denied_reason !== undefined)) {
          call(callOf(e, e.id), deniedText(answer.approve ? answer.hidden?.denied_reason : answer.reason));
        }
        // Still pending: the model's call stays unanswered and is left out.
        break;
      }
      case 'mcp_list_tools':
      case 'mcp_approval_response':
        break;
    }
  }
  return out;
}
