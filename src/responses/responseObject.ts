import type { CreateResponse } from './schema.js';
import type { Usage } from './upstream/types.js';

export type ResponseStatus = 'in_progress' | 'completed' | 'failed' | 'incomplete' | 'cancelled';

export interface ResponseState {
  id: string;
  created_at: number;
  status: ResponseStatus;
  output: Array<Record<string, unknown>>;
  usage: Usage | null;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: string } | null;
  tools: Array<Record<string, unknown>>;
}

/** The Responses object (wire doc §4), from the request and the run's state. */
export function responseObject(body: CreateResponse, s: ResponseState): Record<string, unknown> {
  return {
    id: s.id,
    object: 'response',
    created_at: s.created_at,
    status: s.status,
    background: false,
    error: s.error,
    incomplete_details: s.incomplete_details,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: s.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: body.reasoning ?? { effort: null, summary: null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' } },
    tool_choice: body.tool_choice ?? 'auto',
    tools: s.tools,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: s.usage,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}
