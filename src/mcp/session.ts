import { Client, SdkError, SdkErrorCode, SdkHttpError, SseError, type CallToolResult, type Tool, type Transport, type VersionNegotiationOptions } from '@modelcontextprotocol/client';
import { requestScope } from './fetch.js';
import { UndiciTransport, asSdkError } from './undiciTransport.js';
import { remaining, timedOut, untilSignal } from './callDeadline.js';
import { mirroredOf, paramHeaders, type Mirrored } from './paramHeaders.js';
import { callToolResult } from './callResult.js';
import { BrokerClient, callTool2026, isHeaderMismatch } from './modernCall.js';
import { createTransport, type TransportKind, type TransportTarget } from './transport.js';

export type { TransportKind } from './transport.js';

/** The record's `protocol` field: which MCP era(s) to speak. */
export type ProtocolPref = 'auto' | '2026-07-28' | '2025-11-25';
export type Era = 'modern' | 'legacy';
export const MODERN_REVISION = '2026-07-28';

export interface SessionTarget extends TransportTarget {
  /** Pool key: server identity + credential-set hash. */
  key: string;
  transport: 'auto' | TransportKind;
  protocol: ProtocolPref;
}

/** What worked for a server URL: the transport and the era. */
export interface Remembered {
  transport: TransportKind;
  era: Era;
}

export interface SessionOptions {
  /** `auto` remembers what worked, per server URL, until a PUT or a failure. */
  memo: { get(url: string): Remembered | undefined; set(url: string, m: Remembered): unknown; delete(url: string): unknown };
  onToolsChanged: () => void;
  onError?: (err: Error) => void;
}

export interface RequestOpts {
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ListingBounds {
  maxBytes: number;
  maxTools: number;
  maxPages: number;
}

export interface ToolList {
  tools: Tool[];
  /** Smallest `ttlMs` any page carried (SEP-2549), if any did. */
  ttlMs?: number;
  /** Size of the definitions as JSON. */
  bytes: number;
  /** The era of the connection that listed them (listTools). */
  era?: Era;
}

/** A listing over its bounds (all pages together): it fails whole, nothing is kept. */
export class ListingTooLargeError extends Error {
  constructor(what: string) {
    super(`tool list too large (${what})`);
  }
}

const httpStatusOf = (err: unknown): number | undefined =>
  err instanceof SdkHttpError ? err.status : err instanceof SseError && err.code && err.code >= 100 ? err.code : undefined;

/**
 * The server refused our session as unknown (restart, eviction): the request never ran.
 * 404, or 400/410 on a request that carried a session id (real servers differ).
 */
export function isSessionRefusal(err: unknown, carriedSession: boolean): boolean {
  const s = httpStatusOf(err);
  return carriedSession && (s === 404 || s === 400 || s === 410);
}

/** Nothing reached the server: safe to send again even for tools/call. */
export function isNeverSent(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 6; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ECONNREFUSED' || code === 'EGRESS_DENIED' || code === 'ENOTFOUND' || code === 'UND_ERR_CONNECT_TIMEOUT') return true;
  }
  return false;
}

/** A connection-level failure (the server went away): the session cannot be trusted. */
function isConnectionLost(err: unknown): boolean {
  if (err instanceof SdkError && err.code === SdkErrorCode.ConnectionClosed) return true;
  return err instanceof TypeError && /fetch failed|terminated|other side closed/i.test(err.message);
}

interface Live {
  client: BrokerClient;
  transport: Transport & { sessionId?: string; terminateSession?: () => Promise<void> };
  kind: TransportKind;
  era: Era;
  /**
   * 2026-07-28: the tools of the connection's latest listing that declare valid SEP-2243
   * `x-mcp-header` arguments (from listTools, or a HeaderMismatch's walk).
   */
  mirrored?: Map<string, Mirrored>;
  /** Bumped by the server's tools/list_changed: a listing begun before it does not set `mirrored`. */
  toolsGeneration: number;
  /** The HeaderMismatch walk under way (single flight): calls refused meanwhile join it. */
  learning?: Learning;
}

