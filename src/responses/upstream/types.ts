import type { ContentPart } from '../schema.js';
import type { FunctionCallEntry, MessageEntry, ReasoningEntry } from '../transcript.js';

/** The conversation as a model sees it: no MCP items, only calls and results. */
export type ModelMessage =
  | { kind: 'message'; role: 'user' | 'assistant' | 'system' | 'developer'; content: string | ContentPart[] }
  | { kind: 'reasoning'; id: string; summary: Array<{ type: 'summary_text'; text: string }>; encrypted_content?: string | null }
  | { kind: 'call'; call_id: string; fc_id?: string; name: string; arguments: string }
  /** `parts`: a caller's function output given as content parts (text, images, files), for upstreams that take them. */
  | { kind: 'result'; call_id: string; output: string; parts?: ContentPart[] };

export interface ModelTool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  strict?: boolean | null;
}

export type ModelToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface TurnRequest {
  model: string;
  /** false: nobody watches this turn stream, so it is asked for as one JSON answer (default true). */
  stream?: boolean;
  instructions: string | null;
  messages: ModelMessage[];
  tools: ModelTool[];
  toolChoice: ModelToolChoice;
  parallelToolCalls: boolean;
  temperature?: number | null;
  topP?: number | null;
  maxOutputTokens?: number | null;
  reasoning?: Record<string, unknown> | null;
  text?: Record<string, unknown> | null;
  user?: string | null;
  presencePenalty?: number | null;
  frequencyPenalty?: number | null;
  topLogprobs?: number | null;
  serviceTier?: string | null;
  safetyIdentifier?: string | null;
  promptCacheKey?: string | null;
  promptCacheRetention?: string | null;
}

export interface Usage {
  input_tokens: number;
  input_tokens_details: { cached_tokens: number };
  output_tokens: number;
  output_tokens_details: { reasoning_tokens: number };
  total_tokens: number;
}

export const zeroUsage = (): Usage => ({
  input_tokens: 0,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: 0,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: 0,
});

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    input_tokens: a.input_tokens + b.input_tokens,
    input_tokens_details: { cached_tokens: a.input_tokens_details.cached_tokens + b.input_tokens_details.cached_tokens },
    output_tokens: a.output_tokens + b.output_tokens,
    output_tokens_details: { reasoning_tokens: a.output_tokens_details.reasoning_tokens + b.output_tokens_details.reasoning_tokens },
    total_tokens: a.total_tokens + b.total_tokens,
  };
}

/** What a turn produced, in the model's order. */
export type TurnItem = MessageEntry | ReasoningEntry | FunctionCallEntry;

/**
 * What the upstream streams, one event per upstream delta. `key` names one upstream output
 * item for the length of the turn (its output_index, or the adapter's own key). Every
 * started item ends with `done` carrying the whole item; the deltas may be absent.
 */
export type TurnEvent =
  | { type: 'message_start'; key: string; id?: string }
  | { type: 'content_delta'; key: string; content_index: number; part: 'output_text' | 'refusal'; delta: string }
  | { type: 'reasoning_start'; key: string; id: string }
  | { type: 'summary_delta'; key: string; summary_index: number; delta: string }
  | { type: 'call_start'; key: string; id?: string; call_id: string; name: string }
  | { type: 'arguments_delta'; key: string; delta: string }
  | { type: 'done'; key: string; item: TurnItem };

export interface TurnResult {
  items: TurnItem[];
  usage: Usage;
  /** The tier the upstream says it served, when it says. */
  serviceTier?: string;
}

/** One upstream protocol. Streams from the upstream and reports as it goes. */
export interface ModelAdapter {
  readonly protocol: 'chat_completions' | 'responses';
  turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult>;
}
