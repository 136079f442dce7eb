import type { Response, ResponseCreateParamsStreaming, ResponseInputItem, ResponseStreamEvent } from 'openai/resources/responses/responses.js';
import { newId } from '../../util/ids.js';
import type { ModelClient } from './client.js';
import { UpstreamStreamError } from './errors.js';
import { zeroUsage, type ModelAdapter, type ModelMessage, type TurnEvent, type TurnItem, type TurnRequest, type TurnResult } from './types.js';

/** History → Responses input. Reasoning items travel back with their id and encrypted_content. */
export function toResponsesInput(messages: ModelMessage[]): ResponseInputItem[] {
  return messages.map((m): ResponseInputItem => {
    switch (m.kind) {
      case 'message':
        return { type: 'message', role: m.role, content: m.content } as ResponseInputItem;
      case 'reasoning':
        return { type: 'reasoning', id: m.id, summary: m.summary, ...(m.encrypted_content ? { encrypted_content: m.encrypted_content } : {}) };
      case 'call':
        return { type: 'function_call', call_id: m.call_id, name: m.name, arguments: m.arguments, ...(m.fc_id ? { id: m.fc_id } : {}) };
      case 'result':
        return { type: 'function_call_output', call_id: m.call_id, output: (m.parts ?? m.output) as string };
    }
  });
}

/** The request body for one turn: stateless (`store: false`), the broker keeps the conversation. */
export function responsesBody(req: TurnRequest): ResponseCreateParamsStreaming {
  const body: ResponseCreateParamsStreaming = {
    model: req.model,
    input: toResponsesInput(req.messages),
    store: false,
    include: ['reasoning.encrypted_content'],
    stream: true,
  };
  if (req.instructions) body.instructions = req.instructions;
  if (req.tools.length) {
    body.tools = req.tools.map((t) => ({ type: 'function', name: t.name, description: t.description, parameters: t.parameters, strict: t.strict ?? false }));
    body.tool_choice = typeof req.toolChoice === 'string' ? req.toolChoice : { type: 'function', name: req.toolChoice.name };
    body.parallel_tool_calls = req.parallelToolCalls;
  }
  if (req.temperature != null) body.temperature = req.temperature;
  if (req.topP != null) body.top_p = req.topP;
  if (req.maxOutputTokens != null) body.max_output_tokens = req.maxOutputTokens;
  if (req.reasoning) body.reasoning = req.reasoning as ResponseCreateParamsStreaming['reasoning'];
  if (req.text) body.text = req.text as ResponseCreateParamsStreaming['text'];
  if (req.user) body.user = req.user;
  if (req.topLogprobs) body.top_logprobs = req.topLogprobs;
  if (req.serviceTier) body.service_tier = req.serviceTier as ResponseCreateParamsStreaming['service_tier'];
  if (req.safetyIdentifier) body.safety_identifier = req.safetyIdentifier;
  if (req.promptCacheKey) body.prompt_cache_key = req.promptCacheKey;
  if (req.promptCacheRetention) body.prompt_cache_retention = req.promptCacheRetention as ResponseCreateParamsStreaming['prompt_cache_retention'];
  return body;
}

/** A Responses upstream. Each of its deltas becomes one TurnEvent, keyed by its output_index. */
export class ResponsesAdapter implements ModelAdapter {
  readonly protocol = 'responses' as const;
  constructor(private readonly client: ModelClient) {}