interface Learning {
  generation: number;
  done: Promise<Map<string, Mirrored>>;
  /** Ends the walk's own request scope (its HTTP requests). */
  ac: AbortController;
  /** Callers waiting for it. */
  waiting: number;
}

/** Bounds for a listing walked outside the catalog (callTool's HeaderMismatch), when none were given. */
const DEFAULT_BOUNDS: ListingBounds = { maxBytes: 4 << 20, maxTools: 10_000, maxPages: 100 };

/**
 * Every page of tools/list through `client.request` (the Client's listing cache untouched),
 * bounded as a whole in size. Each page has `o.timeoutMs`; with `until` (a performance.now()
 * deadline) no page outlives it, and none starts after it.
 */
async function walkListing(client: Client, o: RequestOpts, bounds: ListingBounds, until?: number): Promise<ToolList> {
  const tools: Tool[] = [];
  let cursor: string | undefined;
  let bytes = 2;
  let ttlMs: number | undefined;
  for (let page = 0; page < bounds.maxPages; page++) {
    const timeout = until === undefined ? o.timeoutMs : remaining(until, o.timeoutMs);
    const r = await client.request({ method: 'tools/list', params: cursor ? { cursor } : undefined }, { timeout, signal: o.signal });
    for (const t of r.tools) {
      bytes += JSON.stringify(t).length + 1;
      if (bytes > bounds.maxBytes) throw new ListingTooLargeError(`over ${bounds.maxBytes} bytes`);
      tools.push(t);
      if (tools.length > bounds.maxTools) throw new ListingTooLargeError(`over ${bounds.maxTools} tools`);
    }
    const ttl = (r as { ttlMs?: unknown }).ttlMs;
    if (typeof ttl === 'number' && Number.isFinite(ttl) && ttl >= 0) ttlMs = Math.min(ttlMs ?? Infinity, ttl);
    if (!r.nextCursor || r.nextCursor === cursor) {
      cursor = undefined;
      break;
    }
    cursor = r.nextCursor;
  }
  if (cursor) throw new ListingTooLargeError(`over ${bounds.maxPages} pages`);
  return { tools, ttlMs, bytes };
}

/**
 * The SEP-2243 declarations of the connection's tools, from one walk of its listing however
 * many calls were refused with HeaderMismatch meanwhile (a server that added declarations
 * refuses every call in flight at once). The walk belongs to none of them: it runs in its own
 * request scope (so the caller that started it can leave without ending it), bounded by
 * `timeoutMs` from its start, and is aborted when the last caller waiting for it has left.
 * Each caller waits only as long as its own deadline and signal allow. A listing begun before
 * the server's tools/list_changed does not set `mirrored`, and a later refusal starts a new walk.
 */
async function learnHeaders(live: Live, timeoutMs: number, bounds: ListingBounds, until: number, signal?: AbortSignal): Promise<Map<string, Mirrored>> {
  // A caller that cannot wait starts nothing.
  if (signal?.aborted) throw new CallerLeft(signal.reason);
  if (until - performance.now() <= 0) throw new CallerLeft(timedOut(timeoutMs));
  const generation = live.toolsGeneration;
  let w = live.learning;
  if (w?.generation !== generation) {
    const ac = new AbortController();
    const done = requestScope
      .run(ac.signal, () => walkListing(live.client, { timeoutMs, signal: ac.signal }, bounds, performance.now() + timeoutMs))
      .then((listing) => {
        const learnt = mirroredOf(listing.tools);
        if (live.toolsGeneration === generation) live.mirrored = learnt;
        return learnt;
      });
    const started: Learning = (w = live.learning = { generation, done, ac, waiting: 0 });
    const settle = () => {
      if (live.learning === started) live.learning = undefined;
      ac.abort(SCOPE_ENDED);
    };
    done.then(settle, settle);
  }
  const joined = w;
  joined.waiting++;
  const bound = untilSignal(until, timeoutMs, signal);
  try {
    return await new Promise<Map<string, Mirrored>>((resolve, reject) => {
      const abort = () => reject(new CallerLeft(bound.signal.reason));
      if (bound.signal.aborted) return abort();
      bound.signal.addEventListener('abort', abort, { once: true });
      joined.done.then(resolve, reject);
    });
  } finally {
    bound.clear();
    // Nobody waits for it any more: no socket outlives its callers, and nobody joins a walk being ended.
    if (--joined.waiting === 0 && !joined.ac.signal.aborted) {
      if (live.learning === joined) live.learning = undefined;
      joined.ac.abort(SCOPE_ENDED);
    }
  }
}

