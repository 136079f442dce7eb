import { Agent, type Dispatcher } from 'undici';
import { SseParser, type SseEvent } from '../../mcp/sseParser.js';
import type { ModelClient, ModelPath } from './client.js';
import { UpstreamAbortError, UpstreamConnectionError, UpstreamHttpError, UpstreamStreamError, UpstreamTimeoutError } from './errors.js';

/** Bound on one SSE event of a model stream (a final `response.completed` carries the whole output). */
const MAX_EVENT_BYTES = 16 * 1024 * 1024;
/** Bound on a non-streamed answer body. */
const MAX_JSON_BYTES = 64 * 1024 * 1024;
/** Bound on an error body: only its message is used. */
const MAX_ERROR_BYTES = 64 * 1024;
/** The statuses fetch follows, and its limit on hops (OpenAIModelClient runs on fetch). */
const REDIRECT = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 20;

/**
 * The model upstream over a keep-alive undici Agent: `Dispatcher.request`, the SSE answer
 * parsed incrementally on raw bytes, failures raised as the classes of ./errors.js exactly
 * like OpenAIModelClient (SPEC §6's mapping does not know which client ran).
 * UPSTREAM_TIMEOUT_MS bounds the wait for the answer's headers and any silence inside it.
 */
export class UndiciModelClient implements ModelClient {
  private readonly agent: Agent;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;

