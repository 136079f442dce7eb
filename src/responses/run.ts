import type { Logger } from 'pino';
import type { Metrics } from '../obs/metrics.js';
import type { ApprovalService } from '../approvals/service.js';
import type { Broker, PreparedCall } from '../broker/broker.js';
import { callItem } from '../broker/items.js';
import { ApiError } from '../errors/index.js';
import { newId } from '../util/ids.js';
import { toModelMessages } from './modelView.js';
import { responseObject, type ResponseState } from './responseObject.js';
import type { CreateResponse } from './schema.js';
import type { Sink } from './sink.js';
import type { ResponseStore } from './store.js';
import type { McpBinding, Toolset } from './toolset.js';
import { isInternal, publicItem, type FunctionCallEntry, type Upstreamed } from './transcript.js';
import { OutputWriter } from './output.js';
import type { RequestContext } from './context.js';
import { mapUpstreamError } from './upstream/errors.js';
import { addUsage, zeroUsage, type ModelAdapter, type TurnEvent, type TurnRequest } from './upstream/types.js';

export interface RunDeps {
  broker: Broker;
  metrics: Metrics;
  approvals: ApprovalService;
  adapter: ModelAdapter;
  store: ResponseStore;
  logger: Logger;
  maxIterations: number;
}

/** A call the model made that will run, with what the transcript must remember of it. */
interface Runnable {
  binding: McpBinding;
  name: string;
  prepared: Extract<PreparedCall, { kind: 'run' }>;
  hidden: Upstreamed;
}

export interface PreparedRun {
  id: string;
  createdAt: number;
  body: CreateResponse;
  owner: string;
  ctx: RequestContext;
  toolset: Toolset;
  /** Calls approved in this request's input: they run first, before any model sampling. */
  approvedFirst: Array<{ binding: McpBinding; name: string; prepared: Exclude<PreparedCall, { kind: 'approval' }> }>;
  includeEncrypted: boolean;
}

/** One response: the agentic loop, its events, its stored result. */
export class ResponseRun {
  private readonly out: OutputWriter;
  private usage = zeroUsage();
  private toolCalls = 0;
  /** A tools/call was sent: errors after this must tell SDKs not to retry. */
  sideEffects = false;

  constructor(
    private readonly d: RunDeps,
    private readonly p: PreparedRun,
    private readonly sink: Sink,
    private readonly signal: AbortSignal,
  ) {
    this.out = new OutputWriter(sink, p.includeEncrypted);
  }

  async run(): Promise<Record<string, unknown>> {
    const start = this.state('in_progress');
    start.usage = null;
    this.sink.emit('response.created', { response: this.object(start) });
    this.sink.emit('response.in_progress', { response: this.object(start) });
    for (const b of this.p.toolset.bindings) if (b.listing) this.out.listing(b.listing);

    let final: ResponseState;
    try {
      await this.runApprovedFirst();
      const end = await this.loop();
      final = this.state(end.status);
      if (end.reason) final.incomplete_details = { reason: end.reason };
    } catch (err) {
      const api = err instanceof ApiError ? err : mapUpstreamError(err);
      if (!this.sink.streaming || this.signal.aborted) throw api;
      this.d.logger.warn({ response: this.p.id, code: api.code }, 'response failed after streaming began');
      final = this.state('failed');
      final.error = { code: api.code ?? 'server_error', message: api.message };
    }
    const response = this.object(final);
    if (this.p.body.store !== false) {
      await this.d.store.put({
        id: this.p.id,
        owner: this.p.owner,
        response,
        inputItems: this.p.ctx.input.filter((e) => !isInternal(e)).map((e) => publicItem(e, this.p.includeEncrypted)),
        transcript: [...this.p.ctx.transcript, ...this.out.added],
      });
    }
    const event = final.status === 'failed' ? 'response.failed' : final.status === 'incomplete' ? 'response.incomplete' : 'response.completed';
    this.sink.emit(event, { response });
    return response;
  }

