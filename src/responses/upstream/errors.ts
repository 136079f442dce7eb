import OpenAI from 'openai';
import { InvalidRequestError, RateLimitError, UpstreamError, retryAfter, type ApiError } from '../../errors/index.js';

/** SPEC §6: 400 → 400 with its message; 401/403 → 502; 429 → 429; 5xx → 502; timeout → 504. */
export function mapUpstreamError(err: unknown): ApiError {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new UpstreamError(504, 'upstream_timeout', 'The model upstream timed out.');
  if (err instanceof OpenAI.APIUserAbortError) return new UpstreamError(504, 'upstream_timeout', 'The request was aborted.');
  if (err instanceof OpenAI.APIConnectionError) return new UpstreamError(502, 'upstream_error', 'Could not reach the model upstream.');
  if (err instanceof OpenAI.APIError && typeof err.status === 'number') {
    const message = upstreamMessage(err);
    if (err.status === 400 || err.status === 404 || err.status === 422) {
      return new InvalidRequestError(err.status === 404 ? 'model_not_found' : 'upstream_invalid_request', message);
    }
    if (err.status === 401 || err.status === 403) {
      return new UpstreamError(502, 'upstream_error', 'The model upstream refused the broker\'s credentials.');
    }
    if (err.status === 429) {
      const ra = Number(err.headers?.get?.('retry-after'));
      return new RateLimitError('rate_limit_exceeded', message, { headers: retryAfter(Number.isFinite(ra) && ra > 0 ? ra : 1) });
    }
    if (err.status === 504 || err.status === 408) return new UpstreamError(504, 'upstream_timeout', 'The model upstream timed out.');
    return new UpstreamError(502, 'upstream_error', `The model upstream failed (HTTP ${err.status}).`);
  }
  if (err instanceof UpstreamStreamError) return new UpstreamError(502, 'upstream_error', err.message);
  return new UpstreamError(502, 'upstream_error', 'The model upstream failed.');
}

/** A failure the upstream reported inside its stream (`response.failed`, `error`). */
export class UpstreamStreamError extends Error {}

function upstreamMessage(err: InstanceType<typeof OpenAI.APIError>): string {
  const e = err.error as { message?: unknown } | undefined;
  const m = typeof e?.message === 'string' ? e.message : err.message;
  return m.slice(0, 2000);
}
