import { SdkError, SdkErrorCode } from '@modelcontextprotocol/client';

/**
 * One deadline for a whole tool call (`call_timeout_ms`), however many requests it takes: a
 * HeaderMismatch's listing walk and second send, and the rounds of an `input_required` flow
 * (the SDK's driver gives every further round the full per-request timeout). Times are
 * performance.now() values.
 */

/** How a request that ran out of time fails (as the SDK Client fails its own). */
export const timedOut = (timeoutMs: number): SdkError => new SdkError(SdkErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs });

/** Time left before `until`, as a request timeout (at least 1 ms); RequestTimeout at once when nothing is left. */
export function remaining(until: number, timeoutMs: number): number {
  const left = Math.ceil(until - performance.now());
  if (left <= 0) throw timedOut(timeoutMs);
  return left;
}

/**
 * A signal that fires at `until` with the call's RequestTimeout (a 504, as any timed-out call),
 * or with the caller's own signal and its reason. `clear()` once the call is over.
 */
export function untilSignal(until: number, timeoutMs: number, signal?: AbortSignal): { signal: AbortSignal; clear(): void } {
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal!.reason);
  const timer = setTimeout(() => ac.abort(timedOut(timeoutMs)), Math.max(0, until - performance.now()));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    },
  };
}