/**
 * learnHeaders' caller stopped waiting (its deadline or its signal): told apart from the walk's
 * own failures, which an aborted walk (nobody waiting) reports as a RequestTimeout too.
 */
class CallerLeft {
  constructor(readonly reason: unknown) {}
}

/** Why a request scope's signal fires when the request is over: one AbortError, built once (see scoped()). */
const SCOPE_ENDED = new DOMException('The request scope ended.', 'AbortError');

/**
 * One long-lived MCP connection to one upstream, for one credential set: a legacy session
 * (initialize + Mcp-Session-Id) or a modern 2026-07-28 connection (server/discover,
 * stateless). Connects lazily (single flight); a refused session is re-established once.
 */
export class UpstreamSession {
  private live: Live | undefined;
  private connecting: Promise<Live> | undefined;
  private closed = false;
  transportInUse: TransportKind | undefined;
  protocolInUse: string | undefined;

  constructor(
    readonly target: SessionTarget,
    private readonly opts: SessionOptions,
  ) {}

  /** Every page, bounded as a whole; tools/list is safe to repeat. */
  async listTools(o: RequestOpts, bounds: ListingBounds): Promise<ToolList> {
    return this.withSession(true, o, async (live) => {
      const generation = live.toolsGeneration;
      const listing = await walkListing(live.client, o, bounds);
      // What this connection now knows of SEP-2243 declarations: its calls of those tools go out mirrored.
      if (live.era === 'modern' && live.toolsGeneration === generation) live.mirrored = mirroredOf(listing.tools);
      return { ...listing, era: live.era };
    });
  }

  /**
   * Never re-sent once it may have reached the server (only a refused session or connect, or a
   * HeaderMismatch below). On the broker's own transport the exchange is made there (rpc():
   * why, and what it keeps of the Client's behaviour): a 2025-era session validates the result
   * with the SDK's schema, a 2026-07-28 connection as the Client's funnel does (callTool2026).
   * Other sessions go through the Client.
   *
   * 2026-07-28, SEP-2243: a tool whose inputSchema declares `x-mcp-header` arguments has them
   * mirrored into `Mcp-Param-*` headers (paramHeaders.ts), from the declarations of the
   * connection's own listing (listTools keeps them, until its tools change) — never from the
   * Client's listing cache, which the broker never fills (filled, the Client would check every
   * tool's results against output schemas). A listing the broker holds can predate the
   * connection or the server's change: the server then answers HeaderMismatch, before the tool
   * runs, and the call walks the listing once (the broker's bounds) and is sent once more with
   * what it learned. At most two sends per call on one connection; calls refused while a walk
   * is under way join it (learnHeaders).
   *
   * The call's timeout bounds it whole: a retry on a new connection (its set-up included), the
   * walk, the second send and every round of an `input_required` flow get what is left of it.
   */
  async callTool(name: string, args: Record<string, unknown>, o: RequestOpts, bounds: ListingBounds = DEFAULT_BOUNDS): Promise<CallToolResult> {
    let until: number | undefined;
    const left = (): RequestOpts => (until === undefined ? o : { timeoutMs: remaining(until, o.timeoutMs), signal: o.signal });
    return this.withSession(
      false,
      o,
      async (live) => {
        const at = (until ??= performance.now() + o.timeoutMs);
        const { client, transport, era } = live;
        const params = { name, arguments: args };
        if (transport instanceof UndiciTransport && era === 'legacy') {
          return callToolResult(await transport.rpc('tools/call', params, { timeoutMs: remaining(at, o.timeoutMs), signal: o.signal }));
        }
        const envelope = transport instanceof UndiciTransport ? transport.envelope : undefined;
        const known = live.mirrored?.get(name);
        // The SDK's transport (or no envelope yet): the Client's own call, always with a definition
        // — the declarations' where known — so it mirrors from that and never from (nor into) its
        // listing cache, and leaves a HeaderMismatch to the branch below.
        const send = (m: Mirrored | undefined) =>
          transport instanceof UndiciTransport && envelope
            ? callTool2026(client, transport, envelope, name, args, { timeoutMs: remaining(at, o.timeoutMs), signal: o.signal, until: at, headers: m ? paramHeaders(m.declarations, args) : undefined })
            : this.viaClient(client, params, o, at, m?.tool ?? { name, inputSchema: { type: 'object' } });
        try {
          return await send(known);
        } catch (err) {
          if (!isHeaderMismatch(err)) throw err;
          let learnt: Map<string, Mirrored> | undefined;
          for (let joins = 0; !learnt; joins++) {
            try {
              learnt = await learnHeaders(live, o.timeoutMs, bounds, at, o.signal);
            } catch (walkErr) {
              // Out of time is the call's outcome; the caller gone, or any other failure of the
              // walk, leaves the server's refusal as the answer. A walk joined late can run out of
              // its own time before the call's: the call then walks once more with what it has left.
              const isTimeout = (e: unknown) => e instanceof SdkError && e.code === SdkErrorCode.RequestTimeout;
              if (walkErr instanceof CallerLeft) throw isTimeout(walkErr.reason) ? walkErr.reason : err;
              if (!isTimeout(walkErr)) throw err;
              if (joins > 0) throw walkErr;
            }
          }
          const now = learnt.get(name);
          // Nothing new to mirror: sending again would only be refused again.
          if (JSON.stringify(now?.declarations ?? []) === JSON.stringify(known?.declarations ?? [])) throw err;
          return await send(now);
        }
      },
      left,
    );
  }

