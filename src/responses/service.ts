import type { Logger } from 'pino';
import type { Metrics } from '../obs/metrics.js';
import type { ApprovalService } from '../approvals/service.js';
import type { Broker } from '../broker/broker.js';
import { ConflictError, InvalidRequestError, NotFoundError, UpstreamError } from '../errors/index.js';
import { callerScope } from '../keys/caller.js';
import { newId } from '../util/ids.js';
import { buildContext } from './context.js';
import { ResponseRun, type PreparedRun } from './run.js';
import type { CreateResponse, RequestTool } from './schema.js';
import type { EventTarget, Sink } from './sink.js';
import type { ResponseStore, StoredResponse } from './store.js';
import { TERMINAL } from './responseObject.js';
import type { BackgroundRuns } from './background.js';
import { buildToolset } from './toolset.js';
import type { McpApprovalRequestEntry } from './transcript.js';
import type { ModelAdapter } from './upstream/types.js';

export interface ResponsesOptions {
  broker: Broker;
  metrics: Metrics;
  approvals: ApprovalService;
  adapter: ModelAdapter | undefined;
  store: ResponseStore;
  logger: Logger;
  maxIterations: number;
  maxMcpTools: number;
  background: BackgroundRuns;
}

function hasFileUrl(e: { type: string; content?: unknown; output?: unknown }): boolean {
  const parts = e.type === 'message' ? e.content : e.type === 'function_call_output' ? e.output : undefined;
  return Array.isArray(parts) && parts.some((p: { type?: string; file_url?: unknown }) => p?.type === 'input_file' && !!p.file_url);
}

/** POST /v1/responses: everything that can fail with an HTTP error happens in prepare(). */
export class ResponsesService {
  constructor(readonly o: ResponsesOptions) {}

  get store() {
    return this.o.store;
  }

  get background() {
    return this.o.background;
  }

  /** A stored response of this key (others get 404), a lost background run settled first. */
  async owned(id: string, owner: string): Promise<StoredResponse> {
    const stored = await this.o.store.get(id);
    if (!stored || stored.owner !== owner) throw new NotFoundError('not_found', `Response with id '${id}' not found.`);
    return this.o.background.settle(stored);
  }

  async cancel(id: string, owner: string): Promise<Record<string, unknown>> {
    const stored = await this.owned(id, owner);
    if (stored.response.background !== true) {
      throw new InvalidRequestError('invalid_value', `Response '${id}' was not created with background: true; only background responses can be cancelled.`, { param: 'response_id' });
    }
    return this.o.background.cancel(stored);
  }

  /** DELETE: an unfinished background run is cancelled first, so it cannot write itself back. */
  async delete(id: string, owner: string): Promise<void> {
    const stored = await this.owned(id, owner);
    if (stored.response.background === true && !TERMINAL.has(String(stored.response.status))) await this.o.background.cancel(stored);
    await this.o.store.delete(id);
  }

  /** Starts a prepared background run; returns the queued response object. */
  startBackground(p: PreparedRun, live?: EventTarget): Promise<Record<string, unknown>> {
    return this.o.background.start(p.id, (sink, signal) => this.run(p, sink, signal), live, p.owner);
  }

  async prepare(body: CreateResponse, tools: readonly RequestTool[], owner: string, signal: AbortSignal): Promise<PreparedRun> {
    if (!this.o.adapter) {
      throw new UpstreamError(503, 'upstream_not_configured', 'No model upstream is configured (UPSTREAM_BASE_URL).');
    }
    if (body.background && body.store === false) {
      throw new InvalidRequestError('invalid_value', 'background: true requires store to be true (or omitted): a background response is stored.', { param: 'store' });
    }
    const { broker, approvals } = this.o;
    const ctx = await buildContext(body, owner, { store: this.o.store, approvals });
    if (ctx.previous && !TERMINAL.has(String(ctx.previous.response.status))) {
      throw new InvalidRequestError('invalid_value', `Previous response '${ctx.previous.id}' has not finished yet.`, { param: 'previous_response_id' });
    }
    if (this.o.adapter.protocol === 'chat_completions' && ctx.input.some(hasFileUrl)) {
      throw new InvalidRequestError('unsupported_parameter', 'input_file with file_url is not supported with a Chat Completions upstream; send file_data or file_id.', { param: 'input' });
    }
    const toolset = await buildToolset(tools, body.tool_choice, ctx.transcript, { broker, maxMcpTools: this.o.maxMcpTools, signal });

    const approvedFirst: PreparedRun['approvedFirst'] = [];
    for (const answer of ctx.approvalResponses) {
      const id = answer.approval_request_id;
      const request = ctx.transcript.find((e): e is McpApprovalRequestEntry => e.type === 'mcp_approval_request' && e.id === id)!;
      const binding = toolset.bindings.find((b) => b.server.server_label.toLowerCase() === request.server_label.toLowerCase());
      if (!binding) {
        throw new InvalidRequestError('invalid_value', `Send the mcp tool with server_label '${request.server_label}' to answer approval request ${id}.`, { param: 'tools' });
      }
      const actor = { kind: 'api' as const, owner };
      const record = await approvals.read(id, actor).catch((e) => {
        throw e instanceof NotFoundError ? new InvalidRequestError('invalid_value', `Approval request ${id} was not issued to this API key.`, { param: 'input' }) : e;
      });
      if (!answer.approve) {
        if (record.status === 'pending') await approvals.decide(id, actor, { approve: false, reason: answer.reason }).catch(() => undefined);
        continue;
      }
      let status = record.status;
      if (status === 'pending') {
        if (record.mode === 'webhook') {
          throw new ConflictError('approval_pending', `Approval request ${id} is waiting for the approval service.`, { noRetry: true });
        }
        status = (await approvals.decide(id, actor, { approve: true, reason: answer.reason })).status;
      }
      if (status === 'denied' || status === 'expired') {
        // The approver said no (or time ran out): the model is told; nothing runs.
        answer.hidden = { denied_reason: status === 'expired' ? 'the approval request expired' : record.reason };
        continue;
      }
      const prepared = await broker.prepareCall(binding.server, { name: record.name, approval_request_id: id }, { owner, signal, capacity: 'item' });
      if (prepared.kind === 'approval') throw new Error('unreachable: an approved call asked for approval');
      approvedFirst.push({ binding, name: record.name, prepared });
    }

    return {
      id: newId('resp'),
      createdAt: Math.floor(Date.now() / 1000),
      body,
      owner,
      ctx,
      toolset,
      approvedFirst,
      includeEncrypted: body.include?.includes('reasoning.encrypted_content') ?? false,
      caller: callerScope.getStore(),
    };
  }

  run(p: PreparedRun, sink: Sink, signal: AbortSignal): ResponseRun {
    const run = new ResponseRun(
      { broker: this.o.broker, metrics: this.o.metrics, approvals: this.o.approvals, adapter: this.o.adapter!, store: this.o.store, logger: this.o.logger, maxIterations: this.o.maxIterations },
      p,
      sink,
      signal,
    );
    return run;
  }
}
