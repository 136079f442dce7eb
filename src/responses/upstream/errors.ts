import { InvalidRequestError, RateLimitError, UpstreamError, retryAfter, type ApiError } from '../../errors/index.js';

/**
 * The model client's failures, independent of the HTTP library that produced them: any
 * `ModelClient` (the `openai` package today, a plain undici client later) raises these.
 */
export class ModelClientError extends Error {}
/** The upstream answered with an HTTP error status. `message` is the upstream's own text. */
export class UpstreamHttpError extends ModelClientError {
  constructor(
    readonly status: number,
    message: string,
    /** Retry-After in seconds, when the upstream sent one. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}
/** No answer in time. */
export class UpstreamTimeoutError extends ModelClientError {}
/** The upstream could not be reached, or the connection broke. */
export class UpstreamConnectionError extends ModelClientError {}
/** The caller's signal aborted the request. */
export class UpstreamAbortError extends ModelClientError {}
/** A failure the upstream reported inside its stream (`response.failed`, `error`). */
export class UpstreamStreamError extends ModelClientError {}

/** SPEC §6: 400 → 400 with its message; 401/403 → 502; 429 → 429; 5xx → 502; timeout → 504. */
export function mapUpstreamError(err: unknown): ApiError {
  if (err instanceof UpstreamTimeoutError) return new UpstreamError(504, 'upstream_timeout', 'The model upstream timed out.');
  if (err instanceof UpstreamAbortError) return new UpstreamError(504, 'upstream_timeout', 'The request was aborted.');
  if (err instanceof UpstreamConnectionError) return new UpstreamError(502, 'upstream_error', 'Could not reach the model upstream.');
  if (err instanceof UpstreamHttpError) {
    const message = err.message.slice(0, 2000);
    if (err.status === 400 || err.status === 404 || err.status === 422) {
      return new InvalidRequestError(err.status === 404 ? 'model_not_found' : 'upstream_invalid_request', message);
    }
    if (err.status === 401 || err.status === 403) {
      return new UpstreamError(502, 'upstream_error', "The model upstream refused the broker's credentials.");
    }
    if (err.status === 429) {
      const ra = err.retryAfterS;
      return new RateLimitError('rate_limit_exceeded', message, { headers: retryAfter(ra !== undefined && Number.isFinite(ra) && ra > 0 ? ra : 1) });
    }
    if (err.status === 504 || err.status === 408) return new UpstreamError(504, 'upstream_timeout', 'The model upstream timed out.');
    return new UpstreamError(502, 'upstream_error', `The model upstream failed (HTTP ${err.status}).`);
  }
  if (err instanceof UpstreamStreamError) return new UpstreamError(502, 'upstream_error', err.message);
  return new UpstreamError(502, 'upstream_error', 'The model upstream failed.');
}
