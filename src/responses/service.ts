import type { Logger } from 'pino';
import type { Metrics } from '../obs/metrics.js';
import type { ApprovalService } from '../approvals/service.js';
import type { Broker } from '../broker/broker.js';
import { ConflictError, InvalidRequestError, NotFoundError, UpstreamError } from '../errors/index.js';
import { newId } from '../util/ids.js';
import { buildContext } from './context.js';
import { ResponseRun, type PreparedRun } from './run.js';
import type { CreateResponse } from './schema.js';
import type { Sink } from './sink.js';
import type { ResponseStore } from './store.js';
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
}

/** POST /v1/responses: everything that can fail with an HTTP error happens in prepare(). */
export class ResponsesService {
  constructor(readonly o: ResponsesOptions) {}

  get store() {
    return this.o.store;
  }

  async prepare(body: CreateResponse, owner: string, signal: AbortSignal): Promise<PreparedRun> {
    if (!this.o.adapter) {
      throw new UpstreamError(503, 'upstream_not_configured', 'No model upstream is configured (UPSTREAM_BASE_URL).');
    }
    const { broker, approvals } = this.o;
    const ctx = await buildContext(body, owner, { store: this.o.store, approvals });
    const toolset = await buildToolset(body.tools ?? [], body.tool_choice, ctx.transcript, { broker, maxMcpTools: this.o.maxMcpTools, signal });

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
