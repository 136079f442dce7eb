import { Webhook } from 'standardwebhooks';
import { fetch as undiciFetch, type Agent } from 'undici';
import type { Logger } from 'pino';
import { z } from 'zod';
import { newId } from '../util/ids.js';

export interface WebhookEndpoint {
  url: string;
  /** `whsec_…` (Standard Webhooks). */
  secret: string;
}

export interface WebhookEvent {
  type: 'approval.requested' | 'tool.definition_changed';
  data: Record<string, unknown>;
  endpoint: WebhookEndpoint;
  /** Epoch ms after which delivery stops (the approval's expiry). */
  deadline: number;
  /** An approver may answer the POST itself with 200 {approve, reason?}. */
  onAnswer?: (answer: { approve: boolean; reason?: string | null }) => void;
}

const AnswerSchema = z.object({ approve: z.boolean(), reason: z.string().max(4096).nullable().optional() });

export interface DispatcherOptions {
  agent: Agent;
  logger: Logger;
  maxQueued?: number;
  concurrency?: number;
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
  private queued = 0;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Delivery outcomes, for metrics. */
  onOutcome?: (outcome: 'delivered' | 'failed' | 'retry' | 'dropped') => void;

  constructor(private readonly o: DispatcherOptions) {}

  send(ev: WebhookEvent): boolean {
    if (this.closed || this.disabled.has(ev.endpoint.url)) return false;
    if (this.queued >= (this.o.maxQueued ?? 10_000)) {
      this.o.logger.warn({ event: ev.type }, 'webhook queue full; event dropped');
      this.onOutcome?.('dropped');
      return false;
    }
    this.queued++;
    const msgId = newId('msg');
    const body = JSON.stringify({ type: ev.type, timestamp: new Date().toISOString(), data: ev.data });
    void this.attempt(ev, msgId, body, 0);
    return true;
  }

  /** An admin change re-enables an endpoint that answered 410. */
  enable(url: string) {
    this.disabled.delete(url);
  }

  enableAll() {
    this.disabled.clear();
  }

  isDisabled(url: string) {
    return this.disabled.has(url);
  }

  async close() {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private async attempt(ev: WebhookEvent, msgId: string, body: string, n: number): Promise<void> {
    await this.slot();
    let retryInMs: number | undefined;
    try {
      retryInMs = await this.deliverOnce(ev, msgId, body, n);
    } finally {
      this.release();
    }
    if (retryInMs === undefined || this.closed) return this.finish();
    if (Date.now() + retryInMs >= ev.deadline) {
      this.o.logger.warn({ event: ev.type, webhook_id: msgId }, 'webhook delivery gave up at the deadline');
      this.onOutcome?.('failed');
      return this.finish();
    }
    this.onOutcome?.('retry');
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.attempt(ev, msgId, body, n + 1);
    }, retryInMs);
    t.unref();
    this.timers.add(t);
  }

  /** One POST. Returns the delay before a retry, or undefined when done (either way). */
  private async deliverOnce(ev: WebhookEvent, msgId: string, body: string, n: number): Promise<number | undefined> {
    const log = this.o.logger.child({ event: ev.type, webhook_id: msgId, attempt: n + 1, endpoint: safeOrigin(ev.endpoint.url) });
    let signer: Webhook;
    try {
      signer = new Webhook(ev.endpoint.secret);
    } catch {
      log.error('webhook secret is not a valid whsec_ secret; event not sent');
      this.onOutcome?.('failed');
      return undefined;
    }
    const now = new Date();
    const headers = {
      'content-type': 'application/json',
      'webhook-id': msgId,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signer.sign(msgId, now, body),
      'user-agent': 'mcp-broker',
    };
    let res;
    try {
      res = await undiciFetch(ev.endpoint.url, {
        method: 'POST',
        headers,
        body,
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
      return this.backoff(n);
    }
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) {
      this.onOutcome?.('delivered');
      if (res.status === 200 && ev.onAnswer) {
        const answer = safeJson(text);
        const parsed = AnswerSchema.safeParse(answer);
        if (parsed.success) ev.onAnswer(parsed.data);
      }
      return undefined;
    }
    if (res.status === 410) {
      this.disabled.add(ev.endpoint.url);
      log.warn('webhook endpoint answered 410: disabled until restart or admin change');
      this.onOutcome?.('failed');
      return undefined;
    }
    if (res.status === 429 || res.status >= 500) {
      log.warn({ status: res.status }, 'webhook endpoint failed; will retry');
      const ra = Number(res.headers.get('retry-after'));
      return Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, this.o.maxDelayMs ?? 30_000) : this.backoff(n);
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

  private finish() {
    this.queued--;
  }

  private slot(): Promise<void> {
    if (this.active < (this.o.concurrency ?? 16)) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((r) => this.waiting.push(() => (this.active++, r())));
  }

  private release() {
    this.active--;
    this.waiting.shift()?.();
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
