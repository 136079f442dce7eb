import type { Logger } from 'pino';
import type { Tool } from '@modelcontextprotocol/client';
import type { ApprovalService } from '../approvals/service.js';
import type { ApprovalRecord } from '../approvals/record.js';
import type { WebhookDispatcher } from '../approvals/webhooks.js';
import type { Catalog, CatalogTool, DefinitionChanged } from '../catalog/catalog.js';
import { ExternalConnectorError, InvalidRequestError, RateLimitError, UpstreamError, retryAfter, type ApiError } from '../errors/index.js';
import { BrokerCapacityError, classifyUpstreamError, type UpstreamFailure } from '../mcp/failure.js';
import type { Upstreams } from '../mcp/upstreams.js';
import { currentCaller, type CallerKey } from '../keys/caller.js';
import { metricLabel, type Metrics } from '../obs/metrics.js';
import type { SecretValues } from '../obs/logger.js';
import { effectiveAllowed, effectiveNeedsApproval, grantFor, registeredLayers } from '../policy/policy.js';
import type { RegistryStore } from '../registry/store.js';
import { mergeSecrets, scrub, scrubJson } from '../util/scrub.js';
import { parseArguments, type ParsedArguments } from './arguments.js';
import {
  approvalRequestItem,
  callItem,
  listToolsItem,
  outcomeOfResult,
  protocolError,
  type CallOutcome,
  type McpApprovalRequestItem,
  type McpCallItem,
  type McpListToolsItem,
} from './items.js';
import { resolveServer, type ResolvedServer, type ResolveSettings } from './resolve.js';
import type { McpToolParam } from './toolParam.js';

export interface BrokerDeps {
  registry: RegistryStore;
  catalog: Catalog;
  upstreams: Upstreams;
  approvals: ApprovalService;
  webhooks: WebhookDispatcher;
  settings: ResolveSettings;
  publicUrl: string;
  approvalTtlS: number;
  logger: Logger;
  metrics: Metrics;
  /** Credential values seen on requests, scrubbed from every log line. */
  secrets: SecretValues;
}

/** A tool the caller may see: allowed by every policy layer and not withheld by its pin. */
export interface AvailableTool {
  tool: Tool;
  hash: string;
  readOnly: boolean;
}

export interface CallRequest {
  name: string;
  arguments?: unknown;
  approval_request_id?: string;
}

export interface CallContext {
  owner: string;
  signal?: AbortSignal;
  /** Broker API: capacity refusals are HTTP 429/503. Responses layer: http_error items. */
  capacity: 'throw' | 'item';
}

export type PreparedCall =
  | { kind: 'refused'; item: McpCallItem }
  | { kind: 'approval'; item: McpApprovalRequestItem; record: ApprovalRecord }
  | { kind: 'run'; args: ParsedArguments; approval_request_id: string | null };

export type CallResult =
  | { kind: 'call'; item: McpCallItem }
  | { kind: 'approval'; item: McpApprovalRequestItem; record: ApprovalRecord };

/** Broker core: resolves MCP tool params, lists (cached, filtered) and calls tools. */
export class Broker {
  constructor(readonly d: BrokerDeps) {}

  /**
   * `caller` defaults to the request's bound caller (the Responses layer); with none bound
   * resolution fails closed.
   */
  async resolve(param: McpToolParam, at: string, caller: CallerKey = currentCaller()): Promise<ResolvedServer> {
    const server = await resolveServer(param, at, this.d.registry, this.d.settings, caller);
    this.d.secrets.addRecent(server.secrets);
    return server;
  }

  async listTools(
    server: ResolvedServer,
    o: { signal?: AbortSignal; capacity?: 'throw' | 'item' } = {},
  ): Promise<{ item: McpListToolsItem; cache: 'hit' | 'miss'; tools: AvailableTool[] }> {
    const started = performance.now();
    let got;
    try {
      got = await this.d.catalog.get(server, { signal: o.signal });
    } catch (err) {
      this.observe(server, 'tools/list', started, err);
      throw this.listingFailed(server, err, o.capacity ?? 'throw');
    }
    if (got.cache === 'miss') this.observe(server, 'tools/list', started);
    this.d.metrics.cacheLookups.inc({ server_label: metricLabel(server), result: got.cache });
    const tools = this.available(server, got.listing.tools);
    return { item: listToolsItem(server.server_label, tools.map((t) => t.tool)), cache: got.cache, tools };
  }

