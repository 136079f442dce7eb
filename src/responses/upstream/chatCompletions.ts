import type { ChatCompletion, ChatCompletionChunk, ChatCompletionContentPart, ChatCompletionMessageParam, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions.js';
import { InvalidRequestError } from '../../errors/index.js';
import { newId } from '../../util/ids.js';
import type { ContentPart, TextParam } from '../schema.js';
import type { ModelClient } from './client.js';
import { zeroUsage, type ModelAdapter, type ModelMessage, type TurnEvent, type TurnItem, type TurnRequest, type TurnResult } from './types.js';

function textOf(content: string | ContentPart[]): string {
  if (typeof content === 'string') return content;
  return content.map((p) => (p.type === 'input_text' || p.type === 'output_text' ? p.text : p.type === 'refusal' ? p.refusal : '')).join('');
}

/** Responses content parts → Chat Completions parts (wire doc §4: files as `{"type":"file"}`). */
export function userParts(content: string | ContentPart[]): string | ChatCompletionContentPart[] {
  if (typeof content === 'string') return content;
  return content.flatMap((p): ChatCompletionContentPart[] => {
    switch (p.type) {
      case 'input_text':
      case 'output_text':
        return [{ type: 'text', text: p.text }];
      case 'refusal':
        return [{ type: 'text', text: p.refusal }];
      case 'input_image':
        if (p.image_url) return [{ type: 'image_url', image_url: { url: p.image_url, detail: p.detail ?? 'auto' } }];
        return [{ type: 'file', file: { file_id: p.file_id! } }];
      case 'input_file':
        if (p.file_url) {
          throw new InvalidRequestError('unsupported_parameter', 'input_file.file_url cannot be sent to a Chat Completions upstream; send file_data or file_id.', { param: 'input' });
        }
        return [{ type: 'file', file: { ...(p.filename ? { filename: p.filename } : {}), ...(p.file_data ? { file_data: p.file_data } : { file_id: p.file_id! }) } }];
    }
  });
}

/** Responses-style history → Chat Completions messages. Reasoning items cannot travel: dropped. */
export function toChatMessages(req: Pick<TurnRequest, 'instructions' | 'messages'>): ChatCompletionMessageParam[] {
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

type ChatBody = ChatCompletionCreateParamsStreaming & { max_completion_tokens?: number };

/** The request body for one turn. */
export function chatBody(req: TurnRequest): ChatBody {
  const body: ChatBody = { model: req.model, messages: toChatMessages(req), stream: true, stream_options: { include_usage: true } };
  if (req.tools.length) {
    body.tools = req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters, ...(t.strict != null ? { strict: t.strict } : {}) } }));
    body.tool_choice = typeof req.toolChoice === 'string' ? req.toolChoice : { type: 'function', function: { name: req.toolChoice.name } };
    body.parallel_tool_calls = req.parallelToolCalls;
  }
  if (req.temperature != null) body.temperature = req.temperature;
  if (req.topP != null) body.top_p = req.topP;
  if (req.maxOutputTokens != null) body.max_completion_tokens = req.maxOutputTokens;
  if (req.user) body.user = req.user;
  if (req.presencePenalty != null) body.presence_penalty = req.presencePenalty;
  if (req.frequencyPenalty != null) body.frequency_penalty = req.frequencyPenalty;
  if (req.topLogprobs) {
    body.logprobs = true;
    body.top_logprobs = req.topLogprobs;
  }
  if (req.serviceTier) body.service_tier = req.serviceTier as ChatBody['service_tier'];
  if (req.safetyIdentifier) body.safety_identifier = req.safetyIdentifier;
  if (req.promptCacheKey) body.prompt_cache_key = req.promptCacheKey;
  if (req.promptCacheRetention) body.prompt_cache_retention = req.promptCacheRetention as ChatBody['prompt_cache_retention'];
  const text = req.text as TextParam | null | undefined;
  const format = responseFormat(text);
  if (format) body.response_format = format;
  if (text?.verbosity) body.verbosity = text.verbosity;
  const effort = (req.reasoning as { effort?: unknown } | null | undefined)?.effort;
  if (typeof effort === 'string') body.reasoning_effort = effort as ChatBody['reasoning_effort'];
  return body;
}

export class ChatCompletionsAdapter implements ModelAdapter {
  readonly protocol = 'chat_completions' as const;
  constructor(private readonly client: ModelClient) {}

