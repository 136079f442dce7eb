/**
 * The one error hierarchy. Every failure a caller can see is an ApiError; the HTTP layer
 * maps it to an OpenAI error body in exactly one place (http/errorHandler.ts).
 */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'external_connector_error'
  | 'rate_limit_error'
  | 'server_error';

export interface ApiErrorOptions {
  param?: string | null;
  /** Extra response headers, e.g. Retry-After. */
  headers?: Record<string, string>;
  /** The failure followed a side effect (a tools/call was sent): tell SDKs not to retry. */
  noRetry?: boolean;
  cause?: unknown;
}

export abstract class ApiError extends Error {
  abstract readonly status: number;
  abstract readonly type: ErrorType;
  readonly param: string | null;
  readonly headers: Record<string, string>;
  readonly noRetry: boolean;

  constructor(
    readonly code: string | null,
    message: string,
    opts: ApiErrorOptions = {},
  ) {
    super(message, { cause: opts.cause });
    this.param = opts.param ?? null;
    this.headers = opts.headers ?? {};
    this.noRetry = opts.noRetry ?? false;
  }
}

export class InvalidRequestError extends ApiError {
  readonly status = 400;
  readonly type = 'invalid_request_error';
}
export class AuthenticationError extends ApiError {
  readonly status = 401;
  readonly type = 'authentication_error';
  constructor(message = 'Invalid or missing bearer token.') {
    super('invalid_api_key', message, { headers: { 'WWW-Authenticate': 'Bearer' } });
  }
}
export class PermissionError extends ApiError {
  readonly status = 403;
  readonly type = 'permission_error';
}
export class NotFoundError extends ApiError {
  readonly status = 404;
  readonly type = 'not_found_error';
}
export class ConflictError extends ApiError {
  readonly status = 409;
  readonly type = 'conflict_error';
}
export class GoneError extends ApiError {
  readonly status = 410;
  readonly type = 'invalid_request_error';
}
export class PayloadTooLargeError extends ApiError {
  readonly status = 413;
  readonly type = 'invalid_request_error';
}
export class ExternalConnectorError extends ApiError {
  readonly status = 424;
  readonly type = 'external_connector_error';
}
export class RateLimitError extends ApiError {
  readonly status = 429;
  readonly type = 'rate_limit_error';
}
/** 502/503/504 about an upstream (model, MCP breaker, store) — never a broker bug. */
export class UpstreamError extends ApiError {
  readonly type = 'server_error';
  constructor(
    readonly status: 502 | 503 | 504,
    code: string,
    message: string,
    opts?: ApiErrorOptions,
  ) {
    super(code, message, opts);
  }
}

/** Retry-After header helper for 429/503 answers. */
export function retryAfter(seconds: number): Record<string, string> {
  return { 'Retry-After': String(Math.max(1, Math.ceil(seconds))) };
}
