import { newId } from '../util/ids.js';
import type { Sink } from './sink.js';
import { publicItem, type Entry, type FunctionCallEntry, type McpCallEntry, type MessageEntry, type ReasoningEntry } from './transcript.js';
import type { McpListToolsItem } from '../broker/items.js';

type PartType = 'output_text' | 'refusal';
const emptyPart = (type: PartType) => (type === 'refusal' ? { type, refusal: '' } : { type, annotations: [], logprobs: [], text: '' });
const fullPart = (type: PartType, text: string, annotations: unknown[] = []) =>
  type === 'refusal' ? { type, refusal: text } : { type, annotations, logprobs: [], text };

type OpenMessage = { kind: 'message'; index: number; id: string; parts: Array<{ type: PartType; text: string; open: boolean; annotations?: unknown[] }> };
type OpenReasoning = { kind: 'reasoning'; index: number; id: string; parts: Array<{ text: string; open: boolean }>; entry: ReasoningEntry };
type OpenFunction = { kind: 'function'; index: number; entry: FunctionCallEntry; streamed: boolean };
type OpenItem = OpenMessage | OpenReasoning | OpenFunction;

/**
 * A response's output as it is produced: items by `output_index`, the entries the
 * transcript gains, and the stream events for each (wire doc §3, §4 "Streaming
 * fidelity"), in order. Upstream items are open from their start until their `done`.
 */
export class OutputWriter {
  /** Public items by output_index. */
  readonly output: Entry[] = [];
  /** Everything this response adds to the conversation, internal notes included. */
  readonly added: Entry[] = [];
  /** Open upstream items by the turn's key. */
  private readonly open = new Map<string, OpenItem>();
  /** mcp_calls started and not ended, by output_index. */
  private readonly running = new Map<number, McpCallEntry>();

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

  isOpen(key: string) {
    return this.open.has(key);
  }

  // ---- messages ----

  messageStart(key: string, upstreamId?: string) {
    // The upstream's id is kept unless it would repeat one of this response's items.
    const id = upstreamId && !this.output.some((e) => e.id === upstreamId) ? upstreamId : newId('msg');
    const index = this.reserve({ type: 'message', id, status: 'in_progress', role: 'assistant', content: [] });
    this.open.set(key, { kind: 'message', index, id, parts: [] });
  }

  contentDelta(key: string, contentIndex: number, type: PartType, delta: string) {
    const m = this.open.get(key);
    if (m?.kind !== 'message') return;
    const part = this.part(m, contentIndex, type);
    part.text += delta;
    const at = { item_id: m.id, output_index: m.index, content_index: contentIndex };
    if (type === 'refusal') this.sink.emit('response.refusal.delta', { ...at, delta });
    else this.sink.emit('response.output_text.delta', { ...at, delta, logprobs: [] });
  }

  /** The upstream's whole message: parts that did not stream go out now, then it closes. */
  messageDone(key: string, item: MessageEntry) {
    const m = this.open.get(key);
    if (m?.kind !== 'message') return;
    const content = typeof item.content === 'string' ? [{ type: 'output_text' as const, text: item.content }] : item.content;
    content.forEach((c, i) => {
      const type: PartType = c.type === 'refusal' ? 'refusal' : 'output_text';
      const text = c.type === 'refusal' ? c.refusal : 'text' in c ? c.text : '';
      if (!m.parts[i]) {
        this.part(m, i, type);
        if (text) this.contentDelta(key, i, type, text);
      }
      if (c.type === 'output_text' && c.annotations?.length) m.parts[i]!.annotations = c.annotations;
    });
    this.closeMessage(key, m, 'completed');
  }

  private part(m: OpenMessage, index: number, type: PartType) {
    let part = m.parts[index];
    if (!part) {
      // A new part closes the one before it.
      m.parts.forEach((p, i) => p.open && this.closePart(m, i));
      part = m.parts[index] = { type, text: '', open: true };
      this.sink.emit('response.content_part.added', { item_id: m.id, output_index: m.index, content_index: index, part: emptyPart(type) });
    }
    return part;
  }

  private closePart(m: OpenMessage, i: number) {
    const p = m.parts[i]!;
    p.open = false;
    const at = { item_id: m.id, output_index: m.index, content_index: i };
    if (p.type === 'refusal') this.sink.emit('response.refusal.done', { ...at, refusal: p.text });
    else this.sink.emit('response.output_text.done', { ...at, text: p.text, logprobs: [] });
    this.sink.emit('response.content_part.done', { ...at, part: fullPart(p.type, p.text, p.annotations) });
  }

  private closeMessage(key: string, m: OpenMessage, status: 'completed' | 'incomplete') {
    this.open.delete(key);
    m.parts.forEach((p, i) => p.open && this.closePart(m, i));
    const content = m.parts.filter(Boolean).map((p) => fullPart(p.type, p.text, p.annotations)) as MessageEntry['content'];
    this.finish(m.index, { type: 'message', id: m.id, status, role: 'assistant', content });
  }

  // ---- reasoning ----

  reasoningStart(key: string, id: string) {
    const entry: ReasoningEntry = { type: 'reasoning', id, summary: [] };
    const index = this.reserve(entry);
    this.open.set(key, { kind: 'reasoning', index, id, parts: [], entry });
  }

  summaryDelta(key: string, summaryIndex: number, delta: string) {
    const r = this.open.get(key);
    if (r?.kind !== 'reasoning') return;
    const part = this.summaryPart(r, summaryIndex);
    part.text += delta;
    this.sink.emit('response.reasoning_summary_text.delta', { item_id: r.id, output_index: r.index, summary_index: summaryIndex, delta });
  }