  /** Admin refresh: a fresh listing; the current definitions become the pins. */
  async refresh(server: ResolvedServer): Promise<McpListToolsItem> {
    const listing = await this.d.catalog.refresh(server).catch((err) => {
      throw this.listingFailed(server, err, 'throw');
    });
    return listToolsItem(server.server_label, this.available(server, listing.tools).map((t) => t.tool));
  }

  available(server: ResolvedServer, tools: readonly CatalogTool[]): AvailableTool[] {
    const out: AvailableTool[] = [];
    for (const t of tools) {
      const p = { name: t.tool.name, readOnly: t.readOnly };
      if (t.changed || t.unsupported || !effectiveAllowed(p, server.layers)) continue;
      out.push({ tool: t.tool, hash: t.hash, readOnly: t.readOnly });
    }
    return out;
  }

  /** SPEC §3: checked against the broker's own listing; approval or execution. */
  async call(server: ResolvedServer, req: CallRequest, ctx: CallContext): Promise<CallResult> {
    const p = await this.prepareCall(server, req, ctx);
    if (p.kind === 'refused') return { kind: 'call', item: p.item };
    if (p.kind === 'approval') return p;
    return { kind: 'call', item: await this.execute(server, req.name, p.args, p.approval_request_id, ctx) };
  }

  /**
   * Everything before tools/call: the broker's own listing, policy and pins, then either a
   * new approval request, a claimed approval (its stored arguments), or arguments to run.
   */
  async prepareCall(at: ResolvedServer, req: CallRequest, ctx: CallContext): Promise<PreparedCall> {
    const args = req.approval_request_id && req.arguments === undefined ? undefined : parseArguments(req.arguments);
    const server = await this.current(at);
    if (!server) return { kind: 'refused', item: callItem({ server_label: at.server_label, name: req.name, arguments: args?.text ?? '{}', approval_request_id: req.approval_request_id }, keyGone()) };
    const { listing } = await this.d.catalog.get(server, { signal: ctx.signal }).catch((err) => {
      throw this.listingFailed(server, err, ctx.capacity);
    });
    const fields = { server_label: server.server_label, name: req.name, arguments: args?.text ?? '{}' };
    const found = listing.tools.find((t) => t.tool.name === req.name);
    const refused = this.refusal(server, found);
    if (refused) return { kind: 'refused', item: callItem({ ...fields, approval_request_id: req.approval_request_id }, refused) };
    const tool = found!;

    if (req.approval_request_id) {
      const record = await this.d.approvals.claim(req.approval_request_id, {
        owner: ctx.owner,
        server_key: server.serverKey,
        server_url: server.url.href,
        name: req.name,
        tool_sha256: tool.hash,
        arguments_sha256: args?.sha256,
      });
      return { kind: 'run', args: parseArguments(record.arguments), approval_request_id: record.id };
    }
    const a = args!;
    if (effectiveNeedsApproval({ name: req.name, readOnly: tool.readOnly }, server.layers)) {
      const record = await this.requestApproval(server, req.name, a, tool.hash, ctx.owner);
      return { kind: 'approval', item: approvalRequestItem(record.id, fields), record };
    }
    return { kind: 'run', args: a, approval_request_id: null };
  }

  /**
   * The server as the caller's key sees it now: a named key deleted (or no longer granted
   * this server) since the request began → undefined; a changed grant → its layer now.
   */
  private async current(server: ResolvedServer): Promise<ResolvedServer | undefined> {
    if (!server.caller.current) return server;
    const key = await server.caller.current();
    if (!key) return undefined;
    if (!server.record) return key.allowInline ? server : undefined;
    const grant = grantFor(key.grants, server.server_label);
    if (grant === undefined) return undefined;
    return { ...server, caller: key, layers: registeredLayers(server.layers[0]!, grant, server.layers[server.layers.length - 1]!) };
  }

