import type { Logger } from 'pino';
import type { RedisConnection } from '../store/redis.js';

/** Which webhook an event goes to: the operator's default or a registered server's own. */
export type EndpointRef = { kind: 'default' } | { kind: 'record'; label: string };

export interface WebhookJob {
  /** `webhook-id`: the same on every attempt. */
  id: string;
  type: 'approval.requested' | 'tool.definition_changed';
  body: string;
  endpoint: EndpointRef;
  deadline: number;
  attempt: number;
  approvalId?: string;
  /** The W3C trace context of the request that queued it (tracing on), so every attempt continues that trace. */
  traceparent?: string;
}

/** Runs one attempt; answers the delay before the next one, or undefined when done. */
export type Worker = (job: WebhookJob) => Promise<number | undefined>;

/** Where pending deliveries wait. Embedded: timers; shared: Redis, so retries outlive an instance. */
export interface DeliveryQueue {
  push(job: WebhookJob, atMs: number): Promise<void>;
  start(worker: Worker): void;
  close(): Promise<void>;
}

/** Bounded in-memory queue: timers, at most `concurrency` deliveries at once. */
export class MemoryDeliveryQueue implements DeliveryQueue {
  private worker: Worker | undefined;
  private queued = 0;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly o: { maxQueued?: number; concurrency?: number } = {}) {}

  async push(job: WebhookJob, atMs: number) {
    if (this.closed) throw new Error('queue closed');
    if (this.queued >= (this.o.maxQueued ?? 10_000)) throw new Error('webhook queue full');
    this.queued++;
    this.schedule(job, atMs - Date.now());
  }

  start(worker: Worker) {
    this.worker = worker;
  }

  async close() {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private schedule(job: WebhookJob, delay: number) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      void this.run(job);
    }, Math.max(0, delay));
    t.unref();
    this.timers.add(t);
  }

  private async run(job: WebhookJob) {
    if (this.closed || !this.worker) return;
    if (this.active >= (this.o.concurrency ?? 16)) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    let retry: number | undefined;
    try {
      retry = await this.worker(job);
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
    if (retry === undefined || this.closed) this.queued--;
    else this.schedule({ ...job, attempt: job.attempt + 1 }, retry);
  }
}

// Claim due jobs under a lease: a job whose instance dies is due again when the lease ends.
// KEYS: due zset, jobs hash. ARGV: now, lease end, max.
const CLAIM = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[2], id)
  local job = redis.call('HGET', KEYS[2], id)
  if job then table.insert(out, job) else redis.call('ZREM', KEYS[1], id) end
end
return out`;

/** Jobs in Redis: a due-time sorted set and a hash. Each job is claimed by one instance at a time. */
export class RedisDeliveryQueue implements DeliveryQueue {
  private worker: Worker | undefined;
  private timer: NodeJS.Timeout | undefined;
  private active = 0;
  private polling = false;
  private readonly due: string;
  private readonly jobs: string;

  constructor(
    private readonly conn: RedisConnection,
    private readonly logger: Logger,
    private readonly o: { pollMs?: number; leaseMs?: number; concurrency?: number } = {},
  ) {
    this.due = conn.key('webhooks', 'due');
    this.jobs = conn.key('webhooks', 'jobs');
  }

  async push(job: WebhookJob, atMs: number) {
    await this.conn.run((r) => r.multi().hset(this.jobs, job.id, JSON.stringify(job)).zadd(this.due, atMs, job.id).exec());
    void this.poll();
  }

  start(worker: Worker) {
    this.worker = worker;
    this.timer = setInterval(() => void this.poll(), this.o.pollMs ?? 200);
    this.timer.unref();
  }

  async close() {
    if (this.timer) clearInterval(this.timer);
    this.worker = undefined;
  }

  private async poll() {
    const room = (this.o.concurrency ?? 16) - this.active;
    if (!this.worker || this.polling || room <= 0 || !this.conn.healthy) return;
    this.polling = true;
    let claimed: string[] = [];
    try {
      const now = Date.now();
      claimed = (await this.conn.run((r) => r.eval(CLAIM, 2, this.due, this.jobs, now, now + (this.o.leaseMs ?? 30_000), room))) as string[];
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'webhook queue poll failed');
    } finally {
      this.polling = false;
    }
    for (const raw of claimed) void this.run(JSON.parse(raw) as WebhookJob);
  }

  private async run(job: WebhookJob) {
    const worker = this.worker;
    if (!worker) return;
    this.active++;
    try {
      const retry = await worker(job);
      if (retry === undefined) {
        await this.conn.run((r) => r.multi().zrem(this.due, job.id).hdel(this.jobs, job.id).exec());
      } else {
        const next = { ...job, attempt: job.attempt + 1 };
        await this.conn.run((r) => r.multi().hset(this.jobs, job.id, JSON.stringify(next)).zadd(this.due, Date.now() + retry, job.id).exec());
      }
    } catch (e) {
      // Left claimed: the lease ends and an instance tries again.
      this.logger.warn({ webhook_id: job.id, err: (e as Error).message }, 'webhook job bookkeeping failed');
    } finally {
      this.active--;
    }
  }
}
