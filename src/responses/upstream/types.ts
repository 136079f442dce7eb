import type { ContentPart } from '../schema.js';
import type { FunctionCallEntry, MessageEntry, ReasoningEntry } from '../transcript.js';

/** The conversation as a model sees it: no MCP items, only calls and results. */
export type ModelMessage =
  | { kind: 'message'; role: 'user' | 'assistant' | 'system' | 'developer'; content: string | ContentPart[] }
  | { kind: 'reasoning'; id: string; summary: Array<{ type: 'summary_text'; text: string }>; encrypted_content?: string | null }
  | { kind: 'call'; call_id: string; fc_id?: string; name: string; arguments: string }
  | { kind: 'result'; call_id: string; output: string };

export interface ModelTool {
  name: string;
  description: string;
  parameters: Record<string, unknown>;
  strict?: boolean | null;
}

export type ModelToolChoice = 'auto' | 'none' | 'required' | { name: string };

export interface TurnRequest {
  model: string;
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

/** What a turn produced, in the model's order. Text also arrives as deltas while it streams. */
export type TurnItem = MessageEntry | ReasoningEntry | FunctionCallEntry;
export type TurnEvent = { type: 'text_delta'; delta: string } | { type: 'item'; item: TurnItem };

export interface TurnResult {
  items: TurnItem[];
  usage: Usage;
}

/** One upstream protocol. Streams from the upstream and reports as it goes. */
export interface ModelAdapter {
  turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult>;
}
