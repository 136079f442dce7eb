import { SSEClientTransport, StreamableHTTPClientTransport, type AuthProvider, type FetchLike, type OAuthClientProvider, type Transport } from '@modelcontextprotocol/client';
import type { Dispatcher } from 'undici';
import { UndiciTransport } from './undiciTransport.js';

export type TransportKind = 'streamable_http' | 'sse';

/** Where and how to reach one upstream for one credential set. */
export interface TransportTarget {
  url: URL;
  headers: Record<string, string>;
  /** The egress-guarded, size-capped fetch every MCP request goes through. */
  fetch: FetchLike;
  /** Upstream OAuth (supplied by the OAuth layer); absent for static headers. */
  authProvider?: AuthProvider | OAuthClientProvider;
  /**
   * BROKER_MCP_TRANSPORT: `undici` speaks Streamable HTTP with the broker's own transport
   * on `dispatcher` (the egress-guarded Agent) under `maxBytes`; `sdk` uses the SDK's.
   */
  impl?: 'undici' | 'sdk';
  dispatcher?: Dispatcher;
  maxBytes?: number;
}

/**
 * The one place an SDK transport object is made. A different implementation (e.g. an
 * undici-based transport selected by `BROKER_MCP_TRANSPORT`) plugs in here.
 */
export function createTransport(kind: TransportKind, t: TransportTarget): Transport & { sessionId?: string; terminateSession?: () => Promise<void> } {
  const requestInit = { headers: t.headers };
  // Upstream OAuth stays on the SDK transport (its auth provider drives the 401/403 flows).
  if (kind === 'streamable_http' && t.impl === 'undici' && t.dispatcher && !t.authProvider) {
    return new UndiciTransport(t.url, {
      dispatcher: t.dispatcher,
      headers: t.headers,
      maxBytes: t.maxBytes ?? 4 << 20,
      redirects: 'same-origin',
      maxReconnects: 2,
      reconnectDelayMs: 500,
    });
  }
  if (kind === 'streamable_http') {
    return new StreamableHTTPClientTransport(t.url, {
      requestInit,
      fetch: t.fetch,
      authProvider: t.authProvider,
      redirectPolicy: 'same-origin',
      reconnectionOptions: { maxRetries: 2, initialReconnectionDelay: 500, maxReconnectionDelay: 5000, reconnectionDelayGrowFactor: 2 },
    });
  }
  return new SSEClientTransport(t.url, {
    requestInit,
    authProvider: t.authProvider,
    fetch: t.fetch,
    redirectPolicy: 'same-origin',
  });
}
