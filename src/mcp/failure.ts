import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError, SseError } from '@modelcontextprotocol/client';
import { STATUS_CODES } from 'node:http';
import { findEgressDenied } from './egress.js';
import { ProbeNotAnswered, RESPONSE_TOO_LARGE } from './fetch.js';
import { ListingTooLargeError } from './session.js';
import { scrubWith, type Secrets } from '../util/scrub.js';

/** What went wrong talking to an MCP server, in the terms items and 424s are built from. */
export type UpstreamFailure =
  | { kind: 'protocol'; code: number; message: string }
  | { kind: 'http'; status: number; code: 'http_error' | 'timeout' | 'egress_denied' | 'connection_error'; message: string };

export class BrokerCapacityError extends Error {
  constructor(
    readonly status: 429 | 503,
    readonly code: 'upstream_busy' | 'circuit_open',
    message: string,
    readonly retryAfterS: number,
  ) {
    super(message);
  }
}

/** Longest piece of a server's own error text the broker passes on (SPEC §10). */
export const MAX_REASON_CHARS = 500;

const statusText = (s: number) => `Http status code: ${s} (${STATUS_CODES[s] ?? 'Unknown'})`;

/** Query strings can carry tokens: never pass one on. */
export function stripQueries(text: string): string {
  return text.replace(/(\bhttps?:\/\/[^\s?#"'<>]*)\?[^\s#"'<>]*/gi, '$1?<redacted>');
}

const clipReason = (m: string) => (m.length > MAX_REASON_CHARS ? `${m.slice(0, MAX_REASON_CHARS)}…` : m);

/** A server's own text as passed on: secrets scrubbed before it is clipped (a clip must not leave half a token), no query strings. */
const reasonOf = (m: string, secrets: Secrets) => clipReason(stripQueries(scrubWith(m, secrets)));

/** The JSON-RPC error message in an HTTP error body, if the body is one. */
function rpcMessageOf(body: unknown, secrets: Secrets): string | undefined {
  if (typeof body !== 'string' || body.length === 0 || body.length > 1_000_000) return undefined;
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } };
    const m = parsed?.error?.message;
    return typeof m === 'string' && m.trim() ? reasonOf(m.trim(), secrets) : undefined;
  } catch {
    return undefined;
  }
}

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  for (let e = err, i = 0; e && i < 6; e = (e as { cause?: unknown }).cause, i++) out.push(e);
  return out;
}

/** A TypeError from fetch that is a network failure, not a request fetch refused to build. */
function isNetworkTypeError(err: unknown): boolean {
  return causes(err).some((e) => {
    const code = (e as { code?: unknown }).code;
    return (typeof code === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code) && code !== 'UND_ERR_INVALID_ARG') || (e instanceof TypeError && /fetch failed|terminated|other side closed/i.test(e.message));
  });
}

/** The OAuth layer's refusals (duck-typed: mcp does not import oauth): 424 / http_error 401 with their message. */
function oauthFailureOf(err: unknown): Error | undefined {
  return causes(err).find((e) => e instanceof Error && /^OAUTH_(AUTHORIZATION_REQUIRED|TOKEN_ERROR)$/.test(String((e as { code?: unknown }).code))) as Error | undefined;
}

/**
 * `secrets`: the credential values this request carried (header values, the upstream OAuth
 * tokens), in every form (util/scrub.ts expandSecrets), or a scrubber: applied to the server's
 * own text before it is clipped to MAX_REASON_CHARS.
 */