  private async loop(): Promise<{ status: 'completed' | 'incomplete'; reason?: string }> {
    for (let turn = 0; turn < this.d.maxIterations; turn++) {
      const started = performance.now();
      let outcome = 'error';
      let result;
      try {
        result = await this.d.adapter.turn(this.turnRequest(turn), (e) => this.onTurnEvent(e), this.signal);
        outcome = 'ok';
      } finally {
        this.d.metrics.modelDuration.observe({ outcome }, (performance.now() - started) / 1000);
      }
      this.usage = addUsage(this.usage, result.usage);
      this.out.closeMessage();
      const calls = result.items.filter((i): i is FunctionCallEntry => i.type === 'function_call');
      if (calls.length === 0) return { status: 'completed' };
      if (await this.handleCalls(calls)) return { status: 'completed' };
    }
    return { status: 'incomplete', reason: 'max_iterations' };
  }

  private turnRequest(turn: number): TurnRequest {
    const b = this.p.body;
    const ts = this.p.toolset;
    return {
      model: b.model,
      instructions: b.instructions ?? null,
      messages: toModelMessages([...this.p.ctx.transcript, ...this.out.added], ts.fnNameOf),
      tools: ts.modelTools,
      // A forced choice applies to the first turn; after that the model may answer.
      toolChoice: turn === 0 ? ts.toolChoice : ts.toolChoice === 'none' ? 'none' : 'auto',
      parallelToolCalls: b.parallel_tool_calls ?? true,
      temperature: b.temperature,
      topP: b.top_p,
      maxOutputTokens: b.max_output_tokens,
      reasoning: b.reasoning,
      text: b.text,
      user: b.user,
    };
  }

  private onTurnEvent(e: TurnEvent) {
    if (e.type === 'text_delta') return this.out.textDelta(e.delta);
    const item = e.item;
    if (item.type === 'message') {
      this.out.wholeMessage(typeof item.content === 'string' ? item.content : item.content.map((c) => ('text' in c ? c.text : '')).join(''));
    } else if (item.type === 'reasoning') this.out.whole(item);
  }

  /** Returns true when the response ends here (an approval to wait for, or client function calls). */
  private async handleCalls(calls: FunctionCallEntry[]): Promise<boolean> {
    let stop = false;
    const runnable: Runnable[] = [];
    const waits: Array<() => Promise<void>> = [];
    const max = this.p.body.max_tool_calls;
    for (const call of calls) {
      const target = this.p.toolset.byFn.get(call.name);
      const hidden: Upstreamed = { call_id: call.call_id, fc_id: call.id, fn_name: call.name };
      if (!target) {
        this.note(call, `Error: there is no tool named '${call.name}'.`);
      } else if (target.kind === 'function') {
        this.out.functionCall(call);
        stop = true;
      } else if (max != null && this.toolCalls >= max) {
        this.note(call, `Not run: this response reached its max_tool_calls limit (${max}).`);
      } else {
        this.toolCalls++;
        const b = target.binding;
        const prepared = await this.prepare(b, target.tool, call.arguments);
        if (prepared.kind === 'refused') this.out.settledCall({ ...prepared.item, hidden });
        else if (prepared.kind === 'run') runnable.push({ binding: b, name: target.tool, prepared, hidden });
        else if (b.server.approval.mode === 'webhook' && b.server.approval.wait_ms > 0) {
          waits.push(() => this.awaitApprover(b, target.tool, prepared, hidden).then((pending) => void (stop ||= pending)));
        } else {
          this.out.whole({ ...prepared.item, hidden });
          stop = true;
        }
      }
    }
    await Promise.all([this.runCalls(runnable), ...waits.map((w) => w())]);
    return stop;
  }

