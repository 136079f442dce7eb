import { Webhook } from 'standardwebhooks';
import { fetch as undiciFetch, type Agent } from 'undici';
import type { Logger } from 'pino';
import { z } from 'zod';
import { newId } from '../util/ids.js';
import type { DeliveryQueue, WebhookJob, EndpointRef } from './queue.js';
import { activeTraceparent, webhookSpan } from '../obs/tracing.js';

export interface WebhookEndpoint {
  url: string;
  /** `whsec_…` (Standard Webhooks). */
  secret: string;
}

export interface WebhookEvent {
  type: WebhookJob['type'];
  data: Record<string, unknown>;
  /** Which webhook: resolved when each attempt is made, so no secret waits in a queue. */
  endpoint: EndpointRef;
  /** Epoch ms after which delivery stops (the approval's expiry). */
  deadline: number;
  /** An approver may answer the POST itself with 200 {approve, reason?}: it decides this approval. */
  approvalId?: string;
}

export type Answer = { approve: boolean; reason?: string | null };
const AnswerSchema = z.object({ approve: z.boolean(), reason: z.string().max(4096).nullable().optional() });

export interface DispatcherOptions {
  agent: Agent;
  logger: Logger;
  queue: DeliveryQueue;
  resolve: (ref: EndpointRef) => Promise<WebhookEndpoint | undefined>;
  onAnswer: (approvalId: string, answer: Answer) => void;
  timeoutMs?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

/**
 * Signed webhook delivery off the request path (security.md C.17): `webhook-id` stable across
 * retries, a fresh timestamp per attempt; network errors, 429 and 5xx retried with backoff
 * and jitter until the deadline; 3xx and other 4xx fail; 410 disables the endpoint.
 */
export class WebhookDispatcher {
  private readonly disabled = new Set<string>();
  /** Delivery outcomes, for metrics. */
  onOutcome?: (outcome: 'delivered' | 'failed' | 'retry' | 'dropped') => void;

  constructor(private readonly o: DispatcherOptions) {
    o.queue.start((job) => this.attempt(job));
  }

  send(ev: WebhookEvent): void {
    const job: WebhookJob = {
      id: newId('msg'),
      type: ev.type,
      body: JSON.stringify({ type: ev.type, timestamp: new Date().toISOString(), data: ev.data }),
      endpoint: ev.endpoint,
      deadline: ev.deadline,
      attempt: 0,
      approvalId: ev.approvalId,
      traceparent: activeTraceparent(),
    };
    this.o.queue.push(job, Date.now()).catch((e: Error) => {
      this.o.logger.warn({ event: ev.type, err: e.message }, 'webhook event not queued');
      this.onOutcome?.('dropped');
    });
  }

  /** An admin change re-enables endpoints that answered 410. */
  enableAll() {
    this.disabled.clear();
  }

  async close() {
    await this.o.queue.close();
  }

  /** One attempt. Returns when to try again (ms from now), or undefined when done either way. */
  private async attempt(job: WebhookJob): Promise<number | undefined> {
    const retry = await webhookSpan(job, () => this.deliverOnce(job));
    if (retry === undefined) return undefined;
    if (Date.now() + retry >= job.deadline) {
      this.o.logger.warn({ event: job.type, webhook_id: job.id }, 'webhook delivery gave up at the deadline');
      this.onOutcome?.('failed');
      return undefined;
    }
    this.onOutcome?.('retry');
    return retry;
  }

  private async deliverOnce(job: WebhookJob): Promise<number | undefined> {
    const endpoint = await this.o.resolve(job.endpoint);
    const log = this.o.logger.child({ event: job.type, webhook_id: job.id, attempt: job.attempt + 1, endpoint: endpoint ? safeOrigin(endpoint.url) : null });
    if (!endpoint || this.disabled.has(endpoint.url)) return undefined;
    let signer: Webhook;
    try {
      signer = new Webhook(endpoint.secret);
    } catch {
      log.error('webhook secret is not a valid whsec_ secret; event not sent');
      this.onOutcome?.('failed');
      return undefined;
    }
    const now = new Date();
    const headers = {
      'content-type': 'application/json',
      'webhook-id': job.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signer.sign(job.id, now, job.body),
      'user-agent': 'mcp-broker',
    };
    let res;
    try {
      res = await undiciFetch(endpoint.url, {
        method: 'POST',
        headers,
        body: job.body,
        redirect: 'manual',
        dispatcher: this.o.agent,
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 10_000),
      });
    } catch (err) {
      const code = (err as { cause?: { code?: string } }).cause?.code;
      if (code === 'EGRESS_DENIED') {
        log.error('webhook endpoint refused by the egress policy');
        this.onOutcome?.('failed');
        return undefined;
      }
      log.warn({ err_code: code ?? (err as Error).name }, 'webhook delivery failed; will retry');
      return this.backoff(job.attempt);
    }
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) {
      this.onOutcome?.('delivered');
      if (res.status === 200 && job.approvalId) {
        const parsed = AnswerSchema.safeParse(safeJson(text));
        if (parsed.success) this.o.onAnswer(job.approvalId, parsed.data);
      }
      return undefined;
    }
    if (res.status === 410) {
      this.disabled.add(endpoint.url);
      log.warn('webhook endpoint answered 410: disabled until restart or admin change');
      this.onOutcome?.('failed');
      return undefined;
    }
    if (res.status === 429 || res.status >= 500) {
      log.warn({ status: res.status }, 'webhook endpoint failed; will retry');
      const ra = Number(res.headers.get('retry-after'));
      return Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, this.o.maxDelayMs ?? 30_000) : this.backoff(job.attempt);
    }
    log.warn({ status: res.status }, 'webhook endpoint refused the event; not retried');
    this.onOutcome?.('failed');
    return undefined;
  }

  private backoff(n: number): number {
    const base = this.o.baseDelayMs ?? 500;
    const cap = this.o.maxDelayMs ?? 30_000;
    const exp = Math.min(cap, base * 2 ** n);
    return Math.round(exp / 2 + Math.random() * (exp / 2)); // "equal jitter"
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return '(invalid url)';
  }
}
