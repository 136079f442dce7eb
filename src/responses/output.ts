import { newId } from '../util/ids.js';
import type { Sink } from './sink.js';
import { publicItem, type Entry, type FunctionCallEntry, type McpCallEntry } from './transcript.js';
import type { McpListToolsItem } from '../broker/items.js';

const textPart = (text: string) => ({ type: 'output_text' as const, annotations: [], logprobs: [], text });

/**
 * A response's output as it is produced: items by `output_index`, the entries the
 * transcript gains, and the stream events for each (wire doc §3), in order.
 */
export class OutputWriter {
  /** Public items by output_index. */
  readonly output: Entry[] = [];
  /** Everything this response adds to the conversation, internal notes included. */
  readonly added: Entry[] = [];
  private message: { index: number; id: string; text: string } | undefined;

  constructor(
    private readonly sink: Sink,
    private readonly includeEncrypted: boolean,
  ) {}

  publicOutput() {
    return this.output.map((e) => publicItem(e, this.includeEncrypted));
  }

  /** Entries the model sees but the caller does not (the broker's own notes). */
  internal(...entries: Entry[]) {
    this.added.push(...entries);
  }

  textDelta(delta: string) {
    const m = this.openMessage();
    m.text += delta;
    this.sink.emit('response.output_text.delta', { item_id: m.id, output_index: m.index, content_index: 0, delta, logprobs: [] });
  }

  /** A whole message from the upstream: fills in text that did not stream, then closes it. */
  wholeMessage(text: string) {
    const m = this.openMessage();
    if (!m.text && text) this.textDelta(text);
    this.closeMessage();
  }

  closeMessage() {
    const m = this.message;
    if (!m) return;
    this.message = undefined;
    this.sink.emit('response.output_text.done', { item_id: m.id, output_index: m.index, content_index: 0, text: m.text, logprobs: [] });
    this.sink.emit('response.content_part.done', { item_id: m.id, output_index: m.index, content_index: 0, part: textPart(m.text) });
    this.finish(m.index, { type: 'message', id: m.id, status: 'completed', role: 'assistant', content: [textPart(m.text)] });
  }

  /** Reasoning, approval requests: added and done at once. */
  whole(entry: Entry) {
    this.closeMessage();
    this.finish(this.reserve(entry), entry);
  }

  listing(item: McpListToolsItem) {
    const index = this.reserve({ ...item, tools: [] });
    this.sink.emit('response.mcp_list_tools.in_progress', { item_id: item.id, output_index: index });
    this.sink.emit('response.mcp_list_tools.completed', { item_id: item.id, output_index: index });
    this.finish(index, item);
  }

  /** An mcp_call about to run: everything up to its arguments. */
  startCall(fields: { server_label: string; name: string; approval_request_id: string | null }, args: string) {
    const id = newId('mcp');
    const index = this.reserve({ id, type: 'mcp_call', status: 'in_progress', ...fields, arguments: '', output: null, error: null });
    this.sink.emit('response.mcp_call.in_progress', { item_id: id, output_index: index });
    this.sink.emit('response.mcp_call_arguments.delta', { item_id: id, output_index: index, delta: args });
    this.sink.emit('response.mcp_call_arguments.done', { item_id: id, output_index: index, arguments: args });
    return { id, index };
  }

  endCall(index: number, entry: McpCallEntry) {
    this.sink.emit(entry.error ? 'response.mcp_call.failed' : 'response.mcp_call.completed', { item_id: entry.id, output_index: index });
    this.finish(index, entry);
  }

  /** A call that was decided without running (refused): the whole sequence at once. */
  settledCall(entry: McpCallEntry) {
    const { index } = this.startCallWithId(entry);
    this.endCall(index, entry);
  }

  functionCall(call: FunctionCallEntry) {
    const index = this.reserve({ ...call, status: 'in_progress', arguments: '' });
    this.sink.emit('response.function_call_arguments.delta', { item_id: call.id, output_index: index, delta: call.arguments });
    this.sink.emit('response.function_call_arguments.done', { item_id: call.id, output_index: index, arguments: call.arguments });
    this.finish(index, { ...call, status: 'completed' });
  }

  private startCallWithId(entry: McpCallEntry) {
    const index = this.reserve({ ...entry, status: 'in_progress', arguments: '', output: null, error: null });
    this.sink.emit('response.mcp_call.in_progress', { item_id: entry.id, output_index: index });
    this.sink.emit('response.mcp_call_arguments.delta', { item_id: entry.id, output_index: index, delta: entry.arguments });
    this.sink.emit('response.mcp_call_arguments.done', { item_id: entry.id, output_index: index, arguments: entry.arguments });
    return { index };
  }

  private openMessage() {
    if (!this.message) {
      const id = newId('msg');
      const index = this.reserve({ type: 'message', id, status: 'in_progress', role: 'assistant', content: [] });
      this.sink.emit('response.content_part.added', { item_id: id, output_index: index, content_index: 0, part: textPart('') });
      this.message = { index, id, text: '' };
    }
    return this.message;
  }

  private reserve(initial: Entry): number {
    const index = this.output.length;
    this.output.push(initial);
    this.sink.emit('response.output_item.added', { output_index: index, item: publicItem(initial, this.includeEncrypted) });
    return index;
  }

  private finish(index: number, entry: Entry) {
    this.output[index] = entry;
    this.added.push(entry);
    this.sink.emit('response.output_item.done', { output_index: index, item: publicItem(entry, this.includeEncrypted) });
  }
}
