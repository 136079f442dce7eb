import type { ApprovalService } from '../approvals/service.js';
import { InvalidRequestError, NotFoundError } from '../errors/index.js';
import { newId } from '../util/ids.js';
import type { CreateResponse, InputItem } from './schema.js';
import type { ResponseStore, StoredResponse } from './store.js';
import type { ApprovalResponseEntry, Entry, McpApprovalRequestEntry } from './transcript.js';

export interface RequestContext {
  previous: StoredResponse | undefined;
  /** This request's input as entries, in order. */
  input: Entry[];
  /** Everything the model has seen so far plus the new input. */
  transcript: Entry[];
  approvalResponses: ApprovalResponseEntry[];
}

const dup = (id: string) => new InvalidRequestError('invalid_value', `Duplicate item found with id ${id}.`, { param: 'input' });

function toEntry(item: InputItem, prior: readonly Entry[]): Entry {
  switch (item.type) {
    case undefined:
    case 'message':
      return { type: 'message', id: item.id ?? newId('msg'), role: item.role, content: item.content, ...(item.status ? { status: item.status } : {}) };
    case 'function_call':
      return { type: 'function_call', id: item.id ?? newId('fc'), call_id: item.call_id, name: item.name, arguments: item.arguments, status: item.status ?? 'completed' };
    case 'function_call_output':
      return { type: 'function_call_output', id: item.id ?? newId('fco'), call_id: item.call_id, output: item.output };
    case 'mcp_approval_response':
      return { type: 'mcp_approval_response', id: item.id ?? newId('mcpa'), approval_request_id: item.approval_request_id, approve: item.approve, reason: item.reason ?? null };
    case 'mcp_list_tools':
      return { id: item.id, type: 'mcp_list_tools', server_label: item.server_label, tools: item.tools, ...(item.error ? { error: item.error } : {}) };
    case 'mcp_call':
      return {
        id: item.id,
        type: 'mcp_call',
        status: item.error ? 'failed' : 'completed',
        server_label: item.server_label,
        name: item.name,
        arguments: item.arguments,
        output: item.output ?? null,
        error: item.error ?? null,
        approval_request_id: item.approval_request_id ?? null,
      };
    case 'mcp_approval_request':
      return { id: item.id, type: 'mcp_approval_request', server_label: item.server_label, name: item.name, arguments: item.arguments };
    case 'reasoning':
      return { type: 'reasoning', id: item.id, summary: item.summary, ...(item.content ? { content: item.content } : {}), encrypted_content: item.encrypted_content ?? null };
    case 'item_reference': {
      const found = prior.find((e) => e.id === item.id);
      if (!found) throw new InvalidRequestError('invalid_value', `Item with id ${item.id} not found.`, { param: 'input' });
      return found;
    }
  }
}

/**
 * The conversation a request continues: the previous response's transcript (if any) and the
 * request's input. Replayed items are the client's words: an approval request must exist
 * in the approval store for this key, and an approval response must answer one in context.
 */
export async function buildContext(
  body: CreateResponse,
  owner: string,
  deps: { store: ResponseStore; approvals: ApprovalService },
): Promise<RequestContext> {
  let previous: StoredResponse | undefined;
  if (body.previous_response_id) {
    previous = await deps.store.get(body.previous_response_id);
    if (!previous || previous.owner !== owner) {
      throw new InvalidRequestError('previous_response_not_found', `Previous response with id '${body.previous_response_id}' not found.`, {
        param: 'previous_response_id',
      });
    }
  }
  const prior = previous?.transcript ?? [];
  const raw: InputItem[] = typeof body.input === 'string' ? [{ role: 'user', content: body.input }] : (body.input ?? []);

  const seen = new Set(prior.map((e) => e.id));
  const input: Entry[] = [];
  for (const item of raw) {
    const entry = toEntry(item, prior);
    if (item.type !== 'item_reference' && 'id' in item && item.id !== undefined) {
      if (seen.has(item.id)) throw dup(item.id);
      seen.add(item.id);
    }
    input.push(entry);
  }
  const transcript = [...prior, ...input];

  for (const e of input) {
    if (e.type !== 'mcp_approval_request') continue;
    try {
      await deps.approvals.read(e.id, { kind: 'api', owner });
    } catch (err) {
      if (err instanceof NotFoundError) {
        throw new InvalidRequestError('invalid_value', `Approval request ${e.id} was not issued to this API key.`, { param: 'input' });
      }
      throw err;
    }
  }

  const approvalResponses: ApprovalResponseEntry[] = [];
  const answered = new Set(prior.filter((e): e is ApprovalResponseEntry => e.type === 'mcp_approval_response').map((e) => e.approval_request_id));
  for (const e of input) {
    if (e.type !== 'mcp_approval_response') continue;
    const request = transcript.find((x): x is McpApprovalRequestEntry => x.type === 'mcp_approval_request' && x.id === e.approval_request_id);
    if (!request) {
      throw new InvalidRequestError('invalid_value', `No approval request found with id ${e.approval_request_id}: send it in input or continue the response that created it.`, {
        param: 'input',
      });
    }
    if (answered.has(e.approval_request_id)) {
      throw new InvalidRequestError('invalid_value', `Approval request ${e.approval_request_id} was already answered.`, { param: 'input' });
    }
    answered.add(e.approval_request_id);
    approvalResponses.push(e);
  }
  return { previous, input, transcript, approvalResponses };
}
