import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from 'undici';
import {
  PROTOCOL_VERSION_META_KEY,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  type JSONRPCMessage,
  type MessageExtraInfo,
  type Transport,
  type TransportSendOptions,
} from '@modelcontextprotocol/client';
import { timedOut } from './callDeadline.js';
import { ProbeNotAnswered, RESPONSE_TOO_LARGE, requestScope } from './fetch.js';
import { SseParser, type SseEvent } from './sseParser.js';

export { RESPONSE_TOO_LARGE };

export interface UndiciTransportOptions {
  /** Every request goes through it (the product passes its egress-guarded Agent). */
  dispatcher: Dispatcher;
  /** Sent on every request; the transport's own headers (session, protocol, content type) win. */
  headers?: Record<string, string>;
  /** Bound on one answer (JSON body, or the SSE stream before the answer) and on any one SSE event. */
  maxBytes: number;
  /** Redirects: followed within the origin (at most 5, method kept only for 307/308), or never. */
  redirects?: 'same-origin' | 'none';
  /**
   * Reconnects in a row that bring nothing: of the standalone GET stream (legacy era) after it
   * drops, and of a request's resumed SSE answer (default 2).
   */
  maxReconnects?: number;
  /** First reconnect delay, doubled each time (default 500 ms); a server's `retry:` wins for a resumed answer. */
  reconnectDelayMs?: number;
  /** Bound on a notification's POST and on the DELETE, which any working server answers at once (default 10 s). */
  noticeTimeoutMs?: number;
  sessionId?: string;
  protocolVersion?: string;
}

/**
 * A request failed before an answer: like fetch's `TypeError: fetch failed`, the network
 * error is the `cause`. `neverSent` is true only when the request cannot have reached the
 * server (the connection was refused or never made), so even a `tools/call` may be sent again.
 */
export class UpstreamConnectionError extends TypeError {
  readonly neverSent: boolean;
  constructor(message: string, cause: unknown, neverSent: boolean) {
    super(message, { cause });
    this.neverSent = neverSent;
  }
}

const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EGRESS_DENIED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Did this error happen before any byte of the request could reach the server? */
export function isConnectFailure(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof UpstreamConnectionError) return e.neverSent;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NEVER_SENT.has(code)) return true;
  }
  return false;
}

const RESERVED = new Set(['authorization', 'dpop', 'content-type', 'mcp-protocol-version', 'mcp-method', 'mcp-name', 'mcp-session-id']);
const NAME_SOURCE: Record<string, string> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};
const REDIRECT = new Set([301, 302, 303, 307, 308]);
/** Answers to the negotiation probe that say nothing of the server's era (security.md 35). */
const UNRELATED_TO_ERA = new Set([408, 425, 429]);
const MAX_REDIRECTS = 5;
/** After the answer, how long a still-open SSE answer may take to end by itself before it is closed. */
const LINGER_MS = 50;
/**
 * Bound on a request that carries no call of its own (a notification, an answer to the server,
 * the session's DELETE): long enough for a slow remote server to acknowledge, short enough that
 * a server that never does holds no socket for long. Set-up has its own, tighter deadline.
 */
const NOTICE_TIMEOUT_MS = 10_000;
/**
 * Bounds on a server's `retry:` for a resumed answer: not a reconnect loop faster than this,
 * nor a wait longer than the SDK's default longest reconnection delay.
 */
const MIN_RETRY_MS = 100;
const MAX_RETRY_MS = 30_000;

type Msg = { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: { [k: string]: unknown; _meta?: Record<string, unknown> }; result?: unknown; error?: unknown };
type Id = string | number;

const isRequest = (m: Msg): boolean => typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number');
const isAnswerTo = (m: Msg, id: Id): boolean => m.id === id && (m.result !== undefined || m.error !== undefined) && m.method === undefined;
const isMessage = (m: unknown): m is Msg => typeof m === 'object' && m !== null && !Array.isArray(m) && (m as Msg).jsonrpc === '2.0';

function mediaType(h: string | string[] | undefined): string {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return '';
  const semi = v.indexOf(';');
  return (semi === -1 ? v : v.slice(0, semi)).trim().toLowerCase();
}