  /**
   * What to scrub from a server's answers: its credential values and, with upstream OAuth, the
   * tokens sent to it (the one in use, those a renewal replaced). From its failures also every
   * token the broker holds (each server's current and previous ones), whatever session failed.
   */
  private secretsOf(server: ResolvedServer, failure = false): string[] {
    if (!server.record?.oauth) return server.secrets;
    return mergeSecrets(this.d.upstreams.addedSecrets(server), server.secrets, failure ? this.d.secrets.all() : []);
  }

  /** Why a named tool may not be called, as an mcp_protocol_error outcome; nothing is sent. */
  refusal(server: ResolvedServer, found: CatalogTool | undefined): CallOutcome | undefined {
    if (!found) return protocolError(-32602, `Tool not found on MCP server '${server.server_label}'.`);
    if (found.changed) return protocolError(-32602, 'tool definition changed');
    if (found.unsupported) return protocolError(-32602, `Tool '${found.tool.name}' cannot be called through this broker: it ${found.unsupported}.`);
    if (!effectiveAllowed({ name: found.tool.name, readOnly: found.readOnly }, server.layers)) {
      return protocolError(-32602, `Tool '${found.tool.name}' is not allowed on MCP server '${server.server_label}'.`);
    }
    return undefined;
  }

  /** Sends tools/call once; every failure becomes an item (capacity refusals maybe an error). */
  async execute(
    server: ResolvedServer,
    name: string,
    args: ParsedArguments,
    approval_request_id: string | null,
    ctx: Pick<CallContext, 'signal' | 'capacity'>,
  ): Promise<McpCallItem> {
    const fields = { server_label: server.server_label, name, arguments: args.text, approval_request_id };
    // A run that outlived its request (background, an approver's wait): is its key still granted this server?
    if (!(await this.current(server))) return callItem(fields, keyGone());
    const started = performance.now();
    try {
      const result = await this.d.upstreams.callTool(server, name, args.value, ctx.signal);
      this.observe(server, 'tools/call', started);
      // Every output is scrubbed like error texts: a server may echo the credentials it got (its OAuth token too).
      const secrets = this.secretsOf(server);
      const outcome = outcomeOfResult(result);
      if (outcome.output !== null) outcome.output = scrub(outcome.output, secrets);
      if (outcome.error?.type === 'mcp_tool_execution_error') outcome.error.content = scrubJson(outcome.error.content, secrets);
      return callItem(fields, outcome);
    } catch (err) {
      this.observe(server, 'tools/call', started, err);
      if (err instanceof BrokerCapacityError && ctx.capacity === 'throw') throw capacityError(err);
      const secrets = this.secretsOf(server, true);
      return callItem(fields, this.outcomeOfFailure({ ...server, secrets }, classifyUpstreamError(err, secrets)));
    }
  }

  outcomeOfFailure(server: Pick<ResolvedServer, 'secrets'>, f: UpstreamFailure): CallOutcome {
    const message = clip(scrub(f.message, server.secrets));
    return f.kind === 'protocol'
      ? { output: null, error: { type: 'mcp_protocol_error', code: f.code, message } }
      : { output: null, error: { type: 'http_error', code: f.status, message } };
  }

