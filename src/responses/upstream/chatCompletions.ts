import type OpenAI from 'openai';
import type { ChatCompletionContentPart, ChatCompletionMessageParam, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions.js';
import { newId } from '../../util/ids.js';
import type { ContentPart } from '../schema.js';
import { zeroUsage, type ModelAdapter, type ModelMessage, type TurnEvent, type TurnItem, type TurnRequest, type TurnResult } from './types.js';

function textOf(content: string | ContentPart[]): string {
  if (typeof content === 'string') return content;
  return content.map((p) => (p.type === 'input_text' || p.type === 'output_text' ? p.text : p.type === 'refusal' ? p.refusal : '')).join('');
}

function userParts(content: string | ContentPart[]): string | ChatCompletionContentPart[] {
  if (typeof content === 'string') return content;
  return content.flatMap((p): ChatCompletionContentPart[] => {
    if (p.type === 'input_text' || p.type === 'output_text') return [{ type: 'text', text: p.text }];
    if (p.type === 'input_image' && p.image_url) return [{ type: 'image_url', image_url: { url: p.image_url, detail: p.detail ?? 'auto' } }];
    return [];
  });
}

/** Responses-style history → Chat Completions messages. Reasoning items cannot travel: dropped. */
export function toChatMessages(req: TurnRequest): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  if (req.instructions) out.push({ role: 'system', content: req.instructions });
  for (const m of req.messages) appendChat(out, m);
  return out;
}

function appendChat(out: ChatCompletionMessageParam[], m: ModelMessage) {
  switch (m.kind) {
    case 'reasoning':
      return;
    case 'message':
      if (m.role === 'user') out.push({ role: 'user', content: userParts(m.content) });
      else if (m.role === 'assistant') out.push({ role: 'assistant', content: textOf(m.content) });
      else out.push({ role: 'system', content: textOf(m.content) });
      return;
    case 'call': {
      const call = { id: m.call_id, type: 'function' as const, function: { name: m.name, arguments: m.arguments } };
      const last = out[out.length - 1];
      // Calls of one model turn belong to one assistant message (after its text, if any).
      if (last?.role === 'assistant' && (last.tool_calls?.length || !last.content || typeof last.content === 'string')) {
        last.tool_calls = [...(last.tool_calls ?? []), call];
      } else out.push({ role: 'assistant', content: null, tool_calls: [call] });
      return;
    }
    case 'result':
      out.push({ role: 'tool', tool_call_id: m.call_id, content: m.output });
  }
}

export class ChatCompletionsAdapter implements ModelAdapter {
  constructor(private readonly client: OpenAI) {}

  async turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult> {
    const body: ChatCompletionsCreateBody = {
      model: req.model,
      messages: toChatMessages(req),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (req.tools.length) {
      body.tools = req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters, ...(t.strict != null ? { strict: t.strict } : {}) } }));
      body.tool_choice = typeof req.toolChoice === 'string' ? req.toolChoice : { type: 'function', function: { name: req.toolChoice.name } };
      body.parallel_tool_calls = req.parallelToolCalls;
    }
    if (req.temperature != null) body.temperature = req.temperature;
    if (req.topP != null) body.top_p = req.topP;
    if (req.maxOutputTokens != null) body.max_completion_tokens = req.maxOutputTokens;
    if (req.user) body.user = req.user;
    const format = responseFormat(req.text);
    if (format) body.response_format = format;
    const effort = (req.reasoning as { effort?: unknown } | null | undefined)?.effort;
    if (typeof effort === 'string') body.reasoning_effort = effort as ChatCompletionCreateParamsStreaming['reasoning_effort'];

    const stream = await this.client.chat.completions.create(body, { signal });
    let text = '';
    const calls = new Map<number, { id: string; name: string; arguments: string }>();
    const usage = zeroUsage();
    for await (const chunk of stream) {
      if (chunk.usage) {
        usage.input_tokens = chunk.usage.prompt_tokens ?? 0;
        usage.output_tokens = chunk.usage.completion_tokens ?? 0;
        usage.total_tokens = chunk.usage.total_tokens ?? usage.input_tokens + usage.output_tokens;
        usage.input_tokens_details.cached_tokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
        usage.output_tokens_details.reasoning_tokens = chunk.usage.completion_tokens_details?.reasoning_tokens ?? 0;
      }
      const delta = chunk.choices?.[0]?.delta;
      if (!delta) continue;
      if (delta.content) {
        text += delta.content;
        onEvent({ type: 'text_delta', delta: delta.content });
      }
      for (const tc of delta.tool_calls ?? []) {
        const cur = calls.get(tc.index) ?? { id: '', name: '', arguments: '' };
        if (tc.id) cur.id = tc.id;
        if (tc.function?.name) cur.name += tc.function.name;
        if (tc.function?.arguments) cur.arguments += tc.function.arguments;
        calls.set(tc.index, cur);
      }
    }
    const items: TurnItem[] = [];
    if (text) items.push({ type: 'message', id: newId('msg'), role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }], status: 'completed' });
    for (const [, c] of [...calls].sort(([a], [b]) => a - b)) {
      items.push({ type: 'function_call', id: newId('fc'), call_id: c.id || newId('call'), name: c.name, arguments: c.arguments, status: 'completed' });
    }
    for (const item of items) onEvent({ type: 'item', item });
    return { items, usage };
  }
}

type ChatCompletionsCreateBody = ChatCompletionCreateParamsStreaming & { max_completion_tokens?: number };

/** Responses `text.format` → Chat Completions `response_format`. */
function responseFormat(text: Record<string, unknown> | null | undefined): ChatCompletionCreateParamsStreaming['response_format'] {
  const f = text?.format as { type?: string; name?: string; schema?: Record<string, unknown>; strict?: boolean | null; description?: string } | undefined;
  if (f?.type === 'json_object') return { type: 'json_object' };
  if (f?.type === 'json_schema' && f.name) {
    return { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, strict: f.strict ?? undefined, description: f.description } };
  }
  return undefined;
}