export function classifyUpstreamError(err: unknown, secrets: Secrets = []): UpstreamFailure {
  const oauth = oauthFailureOf(err);
  if (oauth) return { kind: 'http', status: 401, code: 'http_error', message: `${statusText(401)}: ${reasonOf(oauth.message, secrets)}` };
  const egress = findEgressDenied(err);
  if (egress) return { kind: 'http', status: 502, code: 'egress_denied', message: `Connection refused by the egress policy.` };
  if (err instanceof BrokerCapacityError) return { kind: 'http', status: err.status, code: 'http_error', message: err.message };
  if (err instanceof ListingTooLargeError) return { kind: 'http', status: 413, code: 'http_error', message: err.message };
  if (err instanceof ProtocolError) {
    if (err.code === RESPONSE_TOO_LARGE) return { kind: 'http', status: 502, code: 'http_error', message: err.message };
    return { kind: 'protocol', code: err.code, message: reasonOf(err.message, secrets) };
  }
  if (err instanceof SdkHttpError) {
    const status = err.status >= 100 && err.status <= 599 ? err.status : 502;
    const reason = rpcMessageOf((err.data as { text?: unknown }).text, secrets);
    return { kind: 'http', status, code: 'http_error', message: reason ? `${statusText(status)}: ${reason}` : statusText(status) };
  }
  if (err instanceof SseError) {
    const status = err.code && err.code >= 100 && err.code <= 599 ? err.code : 502;
    return { kind: 'http', status, code: status === 502 && !err.code ? 'connection_error' : 'http_error', message: statusText(status) };
  }
  if (err instanceof SdkError) {
    switch (err.code) {
      case SdkErrorCode.RequestTimeout:
        return { kind: 'http', status: 504, code: 'timeout', message: 'The MCP server timed out.' };
      case SdkErrorCode.ConnectionClosed:
        return { kind: 'http', status: 502, code: 'connection_error', message: 'The connection to the MCP server was closed.' };
      case SdkErrorCode.ClientHttpUnexpectedContent:
        return { kind: 'http', status: 502, code: 'http_error', message: 'The MCP server answered with an unexpected content type.' };
      case SdkErrorCode.UnsupportedResultType:
      case SdkErrorCode.InputRequiredRoundsExceeded:
      case SdkErrorCode.CapabilityNotSupported:
        // 2026-07-28 in-band input requests (sampling, elicitation): the broker offers none.
        return { kind: 'protocol', code: -32603, message: 'The MCP server asked the client for input (such as sampling or elicitation) that the broker does not offer.' };
      case SdkErrorCode.EraNegotiationFailed: {
        const unanswered = causes(err).find((e): e is ProbeNotAnswered => e instanceof ProbeNotAnswered);
        if (unanswered) return { kind: 'http', status: unanswered.status, code: 'http_error', message: statusText(unanswered.status) };
        const net = causes(err).find((e) => e !== err && (isNetworkTypeError(e) || findEgressDenied(e)));
        if (net) return classifyUpstreamError(net, secrets);
        // The server refused the probe (a pinned record): its status and message, as for any refusal.
        const refused = causes(err).find((e) => e !== err && e instanceof SdkHttpError);
        if (refused) return classifyUpstreamError(refused, secrets);
        return { kind: 'http', status: 502, code: 'http_error', message: reasonOf(err.message, secrets) };
      }
      default:
        return { kind: 'http', status: 502, code: 'http_error', message: `The MCP server request failed: ${reasonOf(err.message, secrets)}` };
    }
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return { kind: 'http', status: 504, code: 'timeout', message: 'The request to the MCP server was aborted or timed out.' };
  }
  if (err instanceof TypeError) {
    if (isNetworkTypeError(err)) return { kind: 'http', status: 502, code: 'connection_error', message: 'Could not connect to the MCP server.' };
    // fetch refused to build the request (e.g. an invalid header value): nothing was sent.
    return { kind: 'http', status: 400, code: 'http_error', message: 'The request to the MCP server could not be sent: a header value is invalid.' };
  }
  if (err instanceof SyntaxError) return { kind: 'http', status: 502, code: 'http_error', message: 'The MCP server sent a malformed response.' };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'http', status: 502, code: 'http_error', message: `The MCP server request failed: ${reasonOf(message, secrets)}` };
}

/**
 * Whether a failure is the server's own (connection, 5xx, timeout, malformed answer): only
 * those count toward its circuit breaker. A 4xx (the caller's credentials), a session
 * refusal, a JSON-RPC error, the egress guard or a request fetch could not build do not.
 */
export function isServerFault(err: unknown, callerAborted = false): boolean {
  if (callerAborted || err instanceof BrokerCapacityError || err instanceof ListingTooLargeError || err instanceof ProtocolError) return false;
  const f = classifyUpstreamError(err);
  if (f.kind === 'protocol' || f.code === 'egress_denied') return false;
  if (f.code === 'timeout' || f.code === 'connection_error') return true;
  // An HTTP answer of the server's: 5xx counts, 4xx (the caller's credentials, a refusal) does not.
  if (err instanceof SdkHttpError || err instanceof SseError) return f.status >= 500;
  // Answers the broker could not use at all: malformed JSON, HTML, an unexpected content type.
  if (err instanceof SyntaxError) return true;
  if (err instanceof SdkError && err.code === SdkErrorCode.EraNegotiationFailed) return f.status >= 500;
  if (err instanceof SdkError) return err.code === SdkErrorCode.ClientHttpUnexpectedContent;
  // Anything else (a request fetch would not build, an SDK-side check) is not the server failing.
  return false;
}