  /**
   * Client.callTool (mirroring from `toolDefinition` where given), bounded by the call's
   * deadline as a whole: its `input_required` driver gives every round the full timeout.
   */
  private async viaClient(client: Client, params: { name: string; arguments: Record<string, unknown> }, o: RequestOpts, until: number, toolDefinition?: Tool): Promise<CallToolResult> {
    const bound = untilSignal(until, o.timeoutMs, o.signal);
    try {
      return (await client.callTool(params, { timeout: remaining(until, o.timeoutMs), signal: bound.signal, ...(toolDefinition ? { toolDefinition } : {}) })) as CallToolResult;
    } finally {
      bound.clear();
    }
  }

  /** `retry`: how long a second attempt waits for its connection (default: `o` again). */
  private async withSession<T>(idempotent: boolean, o: RequestOpts, fn: (l: Live) => Promise<T>, retry: () => RequestOpts = () => o): Promise<T> {
    const live = await this.connect(o);
    const carried = live.transport.sessionId !== undefined || live.kind === 'sse';
    try {
      return await this.scoped(o, () => fn(live));
    } catch (err) {
      if (o.signal?.aborted) throw err;
      const refused = isSessionRefusal(err, carried);
      const lost = refused || isConnectionLost(err) || isNeverSent(err);
      // Only a refused session or a lost connection ends it: an error status on one request
      // says nothing of the others sharing it, and closing would abort them.
      if (lost) await this.reset(live);
      const again = refused || isNeverSent(err) || (idempotent && lost);
      if (!again) throw err;
      const next = await this.connect(o, retry());
      return this.scoped(o, () => fn(next));
    }
  }