const header = (h: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** SEP-2243 header value encoding: plain visible ASCII as is, anything else as `=?base64?…?=`. */
function encodeHeaderValue(s: string): string {
  let plain = s.length > 0 && s === s.trim() && !(s.startsWith('=?base64?') && s.endsWith('?='));
  for (let i = 0; plain && i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!(c === 9 || (c >= 32 && c <= 126))) plain = false;
  }
  return plain ? s : `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

const tooLarge = (id: Id, max: number) => ({ jsonrpc: '2.0', id, error: { code: RESPONSE_TOO_LARGE, message: `upstream response exceeded ${max} bytes` } }) as JSONRPCMessage;

type Body = Dispatcher.ResponseData['body'];

/** The 2026-07-28 request envelope's keys (the SDK's outboundEnvelope). */
const ENVELOPE_KEYS = [PROTOCOL_VERSION_META_KEY, 'io.modelcontextprotocol/clientInfo', 'io.modelcontextprotocol/clientCapabilities', 'io.modelcontextprotocol/logLevel'];

/** The prefix of rpc()'s request ids. */
const OWN_ID = 'mcpb-';

/** What the SDK Client rejects a cancelled request with. */
export const asSdkError = (reason: unknown): Error => (reason instanceof SdkError ? reason : new SdkError(SdkErrorCode.RequestTimeout, String(reason)));

/**
 * Aborts `ac` once `ms` have passed, for a request nobody else bounds (a notification, the
 * DELETE); `error` is then why it failed. The error is built only if the time runs out.
 */
function deadline(ac: AbortController, ms: number, what: string): { readonly error: SdkError | undefined; clear(): void } {
  let error: SdkError | undefined;
  const timer = setTimeout(() => {
    error = new SdkError(SdkErrorCode.RequestTimeout, `The MCP server did not answer ${what} within ${ms} ms`, { timeout: ms });
    ac.abort(error);
  }, ms);
  timer.unref();
  return {
    get error() {
      return error;
    },
    clear: () => clearTimeout(timer),
  };
}

/** A server that cannot resume an answer stream: no use trying again. */
class ResumeRefused extends Error {}

/** How one SSE answer stream ended. */
type StreamEnd = { kind: 'answered' | 'aborted' } | { kind: 'ended'; cause?: Error };

/** Where a request's SSE answer stands across its streams: what a reconnection resumes from. */
interface AnswerCursor {
  lastEventId: string | undefined;
  retryMs: number | undefined;
  /** Bytes read before the answer, every stream together (the cap is on the whole answer). */
  total: number;
}

/** The request's answer stream ended for good before its answer. */
function lostAnswer(o: { cause?: Error; note?: string } = {}): UpstreamConnectionError {
  if (o.cause) return new UpstreamConnectionError('terminated', o.cause, false);
  return new UpstreamConnectionError(`terminated: the MCP server ended the stream before answering${o.note ? ` (${o.note})` : ''}`, undefined, false);
}

/** Reads a whole body under `max` bytes; undefined when it is bigger (the body is then destroyed). */
function readCapped(body: Body, max: number, declared: number): Promise<Buffer | undefined> {
  if (declared > max) {
    body.destroy();
    return Promise.resolve(undefined);
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    body.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        body.destroy();
        resolve(undefined);
      } else parts.push(c);
    });
    body.once('end', () => resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size)));
    body.once('error', reject);
  });
}

/** Drains a body whose content does not matter (keeps the connection reusable). */
function drain(body: Body): Promise<void> {
  return body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

/** Reads a short error body as text (at most 64 KiB). */
async function errorText(body: Body): Promise<string> {
  const b = await readCapped(body, 64 * 1024, 0).catch(() => undefined);
  return b ? b.toString('utf8') : '';
}

/**
 * A client transport for the SDK v2 `Client` over undici's `Dispatcher.request`: Streamable
 * HTTP as the SDK's StreamableHTTPClientTransport speaks it (one POST per message, JSON or
 * SSE answers, `Mcp-Session-Id`, `MCP-Protocol-Version` and the 2026-07-28 body-derived
 * headers, the standalone GET stream, DELETE on close), without WHATWG streams: answers are
 * parsed incrementally under a byte cap, and a request is complete on its JSON-RPC answer.
 */
export class UndiciTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void;
  readonly hasPerRequestStream = true;

  private readonly origin: string;
  private readonly path: string;
  private readonly baseHeaders: Record<string, string> = {};
  private readonly accept: string;
  private _sessionId: string | undefined;
  private _protocolVersion: string | undefined;
  private _probeRefusal: SdkHttpError | undefined;
  private started = false;
  private closed = false;
  /** Every request in flight, aborted on close. */
  private readonly inflight = new Set<AbortController>();
  /** Legacy era: a request's POST by JSON-RPC id, aborted when the Client cancels it. */
  private readonly byId = new Map<Id, AbortController>();
  private standalone: AbortController | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Requests made with rpc(): answered here, by JSON-RPC id; the Client never sees them. */
  private readonly own = new Map<Id, (answer: Msg | Error) => void>();
  private ownSeq = 0;
  private _envelope: Record<string, unknown> | undefined;
  private readonly noticeTimeoutMs: number;

  constructor(
    readonly url: URL,
    private readonly opts: UndiciTransportOptions,
  ) {
    this.origin = url.origin;
    this.path = url.pathname + url.search;
    let accept = '';
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      const name = k.toLowerCase();
      if (name === 'accept') accept = v;
      else if (name !== 'content-type' && name !== 'mcp-session-id' && name !== 'mcp-protocol-version' && name !== 'mcp-method' && name !== 'mcp-name') this.baseHeaders[name] = v;
    }
    const types = new Set([...accept.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean), 'application/json', 'text/event-stream']);
    this.accept = [...types].join(', ');
    this._sessionId = opts.sessionId;
    this._protocolVersion = opts.protocolVersion;
    this.noticeTimeoutMs = opts.noticeTimeoutMs ?? NOTICE_TIMEOUT_MS;
  }

  get sessionId(): string | undefined {
    return this._sessionId;
  }

  /**
   * The server's HTTP refusal of the 2026-07-28 probe, if it refused it: the SDK's pin-mode
   * negotiation error does not carry it, and SPEC §10 wants the server's reason in the 424.
   */
  get probeRefusal(): SdkHttpError | undefined {
    return this._probeRefusal;
  }

  get protocolVersion(): string | undefined {
    return this._protocolVersion;
  }

  setProtocolVersion(version: string): void {
    this._protocolVersion = version;
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('UndiciTransport already started');
    this.started = true;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.standalone?.abort();
    for (const ac of this.inflight) ac.abort();
    this.inflight.clear();
    this.byId.clear();
    // As the Client fails its own pending requests when its transport closes.
    for (const settle of [...this.own.values()]) settle(new SdkError(SdkErrorCode.ConnectionClosed, 'Connection closed'));
    this.onclose?.();
  }

  /**
   * One request answered here rather than through the Client: the 2025-era exchange the SDK
   * Client makes for it — a numbered request, its answer by id, on timeout or abort a
   * `notifications/cancelled` (which also ends the POST) and the same SdkError, a JSON-RPC error
   * as ProtocolError, a closed transport as ConnectionClosed — without the Client's answer
   * funnel. Measured (in-process CPU profile of a Responses turn, 2026-12-02): the Client was
   * the largest JS owner, ≈ 0.4 ms of 3.2 ms, mostly four zod parses per answer (envelope guard
   * twice, a probe that validates `undefined` and stringifies the error, then the result).
   * Ids are strings (`mcpb-N`), the Client's are numbers: the two never meet. The caller
   * validates the result. On 2026-07-28 (params carry the request envelope: modernCall.ts) a
   * cancelled request ends its HTTP request instead, as the Client does there.
   * Where the Client drops an answer it finds malformed and waits out its timeout, this settles
   * at once: an answer with an extra envelope member is taken; an error without a message is
   * the server's error (empty message); one whose code is not an integer, or whose message is
   * not a string, is an invalid result.
   */
  rpc(method: string, params: Record<string, unknown>, o: { timeoutMs: number; signal?: AbortSignal; headers?: Record<string, string> }): Promise<unknown> {
    if (this.closed) return Promise.reject(new SdkError(SdkErrorCode.NotConnected, 'Not connected'));
    const signal = o.signal;
    if (signal?.aborted) return Promise.reject(asSdkError(signal.reason));
    const id = `${OWN_ID}${++this.ownSeq}`;
    // A 2026-07-28 request (its envelope names the revision) is cancelled as the Client cancels
    // one there: by ending its own HTTP request; that revision has no notifications/cancelled.
    const modern = typeof (params._meta as Record<string, unknown> | undefined)?.[PROTOCOL_VERSION_META_KEY] === 'string';
    return new Promise<unknown>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const settle = (answer: Msg | Error) => {
        if (!this.own.delete(id)) return;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (answer instanceof Error) return reject(answer);
        const e = answer.error as { code?: unknown; message?: unknown; data?: unknown } | null | undefined;
        if (e === undefined) return resolve(answer.result);
        // Only a real error object (integer code, string message) is the server's error; coercing
        // anything else could throw here — after the request was forgotten (a hang) or inside the
        // stream's data handler.
        if (e === null || typeof e !== 'object' || !Number.isInteger(e.code) || (e.message !== undefined && typeof e.message !== 'string')) {
          return reject(new SdkError(SdkErrorCode.InvalidResult, `Invalid JSON-RPC error for ${method}`));
        }
        try {
          reject(ProtocolError.fromError(e.code as number, (e.message as string | undefined) ?? '', e.data));
        } catch (err) {
          reject(err);
        }
      };
      const cancel = (reason: unknown) => {
        if (!this.own.has(id)) return;
        settle(asSdkError(reason));
        if (modern) return void this.byId.get(id)?.abort(reason);
        void this.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: String(reason) } } as JSONRPCMessage).catch((err: Error) =>
          this.onerror?.(new Error(`Failed to send cancellation: ${err.message}`)),
        );
      };
      const onAbort = () => cancel(signal!.reason);
      this.own.set(id, settle);
      timer = setTimeout(() => cancel(timedOut(o.timeoutMs)), o.timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.send({ jsonrpc: '2.0', id, method, params } as JSONRPCMessage, o.headers ? { headers: o.headers } : undefined).catch((err: Error) => settle(err));
    });
  }

  /**
   * The 2026-07-28 `_meta` envelope (protocol version, client info and capabilities, log
   * level) of the Client's latest request on this connection — what rpc() requests carry on
   * that revision, so they say what the Client's own say. Undefined before the Client sent one
   * (or on a 2025-era connection, whose requests carry none).
   */
  get envelope(): Readonly<Record<string, unknown>> | undefined {
    return this._envelope;
  }

  /** An answer to one of rpc()'s requests settles it; every other message goes to the Client. */
  private deliver(msg: Msg): void {
    if (typeof msg.id === 'string' && msg.method === undefined && msg.id.startsWith(OWN_ID)) {
      // A late answer (after a timeout or cancel) is dropped, as the Client drops its own.
      this.own.get(msg.id)?.(msg);
      return;
    }
    this.onmessage?.(msg as JSONRPCMessage);
  }

  /**
   * DELETE the upstream session (a 405 means the server keeps no sessions to end): bounded by
   * `noticeTimeoutMs` and tracked, so a server that never answers holds no socket after close().
   */
  async terminateSession(): Promise<void> {
    const sid = this._sessionId;
    if (!sid) return;
    const ac = new AbortController();
    const bound = deadline(ac, this.noticeTimeoutMs, 'the DELETE of its session');
    this.inflight.add(ac);
    let res: Dispatcher.ResponseData;
    try {
      res = await this.request('DELETE', this.headers(undefined), undefined, ac.signal);
      await drain(res.body);
    } catch (err) {
      throw bound.error ?? err;
    } finally {
      bound.clear();
      this.inflight.delete(ac);
    }
    if (res.statusCode >= 300 && res.statusCode !== 405) {
      const err = new SdkHttpError(SdkErrorCode.ClientHttpFailedToTerminateSession, `Failed to terminate session: ${statusText(res.statusCode)}`, { status: res.statusCode, statusText: statusText(res.statusCode) });
      this.onerror?.(err);
      throw err;
    }
    if (this._sessionId === sid) this._sessionId = undefined;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.closed) throw new SdkError(SdkErrorCode.NotConnected, 'Not connected');
    if (Array.isArray(message)) throw new SdkError(SdkErrorCode.SendFailed, 'JSON-RPC batches are not supported');
    const m = message as Msg;
    const request = isRequest(m);
    const id = request ? (m.id as Id) : undefined;
    if (request && !(typeof id === 'string' && id.startsWith(OWN_ID))) this.noteEnvelope(m.params?._meta);
    if (m.method === 'notifications/cancelled') {
      // Legacy era: the Client cancels by notification; the POST carrying that request ends too.
      const target = this.byId.get(m.params?.requestId as Id);
      target?.abort();
    }
    const ac = new AbortController();
    const reqSignal = options?.requestSignal;
    // The session layer's scope for one broker request (one page or call): it ends every HTTP
    // request made for it — answered, timed out or abandoned — in either era. Notifications
    // (notifications/cancelled above all) are short and must still reach the server.
    const scoped = id !== undefined ? requestScope.getStore() : undefined;
    if (reqSignal?.aborted || scoped?.aborted) return;
    // The reason of the signal that fired: abort() without one builds a DOMException (a stack
    // capture), which the end of every request scope would otherwise pay.
    const onAbort = (e: Event) => ac.abort((e.target as AbortSignal).reason);
    reqSignal?.addEventListener('abort', onAbort, { once: true });
    scoped?.addEventListener('abort', onAbort, { once: true });
    this.inflight.add(ac);
    if (id !== undefined) this.byId.set(id, ac);
    // A request ends with its caller (scope, signal, the Client's cancellation); a notification
    // (or an answer to a server's request) has no caller waiting: its own short bound keeps a
    // server that never answers it from holding the socket (and, for notifications/initialized,
    // the connection set-up).
    const bound = id === undefined ? deadline(ac, this.noticeTimeoutMs, typeof m.method === 'string' ? m.method : 'an answer to its request') : undefined;
    try {
      await this.exchange(m, id, options, ac);
    } catch (err) {
      const failure = bound?.error ?? (ac.signal.aborted ? undefined : (err as Error));
      if (!failure) return; // ended on purpose: not an error
      this.onerror?.(failure);
      throw failure;
    } finally {
      bound?.clear();
      reqSignal?.removeEventListener('abort', onAbort);
      scoped?.removeEventListener('abort', onAbort);
      this.inflight.delete(ac);
      if (id !== undefined && this.byId.get(id) === ac) this.byId.delete(id);
    }
  }

  private noteEnvelope(meta: Record<string, unknown> | undefined): void {
    if (typeof meta?.[PROTOCOL_VERSION_META_KEY] !== 'string') return;
    const e: Record<string, unknown> = {};
    for (const k of ENVELOPE_KEYS) if (meta[k] !== undefined) e[k] = meta[k];
    this._envelope = e;
  }

  private async exchange(m: Msg, id: Id | undefined, options: TransportSendOptions | undefined, ac: AbortController): Promise<void> {
    const handshake = m.method === 'initialize';
    const h = this.headers(m, handshake);
    if (options?.headers) {
      for (const [k, v] of Object.entries(options.headers)) if (!RESERVED.has(k.toLowerCase())) h[k.toLowerCase()] = v;
    }
    h['content-type'] = 'application/json';
    h.accept = this.accept;
    const res = await this.request('POST', h, JSON.stringify(m), ac.signal);
    const status = res.statusCode;
    if (handshake && status >= 200 && status < 300) this._sessionId = header(res.headers, 'mcp-session-id') || undefined;
    if (UNRELATED_TO_ERA.has(status) && m.method === 'server/discover') {
      await drain(res.body);
      throw new ProbeNotAnswered(status);
    }
    if (status < 200 || status >= 300) {
      const text = await errorText(res.body);
      // A 2026-07-28 request's refusal may carry the JSON-RPC error for it: deliver that.
      if (status === 400 && id !== undefined && typeof m.params?._meta?.[PROTOCOL_VERSION_META_KEY] === 'string') {
        try {
          const parsed = JSON.parse(text) as unknown;
          if (isMessage(parsed) && parsed.id === id && parsed.error !== undefined) {
            this.deliver(parsed);
            return;
          }
        } catch {
          // not JSON: the HTTP error below
        }
      }
      const reason = this.redirectNote(status, res.headers) ?? text;
      const refused = new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, `Error POSTing to endpoint: ${reason}`, { status, statusText: statusText(status), text });
      if (m.method === 'server/discover') this._probeRefusal = refused;
      throw refused;
    }
    if (status === 202 || id === undefined) {
      await drain(res.body);
      if (m.method === 'notifications/initialized') this.openStandalone(0);
      return;
    }
    const type = mediaType(res.headers['content-type']);
    if (type === 'text/event-stream') {
      await this.readAnswer(res.body, id, m.method === 'subscriptions/listen', options, ac);
      return;
    }
    if (type === 'application/json') {
      const bytes = await readCapped(res.body, this.opts.maxBytes, Number(header(res.headers, 'content-length') ?? 0));
      if (!bytes) {
        this.deliver(tooLarge(id, this.opts.maxBytes) as Msg);
        return;
      }
      const data = JSON.parse(bytes.toString('utf8')) as unknown;
      for (const msg of Array.isArray(data) ? data : [data]) {
        if (!isMessage(msg)) throw new SyntaxError('The MCP server answered with something other than a JSON-RPC message');
        this.deliver(msg);
      }
      return;
    }
    await drain(res.body);
    const contentType = header(res.headers, 'content-type');
    throw new SdkError(SdkErrorCode.ClientHttpUnexpectedContent, `Unexpected content type: ${contentType}`, { contentType });
  }

  /**
   * A POST's SSE answer, resumed if its stream ends first. A resumable server (one that sent
   * an event id, such as a priming event) may close the POST's stream and deliver the answer
   * on a GET with `Last-Event-ID` (the SDK's server does, with an event store and
   * closeSSEStream; the SDK's client transport reconnects the same way). Reconnections wait
   * the server's `retry:` or a doubling delay, stop after `maxReconnects` in a row that fail,
   * and all end with the request (`ac`: its caller, its cancellation, the transport's close);
   * the byte cap is on every stream together. A `subscriptions/listen` stream is not resumed:
   * its end is what tells the session the server went away.
   */
  private async readAnswer(body: Body, id: Id, listen: boolean, options: TransportSendOptions | undefined, ac: AbortController): Promise<void> {
    const cursor: AnswerCursor = { lastEventId: undefined, retryMs: undefined, total: 0 };
    try {
      let end = await this.readAnswerStream(body, id, listen, ac, cursor);
      for (let failed = 0; end.kind === 'ended'; ) {
        if (listen || !cursor.lastEventId) throw lostAnswer({ cause: end.cause });
        const max = this.opts.maxReconnects ?? 2;
        // The reason only, not the error: a refused reconnection says nothing of the POST, which
        // reached the server (a cause chain with ECONNREFUSED would read as "never sent").
        if (failed >= max) throw lostAnswer({ note: `${max} reconnections with Last-Event-ID failed${end.cause ? `, the last: ${end.cause.message}` : ''}` });
        await sleep(this.resumeDelay(cursor, failed), undefined, { signal: ac.signal });
        const resumed = await this.resumeStream(cursor.lastEventId, ac.signal).catch((err: Error) => err);
        if (ac.signal.aborted) return;
        if (resumed instanceof ResumeRefused) throw lostAnswer({ note: resumed.message });
        if (resumed instanceof Error) {
          failed++;
          end = { kind: 'ended', cause: resumed };
          continue;
        }
        failed = 0; // a stream that opened resets the count, as the SDK's transport does
        end = await this.readAnswerStream(resumed, id, listen, ac, cursor);
      }
    } finally {
      if (!ac.signal.aborted) options?.onRequestStreamEnd?.();
    }
  }

  /** The wait before a reconnection: the server's `retry:` (as the SDK does), within bounds; else the backoff. */
  private resumeDelay(cursor: AnswerCursor, failed: number): number {
    const ms = cursor.retryMs ?? (this.opts.reconnectDelayMs ?? 500) * 2 ** failed;
    return Math.min(Math.max(ms, MIN_RETRY_MS), MAX_RETRY_MS);
  }

  /** GET with `Last-Event-ID`: the stream that carries on from it (a 405 means none ever will). */
  private async resumeStream(lastEventId: string, signal: AbortSignal): Promise<Body> {
    const h = this.headers(undefined);
    h.accept = 'text/event-stream';
    h['last-event-id'] = lastEventId;
    const res = await this.request('GET', h, undefined, signal);
    const s = res.statusCode;
    if (s >= 200 && s < 300 && mediaType(res.headers['content-type']) === 'text/event-stream') return res.body;
    await drain(res.body);
    if (s === 405) throw new ResumeRefused('the server offers no GET stream to resume from');
    throw new Error(`resuming the SSE stream failed: ${s >= 200 && s < 300 ? 'not an event stream' : statusText(s)}`);
  }

  /**
   * One SSE stream of a request's answer: events are delivered as they come; the request is
   * complete on its answer and the stream is then closed if the server does not end it.
   * Bounded by `maxBytes` before the answer, with the streams before it (each event only, for
   * a `subscriptions/listen` stream). The cursor keeps the last event id and `retry:`.
   */
  private readAnswerStream(body: Body, id: Id, listen: boolean, ac: AbortController, cursor: AnswerCursor): Promise<StreamEnd> {
    const max = this.opts.maxBytes;
    return new Promise<StreamEnd>((resolve) => {
      let answered = false;
      let settled = false;
      let linger: NodeJS.Timeout | undefined;
      const parser = new SseParser(max, (e) => {
        const msg = this.eventMessage(e);
        if (!msg) return true;
        const answer = isAnswerTo(msg, id);
        this.deliver(msg);
        if (!answer) return true;
        answered = true;
        return false;
      });
      const finish = (end: StreamEnd) => {
        if (settled) return;
        settled = true;
        clearTimeout(linger);
        ac.signal.removeEventListener('abort', onAbort);
        // As EventSource, the last id and the reconnection time outlive the stream that sent them.
        if (parser.lastEventId !== undefined) cursor.lastEventId = parser.lastEventId;
        if (parser.retryMs !== undefined) cursor.retryMs = parser.retryMs;
        resolve(answered ? { kind: 'answered' } : end);
      };
      const onAbort = () => {
        // Once answered, the end of the request's scope is no reason to cut the connection:
        // let the stream end by itself (the socket stays reusable) within the linger time.
        if (answered) return;
        body.destroy();
        finish({ kind: 'aborted' });
      };
      ac.signal.addEventListener('abort', onAbort, { once: true });
      body.on('data', (c: Buffer) => {
        if (answered) return;
        if (!listen) cursor.total += c.length;
        const r = cursor.total > max ? 'too_large' : parser.push(c);
        if (r === 'more') return;
        if (r === 'too_large') {
          answered = true;
          body.destroy();
          this.deliver(tooLarge(id, max) as Msg);
          return finish({ kind: 'answered' });
        }
        // Answered: the call is complete; give the server a moment to end the stream itself.
        linger = setTimeout(() => {
          body.destroy();
          finish({ kind: 'answered' });
        }, LINGER_MS);
        linger.unref();
      });
      body.once('end', () => finish({ kind: 'ended' }));
      body.once('error', (err: Error) => finish({ kind: 'ended', cause: err }));
      body.once('close', () => finish({ kind: 'ended' }));
    });
  }

  private eventMessage(e: SseEvent): Msg | undefined {
    if (!e.data || (e.event !== '' && e.event !== 'message')) return undefined;
    try {
      const msg = JSON.parse(e.data) as unknown;
      if (isMessage(msg)) return msg;
      this.onerror?.(new SyntaxError('SSE event is not a JSON-RPC message'));
    } catch (err) {
      this.onerror?.(err as Error);
    }
    return undefined;
  }

  /** Legacy era: the standalone GET stream for server notifications; a 405 means there is none. */
  private openStandalone(attempt: number): void {
    if (this.closed || this.standalone) return;
    const ac = new AbortController();
    this.standalone = ac;
    const sid = this._sessionId;
    const h = this.headers(undefined);
    h.accept = 'text/event-stream';
    const retry = (err?: Error) => {
      if (this.standalone === ac) this.standalone = undefined;
      // Not after close, nor once the session it belonged to has ended (DELETE, new session).
      if (this.closed || ac.signal.aborted || this._sessionId !== sid) return;
      if (err) this.onerror?.(err);
      const max = this.opts.maxReconnects ?? 2;
      if (attempt >= max) return;
      const delay = (this.opts.reconnectDelayMs ?? 500) * 2 ** attempt;
      this.reconnectTimer = setTimeout(() => this.openStandalone(attempt + 1), delay);
      this.reconnectTimer.unref();
    };
    this.request('GET', h, undefined, ac.signal).then(
      async (res) => {
        if (res.statusCode === 405) {
          await drain(res.body);
          if (this.standalone === ac) this.standalone = undefined;
          return;
        }
        if (res.statusCode < 200 || res.statusCode >= 300 || mediaType(res.headers['content-type']) !== 'text/event-stream') {
          await drain(res.body);
          const s = res.statusCode;
          return retry(new SdkHttpError(SdkErrorCode.ClientHttpFailedToOpenStream, `Failed to open SSE stream: ${statusText(s)}`, { status: s, statusText: statusText(s) }));
        }
        attempt = 0; // a stream that opened resets the backoff
        const parser = new SseParser(this.opts.maxBytes, (e) => {
          const msg = this.eventMessage(e);
          if (msg) this.deliver(msg);
        });
        res.body.on('data', (c: Buffer) => {
          if (parser.push(c) === 'too_large') {
            res.body.destroy();
            retry(new Error(`upstream event exceeded ${this.opts.maxBytes} bytes`));
          }
        });
        res.body.once('end', () => retry());
        res.body.once('error', (err: Error) => retry(new Error(`SSE stream disconnected: ${err.message}`)));
      },
      (err: Error) => retry(err),
    );
  }

  private headers(m: Msg | undefined, handshake = false): Record<string, string> {
    const h: Record<string, string> = { ...this.baseHeaders };
    if (this._sessionId && !handshake) h['mcp-session-id'] = this._sessionId;
    if (this._protocolVersion) h['mcp-protocol-version'] = this._protocolVersion;
    const claimed = m?.params?._meta?.[PROTOCOL_VERSION_META_KEY];
    if (m && typeof claimed === 'string' && isRequest(m)) {
      h['mcp-protocol-version'] = claimed;
      h['mcp-method'] = m.method as string;
      const field = NAME_SOURCE[m.method as string];
      const value = field ? m.params?.[field] : undefined;
      if (typeof value === 'string') h['mcp-name'] = encodeHeaderValue(value);
    }
    return h;
  }

  /**
   * One HTTP request, redirects handled as configured; network failures as UpstreamConnectionError.
   * No undici timeouts (a tool may run long; an SSE stream may be quiet for long): the signal is
   * what bounds it, so every caller passes one that ends — the request's own, a short deadline
   * (notifications, DELETE) or the standalone stream's, and close() aborts them all.
   */
  private async request(method: string, headers: Record<string, string>, body: string | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    let origin = this.origin;
    let path = this.path;
    for (let followed = 0; ; followed++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.opts.dispatcher.request({ origin, path, method: method as Dispatcher.HttpMethod, headers, body, signal, headersTimeout: 0, bodyTimeout: 0 });
      } catch (err) {
        if (signal?.aborted || (err as Error).name === 'AbortError') throw err;
        // Like fetch's TypeError for a request it cannot build: nothing was sent (no value quoted).
        if ((err as { code?: unknown }).code === 'UND_ERR_INVALID_ARG') throw new TypeError('The request could not be built: a header value is invalid');
        throw new UpstreamConnectionError('fetch failed', err, isConnectFailure(err));
      }
      if (this.opts.redirects === 'none' || !REDIRECT.has(res.statusCode) || followed === MAX_REDIRECTS) return res;
      const target = this.redirectTarget(res.headers, origin + path);
      const keepsMethod = method === 'GET' || res.statusCode === 307 || res.statusCode === 308;
      if (!target || !keepsMethod || target.origin !== this.origin || target.username || target.password) return res;
      await drain(res.body);
      origin = target.origin;
      path = target.pathname + target.search;
    }
  }

  private redirectTarget(h: Record<string, string | string[] | undefined>, from: string): URL | undefined {
    const location = header(h, 'location');
    if (!location) return undefined;
    try {
      return new URL(location, from);
    } catch {
      return undefined;
    }
  }

  /** Error text for a redirect that was not followed (no userinfo, query or fragment). */
  private redirectNote(status: number, h: Record<string, string | string[] | undefined>): string | undefined {
    if (!REDIRECT.has(status)) return undefined;
    const t = this.redirectTarget(h, this.url.href);
    if (!t) return undefined;
    t.username = t.password = t.search = t.hash = '';
    return `Redirect to ${t.href} not followed; use that URL as the endpoint if it is the intended server (redirectPolicy: 'same-origin')`;
  }
}

const statusText = (s: number) => STATUS_CODES[s] ?? 'Unknown';
