import type { CreateResponse, TextParam } from './schema.js';
import type { Usage } from './upstream/types.js';

export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'incomplete' | 'cancelled';
export const TERMINAL: ReadonlySet<string> = new Set(['completed', 'failed', 'incomplete', 'cancelled']);

export interface ResponseState {
  id: string;
  created_at: number;
  /** Integer seconds once completed, else null. */
  completed_at: number | null;
  status: ResponseStatus;
  output: Array<Record<string, unknown>>;
  usage: Usage | null;
  error: { code: string; message: string } | null;
  incomplete_details: { reason: string } | null;
  tools: Array<Record<string, unknown>>;
  /** The tier the upstream reported serving, if it did. */
  service_tier?: string;
}

/** `text` as echoed: the format with every optional field explicit. */
export function normalizedText(text: TextParam | null | undefined): Record<string, unknown> {
  const f = text?.format ?? { type: 'text' as const };
  const format = f.type === 'json_schema' ? { type: 'json_schema', name: f.name, schema: f.schema, description: f.description ?? null, strict: f.strict ?? null } : { type: f.type };
  return { format, ...(text?.verbosity ? { verbosity: text.verbosity } : {}) };
}

/** The Responses object (wire doc §4): every field, always, from the request and the run's state. */
export function responseObject(body: CreateResponse, s: ResponseState): Record<string, unknown> {
  return {
    id: s.id,
    object: 'response',
    created_at: s.created_at,
    completed_at: s.completed_at,
    status: s.status,
    background: body.background ?? false,
    error: s.error,
    incomplete_details: s.incomplete_details,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: s.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null },
    store: body.store ?? true,
    temperature: body.temperature ?? 1,
    top_p: body.top_p ?? 1,
    presence_penalty: body.presence_penalty ?? 0,
    frequency_penalty: body.frequency_penalty ?? 0,
    top_logprobs: body.top_logprobs ?? 0,
    text: normalizedText(body.text),
    tool_choice: body.tool_choice ?? 'auto',
    tools: s.tools,
    truncation: body.truncation ?? 'disabled',
    usage: s.usage,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
    service_tier: s.service_tier ?? (body.service_tier && body.service_tier !== 'auto' ? body.service_tier : 'default'),
    safety_identifier: body.safety_identifier ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    prompt_cache_retention: body.prompt_cache_retention ?? null,
  };
}
