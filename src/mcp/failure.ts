import { McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import { STATUS_CODES } from 'node:http';
import { findEgressDenied } from './egress.js';
import { RESPONSE_TOO_LARGE } from './fetch.js';

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

const statusText = (s: number) => `Http status code: ${s} (${STATUS_CODES[s] ?? 'Unknown'})`;

export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const egress = findEgressDenied(err);
  if (egress) return { kind: 'http', status: 502, code: 'egress_denied', message: `Connection refused by the egress policy.` };
  if (err instanceof BrokerCapacityError) {
    return { kind: 'http', status: err.status, code: 'http_error', message: err.message };
  }
  if (err instanceof McpError) {
    // Servers may use -32001 too; the SDK's own timeout says so in its message.
    if (err.code === ErrorCode.RequestTimeout && /Request timed out/.test(err.message)) return { kind: 'http', status: 504, code: 'timeout', message: 'The MCP server timed out.' };
    if (err.code === RESPONSE_TOO_LARGE) return { kind: 'http', status: 502, code: 'http_error', message: err.message.replace(/^MCP error -?\d+: /, '') };
    // The SDK's own "Connection closed" shares -32000 with servers' application errors.
    if (err.code === ErrorCode.ConnectionClosed && /Connection closed/.test(err.message)) return { kind: 'http', status: 502, code: 'connection_error', message: 'The connection to the MCP server was closed.' };
    return { kind: 'protocol', code: err.code, message: err.message.replace(/^MCP error -?\d+: /, '') };
  }
  if (err instanceof StreamableHTTPError || err instanceof SseError) {
    const status = err.code && err.code >= 100 ? err.code : 502;
    return { kind: 'http', status, code: 'http_error', message: statusText(status) };
  }
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) {
    return { kind: 'http', status: 504, code: 'timeout', message: 'The request to the MCP server was aborted or timed out.' };
  }
  if (err instanceof TypeError) return { kind: 'http', status: 502, code: 'connection_error', message: 'Could not connect to the MCP server.' };
  if (err instanceof SyntaxError) return { kind: 'http', status: 502, code: 'http_error', message: 'The MCP server sent a malformed response.' };
  const message = err instanceof Error ? err.message : String(err);
  return { kind: 'http', status: 502, code: 'http_error', message: `The MCP server request failed: ${message.slice(0, 500)}` };
}
