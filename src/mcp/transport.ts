import { SSEClientTransport, StreamableHTTPClientTransport, type AuthProvider, type FetchLike, type OAuthClientProvider, type Transport } from '@modelcontextprotocol/client';

export type TransportKind = 'streamable_http' | 'sse';

/** Where and how to reach one upstream for one credential set. */
export interface TransportTarget {
  url: URL;
  headers: Record<string, string>;
  /** The egress-guarded, size-capped fetch every MCP request goes through. */
  fetch: FetchLike;
  /** Upstream OAuth (supplied by the OAuth layer); absent for static headers. */
  authProvider?: AuthProvider | OAuthClientProvider;
}

/**
 * The one place an SDK transport object is made. A different implementation (e.g. an
 * undici-based transport selected by `BROKER_MCP_TRANSPORT`) plugs in here.
 */
export function createTransport(kind: TransportKind, t: TransportTarget): Transport & { sessionId?: string; terminateSession?: () => Promise<void> } {
  const requestInit = { headers: t.headers };
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