  private async prepare(b: McpBinding, name: string, args: string): Promise<PreparedCall> {
    try {
      return await this.d.broker.prepareCall(b.server, { name, arguments: args }, { owner: this.p.owner, signal: this.signal, capacity: 'item' });
    } catch (err) {
      // Inside a response a failure to prepare reaches the model as a failed call.
      if (!(err instanceof ApiError)) throw err;
      const error =
        err.param === 'arguments'
          ? { type: 'mcp_protocol_error' as const, code: -32602, message: err.message }
          : { type: 'http_error' as const, code: err.status, message: err.message };
      return { kind: 'refused', item: callItem({ server_label: b.server.server_label, name, arguments: args }, { output: null, error }) };
    }
  }

  /** webhook mode: wait up to `wait_ms` for the approver. Returns true if still pending. */
  private async awaitApprover(b: McpBinding, name: string, prepared: Extract<PreparedCall, { kind: 'approval' }>, hidden: Upstreamed): Promise<boolean> {
    const rec = await this.d.approvals.readWhenDecided(prepared.record.id, { kind: 'api', owner: this.p.owner }, b.server.approval.wait_ms, this.signal);
    if (rec.status === 'approved') {
      const claimed = await this.prepareApproved(b, name, rec.id);
      if (claimed.kind === 'run') await this.runCalls([{ binding: b, name, prepared: claimed, hidden }]);
      else this.out.settledCall({ ...claimed.item, hidden });
      return false;
    }
    if (rec.status === 'denied' || rec.status === 'expired') {
      // No mcp_call appears; the model is told of the refusal.
      const reason = rec.status === 'expired' ? 'the approval request expired' : rec.reason;
      this.out.internal(
        { ...prepared.item, hidden: { ...hidden, internal: true } },
        { type: 'mcp_approval_response', id: newId('mcpa'), approval_request_id: rec.id, approve: false, reason, hidden: { internal: true } },
      );
      return false;
    }
    this.out.whole({ ...prepared.item, hidden });
    return true;
  }

  private async prepareApproved(b: McpBinding, name: string, id: string) {
    const p = await this.d.broker.prepareCall(b.server, { name, approval_request_id: id }, { owner: this.p.owner, signal: this.signal, capacity: 'item' });
    if (p.kind === 'approval') throw new Error('unreachable: an approved call asked for approval');
    return p;
  }

  private async runApprovedFirst() {
    for (const a of this.p.approvedFirst) {
      if (a.prepared.kind === 'refused') this.out.settledCall(a.prepared.item);
      else await this.runCalls([{ binding: a.binding, name: a.name, prepared: a.prepared, hidden: {} }]);
    }
  }

  /** Runs calls concurrently; every `added` goes out in output order before any starts. */
  private async runCalls(list: Runnable[]) {
    if (list.length === 0) return;
    const slots = list.map((r) =>
      this.out.startCall({ server_label: r.binding.server.server_label, name: r.name, approval_request_id: r.prepared.approval_request_id }, r.prepared.args.text),
    );
    this.sideEffects = true;
    await Promise.all(
      list.map(async (r, i) => {
        const { id, index } = slots[i]!;
        const item = await this.d.broker.execute(r.binding.server, r.name, r.prepared.args, r.prepared.approval_request_id, { signal: this.signal, capacity: 'item' });
        this.out.endCall(index, { ...item, id, hidden: r.hidden });
      }),
    );
  }

  /** A call the broker answers itself (unknown tool, over max_tool_calls): for the model only. */
  private note(call: FunctionCallEntry, text: string) {
    this.out.internal({ ...call, internal: true }, { type: 'function_call_output', id: newId('fco'), call_id: call.call_id, output: text, internal: true });
  }

  private state(status: ResponseState['status']): ResponseState {
    return {
      id: this.p.id,
      created_at: this.p.createdAt,
      status,
      output: status === 'in_progress' ? [] : this.out.publicOutput(),
      usage: this.usage,
      error: null,
      incomplete_details: null,
      tools: this.p.toolset.echo,
    };
  }

  private object(s: ResponseState) {
    return responseObject(this.p.body, s);
  }
}
