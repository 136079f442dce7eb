import OpenAI from 'openai';
import { UpstreamAbortError, UpstreamConnectionError, UpstreamHttpError, UpstreamStreamError, UpstreamTimeoutError } from './errors.js';

/**
 * What the adapters need from HTTP: POST a JSON body to a path under the upstream's base URL
 * and iterate the parsed `data:` objects of its SSE answer. Failures are the classes of
 * ./errors.js, whatever library is underneath, so a leaner client can replace this one.
 */
export type ModelPath = '/chat/completions' | '/responses';

export interface ModelClient {
  stream(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<AsyncIterable<unknown>>;
  /** The same POST answered as one JSON body (`stream: false`), for turns nobody watches stream. */
  json(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<unknown>;
  close?(): Promise<void>;
}

/** The official `openai` package as the HTTP client (retries off; the broker decides). */
export class OpenAIModelClient implements ModelClient {
  private readonly client: OpenAI;
  private readonly timeoutMs: number;

  constructor(o: { baseURL: string; apiKey: string; timeoutMs: number }) {
    this.timeoutMs = o.timeoutMs;
    this.client = new OpenAI({ baseURL: o.baseURL, apiKey: o.apiKey, timeout: o.timeoutMs, maxRetries: 0 });
  }

  async json(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<unknown> {
    const t0 = performance.now();
    try {
      return await this.client.post(path, { body: { ...body, stream: false }, signal });
    } catch (e) {
      throw this.timedOut(translate(e), t0);
    }
  }

  async stream(path: ModelPath, body: Record<string, unknown>, signal: AbortSignal): Promise<AsyncIterable<unknown>> {
    let s: AsyncIterable<unknown>;
    const t0 = performance.now();
    try {
      s = (await this.client.post(path, { body: { ...body, stream: true }, stream: true, signal })) as AsyncIterable<unknown>;
    } catch (e) {
      throw this.timedOut(translate(e), t0);
    }
    return {
      async *[Symbol.asyncIterator]() {
        try {
          for await (const ev of s) yield ev;
        } catch (e) {
          throw translate(e);
        }
        // The package ends a stream quietly when aborted: an abort is an error here.
        if (signal.aborted) throw new UpstreamAbortError('The request was aborted.');
      },
    };
  }

  /** The package cannot tell its own timeout from a network error when the abort comes from another realm (jest): the clock can. */
  private timedOut(e: Error, t0: number): Error {
    return e instanceof UpstreamConnectionError && performance.now() - t0 >= this.timeoutMs ? new UpstreamTimeoutError('The model upstream timed out.') : e;
  }
}

function translate(err: unknown): Error {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamTimeoutError('The model upstream timed out.');
  if (err instanceof OpenAI.APIUserAbortError) return new UpstreamAbortError('The request was aborted.');
  if (err instanceof OpenAI.APIConnectionError) return new UpstreamConnectionError('Could not reach the model upstream.');
  if (err instanceof OpenAI.APIError) {
    const e = err.error as { message?: unknown } | undefined;
    const message = typeof e?.message === 'string' ? e.message : err.message;
    // An `error` object inside the stream arrives as an APIError without a status.
    if (typeof err.status !== 'number') return new UpstreamStreamError(`The model upstream failed: ${message}`);
    const ra = Number(err.headers?.get?.('retry-after'));
    return new UpstreamHttpError(err.status, message, Number.isFinite(ra) && ra > 0 ? ra : undefined);
  }
  // Errors from fetch may come from another realm (jest): judged by shape, not by class.
  const e = (typeof err === 'object' && err !== null ? err : {}) as { name?: unknown; message?: unknown };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return new UpstreamAbortError('The request was aborted.');
  if (typeof e.message === 'string' && /terminated|ECONNRESET|socket|network/i.test(e.message)) return new UpstreamConnectionError('The connection to the model upstream broke.');
  return err instanceof Error ? err : new Error(typeof e.message === 'string' ? e.message : String(err));
}
