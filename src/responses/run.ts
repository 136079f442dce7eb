import type { Logger } from 'pino';
import type { Metrics } from '../obs/metrics.js';
import type { ApprovalService } from '../approvals/service.js';
import type { Broker, PreparedCall } from '../broker/broker.js';
import { callItem } from '../broker/items.js';
import { ApiError, PermissionError } from '../errors/index.js';
import type { CallerKey } from '../keys/caller.js';
import { newId } from '../util/ids.js';
import { toModelMessages } from './modelView.js';
import { responseObject, type ResponseState } from './responseObject.js';
import type { CreateResponse } from './schema.js';
import type { Sink } from './sink.js';
import type { ResponseStore, StoredResponse } from './store.js';
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

/** The abort reason of a cancelled run (POST /v1/responses/{id}/cancel). */
export class RunCancelled extends Error {
  constructor() {
    super('The response was cancelled.');
  }
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
  /** The key that started it: a run that outlives its request stops once the key is deleted. */
  caller?: CallerKey;
}

/** One response: the agentic loop, its events, its stored result. */
export class ResponseRun {
  private readonly out: OutputWriter;
  private usage = zeroUsage();
  private serviceTier: string | undefined;
  /** call_ids of function calls already streamed to the caller. */
  private readonly streamed = new Set<string>();
  private toolCalls = 0;
  /** A tools/call was sent: errors after this must tell SDKs not to retry. */
  sideEffects = false;
  private status: ResponseState['status'];
  /** Background runs: writes the stored response; false when the end was already written elsewhere. */
  persist?: (stored: StoredResponse, final: boolean) => Promise<boolean>;

  constructor(
    private readonly d: RunDeps,
    private readonly p: PreparedRun,
    private readonly sink: Sink,
    private readonly signal: AbortSignal,
  ) {
    this.out = new OutputWriter(sink, p.includeEncrypted);
    this.status = p.body.background ? 'queued' : 'in_progress';
  }

  /** The stored form of the response right now (background progress, and the end). */
  snapshot(response: Record<string, unknown>): StoredResponse {
    return {
      id: this.p.id,
      owner: this.p.owner,
      response,
      inputItems: this.p.ctx.input.filter((e) => !isInternal(e)).map((e) => publicItem(e, this.p.includeEncrypted)),
      transcript: [...this.p.ctx.transcript, ...this.out.added],
    };
  }

  /** The response object as it stands (status in_progress while running). */
  current(): Record<string, unknown> {
    return this.object(this.state(this.status));
  }

  async run(): Promise<Record<string, unknown>> {
    const start = this.state(this.p.body.background ? 'queued' : 'in_progress');
    this.sink.emit('response.created', { response: this.object(start) });
    if (this.p.body.background) this.sink.emit('response.queued', { response: this.object(start) });
    this.status = 'in_progress';
    const progress = this.state('in_progress');
    this.sink.emit('response.in_progress', { response: this.object(progress) });
    for (const b of this.p.toolset.bindings) if (b.listing) this.out.listing(b.listing);

    let final: ResponseState;
    try {
      this.checkAborted();
      await this.runApprovedFirst();
      const end = await this.loop();
      final = this.state(end.status);
      if (end.reason) final.incomplete_details = { reason: end.reason };
    } catch (err) {
      const cancelled = this.signal.aborted && this.signal.reason instanceof RunCancelled;
      const api = err instanceof ApiError ? err : mapUpstreamError(err);
      if (!cancelled && (!this.sink.streaming || this.signal.aborted)) throw api;
      // Open items close first, with what streamed so far (wire doc §4).
      this.out.closeOpen();
      if (cancelled) final = this.state('cancelled');
      else {
        this.d.logger.warn({ response: this.p.id, code: api.code }, 'response failed after streaming began');
        final = this.state('failed');
        final.error = { code: api.code ?? 'server_error', message: api.message };
      }
    }
    this.status = final.status;
    const response = this.object(final);
    const event = final.status === 'failed' ? 'response.failed' : final.status === 'incomplete' ? 'response.incomplete' : final.status === 'cancelled' ? 'response.cancelled' : 'response.completed';
    if (this.persist) {
      // Background: the end is written once, by whoever claims it first (SPEC §6).
      if (!(await this.persist(this.snapshot(response), true))) return response;
    } else if (this.p.body.store !== false) {
      await this.d.store.put(this.snapshot(response));
    }
    this.sink.emit(event, { response });
    return response;
  }