  async turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult> {
    const body = chatBody(req) as unknown as Record<string, unknown>;
    let stream: AsyncIterable<unknown> | Iterable<unknown>;
    if (req.stream === false) {
      delete body.stream_options;
      stream = [asChunk((await this.client.json('/chat/completions', { ...body, stream: false }, signal)) as ChatCompletion)];
    } else stream = await this.client.stream('/chat/completions', body, signal);
    // Parts in the order they first appeared: text and refusal are separate content parts.
    const parts: Array<{ type: 'output_text' | 'refusal'; text: string }> = [];
    const calls = new Map<number, { key: string; fcId: string; callId: string; name: string; arguments: string; started: boolean }>();
    const usage = zeroUsage();
    let serviceTier: string | undefined;
    const content = (type: 'output_text' | 'refusal', delta: string) => {
      if (parts.length === 0) onEvent({ type: 'message_start', key: 'msg' });
      let index = parts.findIndex((p) => p.type === type);
      if (index < 0) index = parts.push({ type, text: '' }) - 1;
      parts[index]!.text += delta;
      onEvent({ type: 'content_delta', key: 'msg', content_index: index, part: type, delta });
    };
    for await (const raw of stream) {
      const chunk = raw as ChatCompletionChunk;
      if (chunk.service_tier) serviceTier = chunk.service_tier;
      if (chunk.usage) {
        usage.input_tokens = chunk.usage.prompt_tokens ?? 0;
        usage.output_tokens = chunk.usage.completion_tokens ?? 0;
        usage.total_tokens = chunk.usage.total_tokens ?? usage.input_tokens + usage.output_tokens;
        usage.input_tokens_details.cached_tokens = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0;
        usage.output_tokens_details.reasoning_tokens = chunk.usage.completion_tokens_details?.reasoning_tokens ?? 0;
      }
      const delta = chunk.choices?.[0]?.delta;
      if (!delta) continue;
      if (delta.content) content('output_text', delta.content);
      if (delta.refusal) content('refusal', delta.refusal);
      for (const tc of delta.tool_calls ?? []) {
        let cur = calls.get(tc.index);
        if (!cur) calls.set(tc.index, (cur = { key: `call:${tc.index}`, fcId: newId('fc'), callId: '', name: '', arguments: '', started: false }));
        if (tc.id) cur.callId = tc.id;
        if (!cur.callId) cur.callId = newId('call');
        if (tc.function?.name) cur.name += tc.function.name;
        const piece = tc.function?.arguments ?? '';
        if (!cur.started && cur.name) {
          cur.started = true;
          onEvent({ type: 'call_start', key: cur.key, id: cur.fcId, call_id: cur.callId, name: cur.name });
          // Arguments that came before the name go out as one delta.
          if (cur.arguments) onEvent({ type: 'arguments_delta', key: cur.key, delta: cur.arguments });
        }
        if (piece) {
          cur.arguments += piece;
          if (cur.started) onEvent({ type: 'arguments_delta', key: cur.key, delta: piece });
        }
      }
    }
    const items: TurnItem[] = [];
    if (parts.length) {
      const item: TurnItem = {
        type: 'message',
        id: newId('msg'),
        role: 'assistant',
        content: parts.map((p) => (p.type === 'refusal' ? { type: 'refusal' as const, refusal: p.text } : { type: 'output_text' as const, text: p.text, annotations: [], logprobs: [] })),
        status: 'completed',
      };
      items.push(item);
      onEvent({ type: 'done', key: 'msg', item });
    }
    for (const [, c] of [...calls].sort(([a], [b]) => a - b)) {
      if (!c.started) onEvent({ type: 'call_start', key: c.key, id: c.fcId, call_id: c.callId, name: c.name });
      const item: TurnItem = { type: 'function_call', id: c.fcId, call_id: c.callId, name: c.name, arguments: c.arguments, status: 'completed' };
      items.push(item);
      onEvent({ type: 'done', key: c.key, item });
    }
    return { items, usage, ...(serviceTier ? { serviceTier } : {}) };
  }
}

/** A whole completion as the one chunk that would have said all of it. */
export function asChunk(c: ChatCompletion): ChatCompletionChunk {
  const m = c.choices?.[0]?.message;
  const delta: ChatCompletionChunk.Choice.Delta = {};
  if (m?.content) delta.content = m.content;
  if (m?.refusal) delta.refusal = m.refusal;
  const calls = (m?.tool_calls ?? []).filter((t) => t.type === 'function');
  if (calls.length) delta.tool_calls = calls.map((t, index) => ({ index, id: t.id, type: 'function' as const, function: { name: t.function.name, arguments: t.function.arguments } }));
  return {
    id: c.id,
    object: 'chat.completion.chunk',
    created: c.created,
    model: c.model,
    ...(c.service_tier ? { service_tier: c.service_tier } : {}),
    ...(c.usage ? { usage: c.usage } : {}),
    choices: [{ index: 0, delta, finish_reason: c.choices?.[0]?.finish_reason ?? null }],
  };
}

/** Responses `text.format` → Chat Completions `response_format`. */
function responseFormat(text: TextParam | null | undefined): ChatBody['response_format'] {
  const f = text?.format;
  if (f?.type === 'json_object') return { type: 'json_object' };
  if (f?.type === 'json_schema') {
    return { type: 'json_schema', json_schema: { name: f.name, schema: f.schema, strict: f.strict ?? undefined, ...(f.description ? { description: f.description } : {}) } };
  }
  return undefined;
}