  async requestApproval(server: ResolvedServer, name: string, args: ParsedArguments, toolHash: string, owner: string): Promise<ApprovalRecord> {
    const record = await this.d.approvals.create({
      owner,
      mode: server.approval.mode,
      server_label: server.server_label,
      server_key: server.serverKey,
      server_url: server.url.href,
      server_origin: server.origin,
      name,
      arguments: args.text,
      arguments_sha256: args.sha256,
      tool_sha256: toolHash,
    }, { maxPending: server.maxPendingApprovals });
    this.d.webhooks.send({
      type: 'approval.requested',
      endpoint: server.record ? { kind: 'record', label: server.record.server_label } : { kind: 'default' },
      deadline: record.expires_at * 1000,
      approvalId: record.id,
      data: {
        id: record.id,
        server_label: record.server_label,
        server_origin: record.server_origin,
        name: record.name,
        arguments: record.arguments,
        arguments_sha256: record.arguments_sha256,
        expires_at: record.expires_at,
        decision_url: `${this.d.publicUrl}/v1/mcp/approvals/${record.id}/decision`,
      },
    });
    return record;
  }

  /** Catalog callback: a pinned tool's definition changed upstream. */
  definitionChanged(e: DefinitionChanged): void {
    this.d.logger.warn({ server_label: e.server_label, tool: e.name }, 'tool definition changed; withheld until an admin refresh');
    this.d.webhooks.send({
      type: 'tool.definition_changed',
      endpoint: { kind: 'record', label: e.server_label },
      deadline: Date.now() + this.d.approvalTtlS * 1000,
      data: { ...e },
    });
  }

  private listingFailed(server: ResolvedServer, err: unknown, capacity: 'throw' | 'item'): ApiError {
    if (err instanceof BrokerCapacityError && capacity === 'throw') return capacityError(err);
    if (err instanceof ExternalConnectorError) return err;
    // Scrubbed before anything is clipped: a server may echo its OAuth token into a session set-up or listing error.
    const secrets = this.secretsOf(server, true);
    const f = classifyUpstreamError(err, secrets);
    // A caller's own URL refused at connect time is the caller's bad input (SPEC §5);
    // a registered server refused there fails like an unreachable one (424).
    if (f.kind === 'http' && f.code === 'egress_denied' && !server.record) {
      return new InvalidRequestError('egress_denied', 'server_url is not allowed: it resolves to an address the egress policy refuses.', {
        param: `${server.at}.server_url`,
      });
    }
    const detail = clip(scrub(f.kind === 'protocol' ? `MCP error ${f.code}: ${f.message}` : f.message, secrets));
    return new ExternalConnectorError(
      f.kind === 'protocol' ? 'http_error' : f.code,
      `Error retrieving tool list from MCP server: '${server.server_label}'. ${detail}`,
      { param: 'tools' },
    );
  }

  private observe(server: ResolvedServer, method: string, started: number, err?: unknown) {
    const ms = performance.now() - started;
    const outcome = err === undefined ? 'ok' : classifyUpstreamError(err).kind === 'protocol' ? 'protocol_error' : 'transport_error';
    this.d.metrics.upstreamDuration.observe({ server_label: metricLabel(server), method, outcome }, ms / 1000);
    if (this.d.logger.isLevelEnabled('debug')) {
      const failure = err === undefined ? undefined : classifyUpstreamError(err, this.secretsOf(server, true)).message;
      this.d.logger.debug({ server_label: server.server_label, server_origin: server.origin, method, outcome, ms: Math.round(ms), failure }, 'mcp upstream request');
    }
    if (err !== undefined) this.d.metrics.upstreamErrors.inc({ server_label: metricLabel(server), method, kind: outcome });
  }
}

/** Upstream messages can be huge; callers and models get the first 2000 characters. */
const clip = (m: string) => (m.length > 2000 ? `${m.slice(0, 2000)}… (${m.length - 2000} more characters)` : m);

function capacityError(err: BrokerCapacityError): ApiError {
  return err.status === 429
    ? new RateLimitError('upstream_busy', err.message, { headers: retryAfter(err.retryAfterS) })
    : new UpstreamError(503, 'circuit_open', err.message, { headers: retryAfter(err.retryAfterS) });
}

/** The API key that started this work was deleted or lost its grant: nothing is sent. */
function keyGone(): CallOutcome {
  return { output: null, error: { type: 'http_error', code: 403, message: 'Not run: the API key that started this work was deleted or is no longer granted this server.' } };
}
