import type OpenAI from 'openai';
import type { ResponseCreateParamsStreaming, ResponseInputItem } from 'openai/resources/responses/responses.js';
import { newId } from '../../util/ids.js';
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
        return { type: 'function_call_output', call_id: m.call_id, output: m.output };
    }
  });
}

/** A Responses upstream, stateless (`store: false`): the broker keeps the conversation. */
export class ResponsesAdapter implements ModelAdapter {
  constructor(private readonly client: OpenAI) {}

  async turn(req: TurnRequest, onEvent: (e: TurnEvent) => void, signal: AbortSignal): Promise<TurnResult> {
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

    const stream = await this.client.responses.create(body, { signal });
    const items: TurnItem[] = [];
    const usage = zeroUsage();
    for await (const ev of stream) {
      switch (ev.type) {
        case 'response.output_text.delta':
          onEvent({ type: 'text_delta', delta: ev.delta });
          break;
        case 'response.output_item.done': {
          const item = toTurnItem(ev.item as unknown as { type: string } & Record<string, unknown>);
          if (item) {
            items.push(item);
            onEvent({ type: 'item', item });
          }
          break;
        }
        case 'response.completed':
        case 'response.incomplete': {
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
    return { items, usage };
  }
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
    const content = (item.content as Array<{ type: string; text?: string; refusal?: string }>) ?? [];
    const text = content.map((c) => c.text ?? c.refusal ?? '').join('');
    return { type: 'message', id: newId('msg'), role: 'assistant', content: [{ type: 'output_text', text, annotations: [], logprobs: [] }], status: 'completed' };
  }
  return undefined;
}
