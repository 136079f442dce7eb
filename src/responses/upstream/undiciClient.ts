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

  /** POST; a status ≥ 400 becomes UpstreamHttpError with the upstream's message and Retry-After. */
  private async send(path: ModelPath, body: Record<string, unknown>, accept: string, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
    let res: Dispatcher.ResponseData;
    try {
      res = await this.agent.request({
        origin: this.origin,
        path: this.basePath + path,
        method: 'POST',
        headers: { ...this.headers, accept },
        body: JSON.stringify(body),
        signal,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (e) {
      throw translate(e, signal);
    }
    if (res.statusCode >= 400) {
      let text = '';
      try {
        text = await readBounded(res.body, MAX_ERROR_BYTES, true);
      } catch (e) {
        if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
      }
      const ra = Number(res.headers['retry-after']);
      throw new UpstreamHttpError(res.statusCode, errorMessage(res.statusCode, text), Number.isFinite(ra) && ra > 0 ? ra : undefined);
    }
    return res;
  }
}

/** The `error.message` of an OpenAI-shaped error body, else the body, else a status line. */
function errorMessage(status: number, text: string): string {
  if (text) {
    try {
      const j = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
      if (typeof j.error === 'object' && j.error && typeof j.error.message === 'string') return j.error.message;
      if (typeof j.error === 'string') return j.error;
      if (typeof j.message === 'string') return j.message;
    } catch {
      /* not JSON: the text itself */
    }
    return `${status} ${text}`;
  }
  return `${status} status code (no body)`;
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