  async turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult> {
    const body = responsesBody(req) as unknown as Record<string, unknown>;
    const stream: AsyncIterable<unknown> | Iterable<unknown> =
      req.stream === false ? asEvents((await this.client.json('/responses', { ...body, stream: false }, signal)) as Response) : await this.client.stream('/responses', body, signal);
    const items: TurnItem[] = [];
    const usage = zeroUsage();
    let serviceTier: string | undefined;
    const started = new Set<string>();
    for await (const raw of stream) {
      const ev = raw as ResponseStreamEvent;
      const key = 'output_index' in ev ? String(ev.output_index) : '';
      switch (ev.type) {
        case 'response.output_item.added': {
          const it = ev.item as unknown as Record<string, unknown> & { type: string };
          if (it.type === 'message') onEvent({ type: 'message_start', key, id: typeof it.id === 'string' ? it.id : undefined });
          else if (it.type === 'reasoning') onEvent({ type: 'reasoning_start', key, id: String(it.id) });
          else if (it.type === 'function_call') {
            onEvent({ type: 'call_start', key, ...(typeof it.id === 'string' ? { id: it.id } : {}), call_id: String(it.call_id), name: String(it.name) });
          } else break;
          started.add(key);
          break;
        }
        case 'response.output_text.delta':
          if (started.has(key)) onEvent({ type: 'content_delta', key, content_index: ev.content_index, part: 'output_text', delta: ev.delta });
          break;
        case 'response.refusal.delta':
          if (started.has(key)) onEvent({ type: 'content_delta', key, content_index: ev.content_index, part: 'refusal', delta: ev.delta });
          break;
        case 'response.function_call_arguments.delta':
          if (started.has(key)) onEvent({ type: 'arguments_delta', key, delta: ev.delta });
          break;
        case 'response.reasoning_summary_text.delta':
          if (started.has(key)) onEvent({ type: 'summary_delta', key, summary_index: ev.summary_index, delta: ev.delta });
          break;
        case 'response.output_item.done': {
          const item = toTurnItem(ev.item as unknown as { type: string } & Record<string, unknown>);
          if (!item) break;
          if (!started.has(key)) {
            // An item the upstream never announced: start it now so it is streamed like the others.
            if (item.type === 'message') onEvent({ type: 'message_start', key, id: item.id });
            else if (item.type === 'reasoning') onEvent({ type: 'reasoning_start', key, id: item.id });
            else onEvent({ type: 'call_start', key, id: item.id, call_id: item.call_id, name: item.name });
          }
          started.delete(key);
          items.push(item);
          onEvent({ type: 'done', key, item });
          break;
        }
        case 'response.completed':
        case 'response.incomplete': {
          if (ev.response.service_tier) serviceTier = ev.response.service_tier;
          const u = ev.response.usage;
          if (u) {
            usage.input_tokens = u.input_tokens;
            usage.output_tokens = u.output_tokens;
            usage.total_tokens = u.total_tokens;
            usage.input_tokens_details.cached_tokens = u.input_tokens_details?.cached_tokens ?? 0;
            usage.output_tokens_details.reasoning_tokens = u.output_tokens_details?.reasoning_tokens ?? 0;
          }
          break;
        }
        case 'response.failed':
          throw new UpstreamStreamError(`The model upstream failed: ${ev.response.error?.message ?? 'unknown error'}`);
        case 'error':
          throw new UpstreamStreamError(`The model upstream failed: ${ev.message}`);
      }
    }
    return { items, usage, ...(serviceTier ? { serviceTier } : {}) };
  }
}

/** A whole response as the events that end its stream: each item's `done`, then how it ended. */
export function asEvents(r: Response): unknown[] {
  const out: unknown[] = (r.output ?? []).map((item, output_index) => ({ type: 'response.output_item.done', output_index, item }));
  if (r.status === 'failed' || r.error) out.push({ type: 'response.failed', response: r });
  else out.push({ type: r.status === 'incomplete' ? 'response.incomplete' : 'response.completed', response: r });
  return out;
}

function toTurnItem(item: { type: string } & Record<string, unknown>): TurnItem | undefined {
  if (item.type === 'reasoning') {
    return {
      type: 'reasoning',
      id: String(item.id),
      summary: (item.summary as Array<{ type: 'summary_text'; text: string }>) ?? [],
      ...(item.content ? { content: item.content as Array<{ type: string; text: string }> } : {}),
      encrypted_content: (item.encrypted_content as string | null | undefined) ?? null,
    };
  }
  if (item.type === 'function_call') {
    return { type: 'function_call', id: String(item.id ?? newId('fc')), call_id: String(item.call_id), name: String(item.name), arguments: String(item.arguments ?? ''), status: 'completed' };
  }
  if (item.type === 'message') {
    const parts = (item.content as Array<{ type: string; text?: string; refusal?: string; annotations?: unknown[]; logprobs?: unknown[] }>) ?? [];
    const content = parts.map((c) =>
      c.type === 'refusal' ? { type: 'refusal' as const, refusal: c.refusal ?? '' } : { type: 'output_text' as const, text: c.text ?? '', annotations: c.annotations ?? [], logprobs: c.logprobs ?? [] },
    );
    return { type: 'message', id: typeof item.id === 'string' ? item.id : newId('msg'), role: 'assistant', content, status: 'completed' };
  }
  return undefined;
}