  constructor(o: { baseURL: string; apiKey: string; timeoutMs: number; dispatcher?: Agent }) {
    const u = new URL(o.baseURL);
    this.origin = u.origin;
    this.basePath = u.pathname.replace(/\/+$/, '');
    this.headers = { authorization: `Bearer ${o.apiKey}`, 'content-type': 'application/json' };
    this.timeoutMs = o.timeoutMs;
    this.agent = o.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 600_000, connect: { timeout: Math.min(o.timeoutMs, 10_000) } });
  }

  async stream(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<AsyncIterable<unknown>> {
    const res = await this.send(path, { ...body, stream: true }, 'text/event-stream', signal);
    return events(res, signal);
  }

  async json(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const res = await this.send(path, { ...body, stream: false }, 'application/json', signal);
    let text: string;
    try {
      text = await readBounded(res.body, MAX_JSON_BYTES);
    } catch (e) {
      throw translate(e, signal);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new UpstreamStreamError('The model upstream failed: its answer is not JSON.');
    }
  }

  /** Shutdown: open streams end here (a graceful close would wait for them). */
  close(): Promise<void> {
    return this.agent.destroy();
  }

  /**
   * POST, following redirects as fetch does; any other status outside 2xx becomes
   * UpstreamHttpError with the upstream's message and Retry-After.
   */
  private async send(path: ModelPath, body: Record<string, unknown>, accept: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
    let origin = this.origin;
    let target = this.basePath + path;
    let method: 'POST' | 'GET' = 'POST';
    let payload: string | null = JSON.stringify(body);
    let headers: Record<string, string> = { ...this.headers, accept };
    for (let hops = 0; ; hops++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await this.agent.request({ origin, path: target, method, headers, body: payload, signal, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
      } catch (e) {
        throw translate(e, signal);
      }
      const status = res.statusCode;
      const location = res.headers.location;
      if (REDIRECT.has(status) && location !== undefined) {
        // fetch's redirect steps (what the openai package sees): a bad Location, another
        // scheme or a 21st hop is a network error; 301/302 after a POST and 303 go on as GET
        // without the body; another origin does not get the Authorization header.
        await res.body.dump({ limit: MAX_ERROR_BYTES }).catch(() => {});
        let next: URL | undefined;
        try {
          next = new URL(Array.isArray(location) ? location.join(', ') : location, origin + target);
        } catch {
          next = undefined;
        }
        if (next === undefined || (next.protocol !== 'http:' && next.protocol !== 'https:') || hops === MAX_REDIRECTS) {
          throw new UpstreamConnectionError('Could not reach the model upstream.');
        }
        if (status === 303 || ((status === 301 || status === 302) && method === 'POST')) {
          method = 'GET';
          payload = null;
          const { 'content-type': _, ...rest } = headers;
          headers = rest;
        }
        if (next.origin !== origin) {
          const { authorization: _, ...rest } = headers;
          headers = rest;
        }
        origin = next.origin;
        target = next.pathname + next.search;
        continue;
      }
      if (status < 300) return res;
      let text = '';
      try {
        text = await readBounded(res.body, MAX_ERROR_BYTES, true);
      } catch (e) {
        if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
      }
      const ra = Number(res.headers['retry-after']);
      throw new UpstreamHttpError(status, errorMessage(status, text), Number.isFinite(ra) && ra > 0 ? ra : undefined);
    }
  }
}

/**
 * What OpenAIModelClient's message is for this error body: the openai package's APIError
 * (`makeMessage` of the body's `error`, or of the text when it is not JSON), or the
 * `error.message` itself when that is a string.
 */
function errorMessage(status: number, text: string): string {
  // fetch's text() drops a leading BOM.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const error = (json as { error?: unknown } | null | undefined)?.error as { message?: unknown } | null | undefined;
  const m = error?.message;
  if (typeof m === 'string') return m;
  const msg = m ? JSON.stringify(m) : error ? JSON.stringify(error) : json ? undefined : text;
  return msg ? `${status} ${msg}` : `${status} status code (no body)`;
}

/**
 * The body as UTF-8, at most `max` bytes (`truncate`: keep the first `max` bytes and drop the
 * rest). On the stream's events rather than `for await`: the async iterator's machinery was a
 * visible share of a plain turn's two model answers.
 */
function readBounded(body: Dispatcher.ResponseData['body'], max: number, truncate = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    let done = false;
    const text = () => (chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'));
    body.on('data', (c: Buffer) => {
      if (done) return;
      n += c.length;
      if (n > max) {
        done = true;
        body.destroy();
        if (!truncate) return reject(new UpstreamStreamError(`The model upstream failed: its answer is larger than ${max} bytes.`));
        chunks.push(c.subarray(0, c.length - (n - max)));
        return resolve(text());
      }
      chunks.push(c);
    });
    body.once('end', () => {
      if (done) return;
      done = true;
      resolve(text());
    });
    body.once('error', (e: Error) => {
      if (done) return;
      done = true;
      reject(e);
    });
    // Closed without its end or an error: what `for await` reports as a premature close.
    body.once('close', () => {
      if (done) return;
      done = true;
      reject(Object.assign(new Error('terminated: the answer closed before its end'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    });
  });
}

/**
 * The parsed `data:` objects of an SSE answer, as the `openai` package yields them: `[DONE]`
 * ends the stream, a `data` carrying `error` is a failure the upstream reported.
 */
function events(res: Dispatcher.ResponseData, signal: AbortSignal): AsyncIterable<unknown> {
  return {
    async *[Symbol.asyncIterator]() {
      const queue: SseEvent[] = [];
      const parser = new SseParser(MAX_EVENT_BYTES, (e) => {
        queue.push(e);
      });
      let finished = false;
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          const r = parser.push(chunk);
          if (r === 'too_large') throw new UpstreamStreamError(`The model upstream failed: a stream event is larger than ${MAX_EVENT_BYTES} bytes.`);
          for (let i = 0; i < queue.length; i++) {
            const e = queue[i]!;
            if (e.data.startsWith('[DONE]')) {
              finished = true;
              break;
            }
            let data: unknown;
            try {
              data = JSON.parse(e.data);
            } catch {
              throw new UpstreamStreamError('The model upstream failed: a stream event is not JSON.');
            }
            const err = (data as { error?: unknown } | null)?.error;
            if (err) {
              const m = (err as { message?: unknown }).message;
              throw new UpstreamStreamError(`The model upstream failed: ${typeof m === 'string' ? m : 'unknown error'}`);
            }
            yield data;
          }
          queue.length = 0;
          if (finished) break;
        }
      } catch (e) {
        throw translate(e, signal);
      } finally {
        if (!res.body.destroyed && !finished) res.body.destroy();
        else if (finished && !res.body.destroyed) res.body.resume();
      }
      if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
    },
  };
}

const TIMEOUT = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

function translate(err: unknown, signal: AbortSignal): Error {
  if (err instanceof UpstreamStreamError || err instanceof UpstreamHttpError || err instanceof UpstreamTimeoutError || err instanceof UpstreamAbortError || err instanceof UpstreamConnectionError) return err;
  if (signal.aborted) return new UpstreamAbortError('The request was aborted.');
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TIMEOUT.has(code)) return new UpstreamTimeoutError('The model upstream timed out.');
  // undici's errors may come from another realm (jest): judged by shape, not by class.
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown };
  if (e.name === 'AbortError' || code === 'UND_ERR_ABORTED') return new UpstreamAbortError('The request was aborted.');
  if (typeof code === 'string') return new UpstreamConnectionError('Could not reach the model upstream.');
  if (typeof e.message === 'string' && /terminated|ECONNRESET|socket|network|closed/i.test(e.message)) return new UpstreamConnectionError('The connection to the model upstream broke.');
  return err instanceof Error ? err : new Error(typeof e.message === 'string' ? e.message : String(err));
}
