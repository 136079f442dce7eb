import type { Logger } from 'pino';
import { RateLimitError, retryAfter } from '../errors/index.js';
import type { ClusterBus } from '../store/bus.js';
import { newId } from '../util/ids.js';
import { TERMINAL } from './responseObject.js';
import { RunCancelled, type ResponseRun } from './run.js';
import { serializeEvent, type EventTarget, type Sink } from './sink.js';
import type { ResponseStore, StoredResponse } from './store.js';

const TERMINAL_EVENTS = new Set(['response.completed', 'response.failed', 'response.incomplete', 'response.cancelled']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * A background run's events: numbered, appended to the response store in order (so any
 * instance can resume the stream), and sent live to the connection that created the run
 * while it stays. Store writes are serialized on one chain, which also carries the
 * progress snapshots, so nothing overtakes the run's end.
 */
export class RecordingSink implements Sink {
  readonly streaming = true;
  private seq = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private live: EventTarget | undefined;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly store: ResponseStore,
    private readonly id: string,
    private readonly logger: Logger,
    private readonly onItemDone: () => void,
  ) {}

  attach(target: EventTarget) {
    this.live = target;
  }

  emit(type: string, payload: Record<string, unknown>) {
    const json = serializeEvent(type, payload, this.seq++);
    this.enqueue(() => this.store.appendEvent(this.id, json));
    this.live?.send(type, json);
    if (type === 'response.in_progress' || type === 'response.output_item.done' || type === 'response.output_item.added') this.onItemDone();
  }

  /** Runs a store write after every earlier one. */
  enqueue(write: () => Promise<unknown>): Promise<void> {
    const next = this.chain.then(write).then(
      () => this.wake(),
      (e: Error) => this.logger.warn({ response: this.id, err: e.message }, 'background response not recorded'),
    );
    this.chain = next;
    return next;
  }

  flushed(): Promise<unknown> {
    return this.chain;
  }

  /** Resolves at the next recorded write (or after `ms`). */
  nextWrite(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      t.unref();
      this.waiters.add(done);
    });
  }

  private wake() {
    for (const w of [...this.waiters]) w();
  }

  close() {
    this.live?.close();
    this.live = undefined;
  }
}

interface LocalRun {
  controller: AbortController;
  sink: RecordingSink;
  done: Promise<void>;
}

export interface BackgroundOptions {
  store: ResponseStore;
  bus: ClusterBus;
  logger: Logger;
  /** How long a run's lease lasts without renewal; another instance calls it lost after that. */
  leaseMs: number;
  /** Background runs this instance runs at once; more are refused (429). */
  maxRunning: number;
  /** Of those, what one owner (API key) may run at once; more are refused (429). */
  maxPerOwner?: number;
}

/**
 * Background mode (SPEC §6, §15): runs that outlive their request. Each holds a lease in
 * the response store, renewed while it runs; a cancel reaches it locally, by the bus, or
 * by the flag it checks at each renewal. A run whose lease lapsed is ended `failed`
 * (`instance_lost`) by whichever instance notices first.
 */
export class BackgroundRuns {
  readonly instance = newId('inst');
  private readonly local = new Map<string, LocalRun>();
  /** Starts between the capacity check and their registration. */
  private starting = 0;
  /** Runs (starting or running) per owner; an owner leaves the map with its last run. */
  private readonly perOwner = new Map<string, number>();

  constructor(private readonly o: BackgroundOptions) {
    o.bus.subscribe((e) => {
      if (e.kind === 'response_cancel') this.local.get(e.id)?.controller.abort(new RunCancelled());
    });
  }

  get size() {
    return this.local.size;
  }

  /** Records the run as queued, then runs it; resolves once GET on any instance can see it. */
  async start(id: string, build: (sink: RecordingSink, signal: AbortSignal) => ResponseRun, live?: EventTarget, owner = ''): Promise<Record<string, unknown>> {
    if (this.local.size + this.starting >= this.o.maxRunning) {
      throw new RateLimitError('too_many_background_responses', `This instance is already running ${this.o.maxRunning} background responses; try again shortly.`, { headers: retryAfter(1) });
    }
    const mine = this.perOwner.get(owner) ?? 0;
    const perOwner = this.o.maxPerOwner ?? this.o.maxRunning;
    if (mine >= perOwner) {
      throw new RateLimitError('too_many_background_responses', `This API key is already running ${perOwner} background responses; try again once one ends.`, { headers: retryAfter(1) });
    }
    this.perOwner.set(owner, mine + 1);
    const release = () => {
      const n = (this.perOwner.get(owner) ?? 1) - 1;
      if (n > 0) this.perOwner.set(owner, n);
      else this.perOwner.delete(owner);
    };
    this.starting++;
    try {
      const queued = await this.launch(id, build, live);
      const running = this.local.get(id);
      if (running) void running.done.finally(release);
      else release();
      return queued;
    } catch (e) {
      release();
      throw e;
    } finally {
      this.starting--;
    }
  }