  /**
   * Runs one request with its own abort signal: every HTTP request it makes is aborted when
   * it ends (answered, timed out, or the caller went away), so no socket outlives it.
   */
  private async scoped<T>(o: RequestOpts, fn: () => Promise<T>): Promise<T> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(o.signal?.reason);
    if (o.signal?.aborted) onAbort();
    o.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await requestScope.run(ac.signal, fn);
    } finally {
      o.signal?.removeEventListener('abort', onAbort);
      // A constant reason: abort() without one builds a DOMException (a stack capture), which
      // was the costliest JS function of a /v1/mcp/call (~50 µs of 1.3 ms broker CPU).
      ac.abort(SCOPE_ENDED);
    }
  }

  /**
   * The live connection. Set-up is single flight, bounded as a whole (initialize or discover,
   * notifications/initialized, any fallback) by the timeout of the request that started it
   * (SPEC §10). Each caller waits at most its own timeout and stops waiting when its signal
   * fires, so a server that stalls the set-up holds no caller (nor its concurrency slot); the
   * set-up goes on for the others within its own bound. `wait` (default `o`) bounds only this
   * caller's wait: what a retried call has left of its own timeout, while the set-up it may start
   * keeps the full bound, for the callers that join it.
   */
  connect(o: RequestOpts = { timeoutMs: 30_000 }, wait: RequestOpts = o): Promise<Live> {
    if (this.closed) return Promise.reject(new Error('session closed'));
    if (this.live) return Promise.resolve(this.live);
    if (o.signal?.aborted) return Promise.reject(asSdkError(o.signal.reason));
    if (!this.connecting) {
      this.connecting = this.open(Date.now() + o.timeoutMs).finally(() => (this.connecting = undefined));
    }
    return waitWithin(this.connecting, wait);
  }

  /** Sets up a connection by `deadline` (ms since the epoch), each attempt within what is left. */
  private async open(deadline: number): Promise<Live> {
    const t = this.target;
    // Remembered per server and URL (`serverKey|url`), so a PUT (dropping `serverKey|`) forgets it.
    const url = `${t.key.slice(0, t.key.lastIndexOf('|'))}|${t.url.href}`;
    const memo = this.opts.memo.get(url);
    const remembered = t.transport === 'auto' || t.protocol === 'auto' ? memo : undefined;
    const first: TransportKind = t.transport === 'auto' ? (memo?.transport ?? 'streamable_http') : t.transport;
    try {
      return await this.openWith(first, remembered?.transport === first ? remembered.era : undefined, deadline);
    } catch (err) {
      if (memo) this.opts.memo.delete(url);
      if (remembered) {
        // What worked before failed: forget it. Unless the server is unreachable (which says
        // nothing of its era or transport), negotiate once more from scratch (no memo now).
        const unreachable = isConnectionLost(err) || isNeverSent(err) || (err instanceof SdkError && err.code === SdkErrorCode.RequestTimeout);
        if (unreachable || this.closed) throw err;
        return this.open(deadline);
      }
      // auto: a server that refuses Streamable HTTP's POST with a 4xx may be legacy SSE.
      const status = httpStatusOf(err);
      const fallback = t.transport === 'auto' && first === 'streamable_http' && t.protocol !== MODERN_REVISION && status !== undefined && status >= 400 && status < 500 && status !== 401 && status !== 403;
      if (!fallback) throw err;
      // If legacy SSE fails too, the Streamable HTTP answer is the one worth reporting.
      return this.openWith('sse', 'legacy', deadline).catch(() => {
        throw err;
      });
    }
  }

  private negotiation(kind: TransportKind, remembered: Era | undefined): VersionNegotiationOptions {
    const p = this.target.protocol;
    if (kind === 'sse' || p === '2025-11-25') return { mode: 'legacy' };
    if (p === MODERN_REVISION) return { mode: { pin: MODERN_REVISION } };
    if (remembered === 'legacy') return { mode: 'legacy' };
    if (remembered === 'modern') return { mode: { pin: MODERN_REVISION } };
    return { mode: 'auto' };
  }

  private async openWith(kind: TransportKind, remembered: Era | undefined, deadline: number): Promise<Live> {
    if (kind === 'sse' && this.target.protocol === MODERN_REVISION) {
      throw new Error('the 2026-07-28 revision does not run over legacy HTTP+SSE');
    }
    const timeoutMs = Math.max(1, deadline - Date.now());
    const transport = createTransport(kind, this.target);
    // No client capabilities: the broker offers remote servers no sampling, roots or elicitation.
    const client = new BrokerClient(
      { name: 'mcp-broker', version: '0.2.0' },
      {
        capabilities: {},
        versionNegotiation: { ...this.negotiation(kind, remembered), probe: { timeoutMs } },
        listChanged: {
          tools: {
            autoRefresh: false,
            debounceMs: 0,
            onChanged: () => {
              // Learned header declarations may have changed with the tools: learn them again.
              live.mirrored = undefined;
              live.toolsGeneration++;
              this.opts.onToolsChanged();
            },
          },
        },
      },
    );
    const live: Live = { client, transport, kind, era: 'legacy', toolsGeneration: 0 };
    client.onerror = (e) => {
      this.opts.onError?.(e);
      // Legacy SSE: the event stream broke (server restart). Its automatic reconnection would
      // bind a new, uninitialized session to this client: drop it, set up a new one next time.
      if (kind === 'sse' && e instanceof SseError && this.live === live) void this.reset(live);
    };
    // A transport that closes (an SSE stream ending) leaves no session: reconnect next time.
    client.onclose = () => {
      if (this.live === live) void this.reset(live);
    };
    try {
      // As a whole: the Client's own timeout covers initialize (or discover) only, not the
      // notifications/initialized that follows.
      await waitWithin(client.connect(transport, { timeout: timeoutMs }), { timeoutMs });
    } catch (err) {
      // Closing the client closes the transport: it aborts whatever request the set-up was stuck on.
      await client.close().catch(() => undefined);
      throw withProbeRefusal(err, transport);
    }
    live.era = client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
    if (this.closed) {
      await closeQuietly(live);
      throw new Error('session closed');
    }
    this.live = live;
    // 2026-07-28: change notifications ride subscriptions/listen. If the server ends it (a
    // restart), notifications may have been missed: forget the listing, listen anew next time.
    void client.autoOpenedSubscription?.closed.then((how) => {
      if (how === 'local' || this.live !== live) return;
      void this.reset(live);
      this.opts.onToolsChanged();
    });
    this.transportInUse = kind;
    this.protocolInUse = client.getNegotiatedProtocolVersion() ?? (live.era === 'modern' ? MODERN_REVISION : undefined);
    const t = this.target;
    this.opts.memo.set(`${t.key.slice(0, t.key.lastIndexOf('|'))}|${t.url.href}`, { transport: kind, era: live.era });
    return live;
  }

  /**
   * Drops the current connection; the next request sets up a new one. With `only`, drops
   * it only if it is still that one (a concurrent failure may have replaced it already).
   */
  async reset(only?: Live): Promise<void> {
    const live = this.live;
    if (only && live !== only) return;
    this.live = undefined;
    if (live) await closeQuietly(live);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }
}