  reasoningDone(key: string, item: ReasoningEntry) {
    const r = this.open.get(key);
    if (r?.kind !== 'reasoning') return;
    item.summary.forEach((s, i) => {
      if (!r.parts[i]) {
        this.summaryPart(r, i);
        if (s.text) this.summaryDelta(key, i, s.text);
      }
    });
    r.entry = item;
    this.closeReasoning(key, r, undefined);
  }

  private summaryPart(r: OpenReasoning, index: number) {
    let part = r.parts[index];
    if (!part) {
      r.parts.forEach((p, i) => p.open && this.closeSummary(r, i));
      part = r.parts[index] = { text: '', open: true };
      this.sink.emit('response.reasoning_summary_part.added', { item_id: r.id, output_index: r.index, summary_index: index, part: { type: 'summary_text', text: '' } });
    }
    return part;
  }

  private closeSummary(r: OpenReasoning, i: number) {
    const p = r.parts[i]!;
    p.open = false;
    const at = { item_id: r.id, output_index: r.index, summary_index: i };
    this.sink.emit('response.reasoning_summary_text.done', { ...at, text: p.text });
    this.sink.emit('response.reasoning_summary_part.done', { ...at, part: { type: 'summary_text', text: p.text } });
  }

  private closeReasoning(key: string, r: OpenReasoning, status: 'incomplete' | undefined) {
    this.open.delete(key);
    r.parts.forEach((p, i) => p.open && this.closeSummary(r, i));
    const summary = r.parts.filter(Boolean).map((p) => ({ type: 'summary_text' as const, text: p.text }));
    this.finish(r.index, { ...r.entry, summary, ...(status ? { status } : {}) });
  }

  // ---- function calls the caller runs (streamed as they come) ----

  functionStart(key: string, fields: { id?: string; call_id: string; name: string }) {
    const entry: FunctionCallEntry = { type: 'function_call', id: fields.id ?? newId('fc'), call_id: fields.call_id, name: fields.name, arguments: '', status: 'in_progress' };
    const index = this.reserve(entry);
    this.open.set(key, { kind: 'function', index, entry, streamed: false });
  }

  argumentsDelta(key: string, delta: string) {
    const f = this.open.get(key);
    if (f?.kind !== 'function') return;
    f.streamed = true;
    f.entry.arguments += delta;
    this.sink.emit('response.function_call_arguments.delta', { item_id: f.entry.id, output_index: f.index, delta });
  }

  functionDone(key: string, item: FunctionCallEntry) {
    const f = this.open.get(key);
    if (f?.kind !== 'function') return;
    if (!f.streamed && item.arguments) this.argumentsDelta(key, item.arguments);
    this.closeFunction(key, f, 'completed', item.arguments);
  }

  private closeFunction(key: string, f: OpenFunction, status: 'completed' | 'incomplete', args = f.entry.arguments) {
    this.open.delete(key);
    this.sink.emit('response.function_call_arguments.done', { item_id: f.entry.id, output_index: f.index, arguments: args });
    this.finish(f.index, { ...f.entry, arguments: args, status });
  }

  /**
   * Closes every open item as `incomplete`, keeping what streamed (a failure or a
   * cancellation mid-stream), in output order.
   */
  closeOpen() {
    const items = [...this.open.entries()].sort(([, a], [, b]) => a.index - b.index);
    for (const [key, o] of items) {
      if (o.kind === 'message') this.closeMessage(key, o, 'incomplete');
      else if (o.kind === 'reasoning') this.closeReasoning(key, o, 'incomplete');
      else this.closeFunction(key, o, 'incomplete');
    }
    for (const [index, entry] of [...this.running].sort(([a], [b]) => a - b)) {
      this.running.delete(index);
      this.finish(index, { ...entry, status: 'incomplete' });
    }
  }

  // ---- broker-made items ----

  /** Approval requests: added and done at once. */
  whole(entry: Entry) {
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
    return this.startCallWithId({ id, type: 'mcp_call', status: 'in_progress', ...fields, arguments: args, output: null, error: null });
  }

  endCall(index: number, entry: McpCallEntry) {
    // Already closed (the run was cancelled while the call ran): nothing more to say.
    if (!this.running.delete(index)) return;
    this.sink.emit(entry.error ? 'response.mcp_call.failed' : 'response.mcp_call.completed', { item_id: entry.id, output_index: index });
    this.finish(index, entry);
  }

  /** A call that was decided without running (refused): the whole sequence at once. */
  settledCall(entry: McpCallEntry) {
    const { index } = this.startCallWithId(entry);
    this.endCall(index, entry);
  }

  private startCallWithId(entry: McpCallEntry) {
    const index = this.reserve({ ...entry, status: 'in_progress', arguments: '', output: null, error: null });
    this.running.set(index, { ...entry, status: 'in_progress', output: null, error: null });
    this.sink.emit('response.mcp_call.in_progress', { item_id: entry.id, output_index: index });
    this.sink.emit('response.mcp_call_arguments.delta', { item_id: entry.id, output_index: index, delta: entry.arguments });
    this.sink.emit('response.mcp_call_arguments.done', { item_id: entry.id, output_index: index, arguments: entry.arguments });
    // From here on the item (GET while running) shows its arguments.
    this.output[index] = this.running.get(index)!;
    return { id: entry.id, index };
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