  private async launch(id: string, build: (sink: RecordingSink, signal: AbortSignal) => ResponseRun, live?: EventTarget): Promise<Record<string, unknown>> {
    const { store, logger } = this.o;
    const controller = new AbortController();
    let ended = false;
    let saving = false;
    let run: ResponseRun | undefined;
    const sink = new RecordingSink(store, id, logger, () => {
      // Progress for GET: at most one snapshot queued at a time.
      if (saving || ended || !run) return;
      saving = true;
      void sink.enqueue(async () => {
        saving = false;
        if (!ended) await store.put(run!.snapshot(run!.current()));
      });
    });
    if (live) sink.attach(live);
    run = build(sink, controller.signal);
    run.persist = async (stored, final) => {
      if (!final) return true;
      ended = true;
      let claimed = false;
      await sink.enqueue(async () => {
        claimed = await store.claimEnd(id);
        if (claimed) await store.put(stored);
      });
      return claimed;
    };
    await store.setLease(id, this.instance, this.o.leaseMs);
    const queued = run.current();
    await store.put(run.snapshot(queued));

    const beat = setInterval(() => {
      void (async () => {
        await store.setLease(id, this.instance, this.o.leaseMs);
        if (await store.cancelRequested(id)) controller.abort(new RunCancelled());
      })().catch((e: Error) => logger.warn({ response: id, err: e.message }, 'background lease not renewed'));
    }, Math.max(50, Math.floor(this.o.leaseMs / 3)));
    beat.unref();

    const done = (async () => {
      try {
        await run.run();
      } catch (err) {
        logger.warn({ response: id, err: (err as Error).message }, 'background response ended by an error');
        const error = controller.signal.aborted
          ? { code: 'instance_shutdown', message: 'The instance running this response shut down before it finished.' }
          : { code: 'server_error', message: 'The response failed.' };
        await this.end(id, 'failed', error).catch(() => undefined);
      } finally {
        clearInterval(beat);
        await sink.flushed();
        await store.clearLease(id).catch(() => undefined);
        this.local.delete(id);
        sink.close();
      }
    })();
    this.local.set(id, { controller, sink, done });
    return queued;
  }

  /** POST …/cancel: aborts the run wherever it runs; returns the stored response once it ended. */
  async cancel(stored: StoredResponse): Promise<Record<string, unknown>> {
    const id = stored.id;
    if (TERMINAL.has(String(stored.response.status))) return stored.response;
    const here = this.local.get(id);
    if (here) {
      here.controller.abort(new RunCancelled());
      await here.done;
      return (await this.o.store.get(id))?.response ?? stored.response;
    }
    await this.o.store.requestCancel(id);
    this.o.bus.publish({ kind: 'response_cancel', id });
    for (const end = Date.now() + 5000; Date.now() < end; ) {
      const now = await this.o.store.get(id);
      if (!now || TERMINAL.has(String(now.response.status))) return now?.response ?? stored.response;
      // Nobody runs it any more: the cancel itself writes the end.
      if (!(await this.o.store.leaseHolder(id))) return (await this.end(id, 'cancelled')) ?? stored.response;
      await sleep(50);
    }
    return (await this.o.store.get(id))?.response ?? stored.response;
  }

  /** A stored background response whose instance died ends `failed` (`instance_lost`). */
  async settle(stored: StoredResponse): Promise<StoredResponse> {
    if (stored.response.background !== true || TERMINAL.has(String(stored.response.status)) || this.local.has(stored.id)) return stored;
    if (await this.o.store.leaseHolder(stored.id)) return stored;
    await this.end(stored.id, 'failed', { code: 'instance_lost', message: 'The instance running this response stopped before it finished.' });
    return (await this.o.store.get(stored.id)) ?? stored;
  }

  /** Writes an end for a run that cannot write its own; undefined when someone else already did. */
  private async end(id: string, status: 'failed' | 'cancelled', error?: { code: string; message: string }): Promise<Record<string, unknown> | undefined> {
    const { store } = this.o;
    if (!(await store.claimEnd(id))) return undefined;
    const stored = await store.get(id);
    if (!stored) return undefined;
    const output = (stored.response.output as Array<Record<string, unknown>>).map((i) => (i.status === 'in_progress' ? { ...i, status: 'incomplete' } : i));
    const response = { ...stored.response, status, output, error: error ?? null, completed_at: null };
    await store.put({ ...stored, response });
    // The next sequence number: every event appended so far, kept or dropped by the log's bound.
    const seq = await store.eventCount(id);
    await store.appendEvent(id, serializeEvent(status === 'failed' ? 'response.failed' : 'response.cancelled', { response }, seq));
    return response;
  }

  /**
   * GET …?stream=true&starting_after=N: the recorded events after N, then the live ones as
   * they are recorded, until the run's last event or the client leaves. Events the log's
   * byte bound dropped are skipped: the stream goes on from the oldest kept one, and its
   * `sequence_number` shows the gap.
   */
  async replay(id: string, after: number, target: EventTarget, signal: AbortSignal, owner: (s: StoredResponse | undefined) => boolean): Promise<void> {
    let last = after;
    let idle = 0;
    while (!signal.aborted) {
      const events = await this.o.store.events(id, last);
      for (const json of events) {
        const e = JSON.parse(json) as { type: string; sequence_number?: unknown };
        last = typeof e.sequence_number === 'number' ? Math.max(last + 1, e.sequence_number) : last + 1;
        target.send(e.type, json);
        if (TERMINAL_EVENTS.has(e.type)) return;
      }
      if (events.length) {
        idle = 0;
        continue;
      }
      // Quiet: every second or so, look whether the run is still alive somewhere.
      if (++idle % 10 === 0) {
        const stored = await this.o.store.get(id);
        if (!owner(stored)) return;
        const now = await this.settle(stored!);
        // Ended, and its last event is not coming (evicted, or never recorded): stop after what is there.
        if (TERMINAL.has(String(now.response.status)) && idle >= 20) {
          for (const json of await this.o.store.events(id, last)) target.send((JSON.parse(json) as { type: string }).type, json);
          return;
        }
      }
      const here = this.local.get(id);
      if (here) await here.sink.nextWrite(100);
      else await sleep(100);
    }
  }

  /** Waits for local runs (tests, shutdown). */
  async drain(): Promise<void> {
    await Promise.all([...this.local.values()].map((r) => r.done));
  }

  /** Aborts every local run (shutdown). */
  abortAll() {
    for (const r of this.local.values()) r.controller.abort(new Error('shutting down'));
  }
}