/**
 * A pinned 2026-07-28 negotiation the server refused: the SDK's error says only that the version
 * was not offered; the server's own answer (status and JSON-RPC message) becomes its cause, so
 * the 424 names it (SPEC §10: a refusal keeps its reason).
 */
function withProbeRefusal(err: unknown, transport: Transport): unknown {
  if (!(err instanceof SdkError) || err.code !== SdkErrorCode.EraNegotiationFailed || err.cause !== undefined) return err;
  const refusal = transport instanceof UndiciTransport ? transport.probeRefusal : undefined;
  return refusal ? new SdkError(err.code, err.message, err.data, { cause: refusal }) : err;
}

const setUpTimeout = (timeoutMs: number) => new SdkError(SdkErrorCode.RequestTimeout, 'Connection set-up timed out', { timeout: timeoutMs });

/** `p` as one caller sees it: given up on at its timeout or its signal (p goes on, its outcome handled). */
function waitWithin<T>(p: Promise<T>, o: RequestOpts): Promise<T> {
  const signal = o.signal;
  return new Promise<T>((resolve, reject) => {
    const stop = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => (stop(), reject(asSdkError(signal!.reason)));
    const timer = setTimeout(() => (stop(), reject(setUpTimeout(o.timeoutMs))), o.timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (stop(), resolve(v)),
      (err: unknown) => (stop(), reject(err)),
    );
  });
}

/** `client.close()` sends no DELETE: terminate the upstream session first, briefly. */
async function closeQuietly(live: Live): Promise<void> {
  const { client, transport } = live;
  if (transport.sessionId && transport.terminateSession) {
    await Promise.race([transport.terminateSession().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  await client.close().catch(() => undefined);
}