  private checkAborted() {
    if (this.signal.aborted) throw this.signal.reason instanceof Error ? this.signal.reason : new RunCancelled();
  }

  private async loop(): Promise<{ status: 'completed' | 'incomplete'; reason?: string }> {
    for (let turn = 0; turn < this.d.maxIterations; turn++) {
      this.checkAborted();
      if (this.p.caller?.current && !(await this.p.caller.current())) {
        throw new PermissionError('api_key_deleted', 'The API key that started this response was deleted; the response stopped.');
      }
      const started = performance.now();
      let outcome = 'error';
      let result;
      try {
        result = await this.d.adapter.turn(this.turnRequest(turn), (e) => this.onTurnEvent(e), this.signal);
        outcome = 'ok';
      } finally {
        this.d.metrics.modelDuration.observe({ outcome }, (performance.now() - started) / 1000);
      }
      this.checkAborted();
      this.usage = addUsage(this.usage, result.usage);
      if (result.serviceTier) this.serviceTier = result.serviceTier;
      // Anything the upstream started and never finished.
      this.out.closeOpen();
      const calls = result.items.filter((i): i is FunctionCallEntry => i.type === 'function_call');
      if (calls.length === 0) return { status: 'completed' };
      const stop = await this.handleCalls(calls);
      this.checkAborted();
      if (stop) return { status: 'completed' };
    }
    return { status: 'incomplete', reason: 'max_iterations' };
  }

  private turnRequest(turn: number): TurnRequest {
    const b = this.p.body;
    const ts = this.p.toolset;
    return {
      model: b.model,
      stream: this.sink.streaming,
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
      presencePenalty: b.presence_penalty,
      frequencyPenalty: b.frequency_penalty,
      topLogprobs: b.top_logprobs,
      serviceTier: b.service_tier,
      safetyIdentifier: b.safety_identifier,
      promptCacheKey: b.prompt_cache_key,
      promptCacheRetention: b.prompt_cache_retention,
    };
  }

  /** Upstream events → output events. MCP calls are not streamed: they run after the turn. */
  private onTurnEvent(e: TurnEvent) {
    switch (e.type) {
      case 'message_start':
        return this.out.messageStart(e.key, e.id);
      case 'content_delta':
        return this.out.contentDelta(e.key, e.content_index, e.part, e.delta);
      case 'reasoning_start':
        return this.out.reasoningStart(e.key, e.id);
      case 'summary_delta':
        return this.out.summaryDelta(e.key, e.summary_index, e.delta);
      case 'call_start':
        // A caller's function tool streams as it comes; an MCP tool's call is decided later.
        if (this.p.toolset.byFn.get(e.name)?.kind === 'function') this.out.functionStart(e.key, e);
        return;
      case 'arguments_delta':
        return this.out.argumentsDelta(e.key, e.delta);
      case 'done': {
        const item = e.item;
        if (item.type === 'message') this.out.messageDone(e.key, item);
        else if (item.type === 'reasoning') this.out.reasoningDone(e.key, item);
        else if (this.out.isOpen(e.key)) {
          this.out.functionDone(e.key, item);
          this.streamed.add(item.call_id);
        }
      }
    }
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
        // Streamed already as it came, unless its name arrived too late to know it then.
        if (!this.streamed.has(call.call_id)) {
          const key = `late:${call.call_id}`;
          this.out.functionStart(key, call);
          this.out.functionDone(key, call);
        }
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
        // Cancelled while it ran: its result is dropped, and the model never sees it.
        if (this.signal.aborted) return;
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
      completed_at: status === 'completed' ? Math.floor(Date.now() / 1000) : null,
      ...(this.serviceTier ? { service_tier: this.serviceTier } : {}),
      status,
      output: this.out.publicOutput(),
      // Known once the run ends.
      usage: status === 'queued' || status === 'in_progress' ? null : this.usage,
      error: null,
      incomplete_details: null,
      tools: this.p.toolset.echo,
    };
  }

  private object(s: ResponseState) {
    return responseObject(this.p.body, s);
  }
}
