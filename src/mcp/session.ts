import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport, FetchLike } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';

export type TransportKind = 'streamable_http' | 'sse';

export interface SessionTarget {
  /** Pool key: server identity + credential-set hash. */
  key: string;
  url: URL;
  headers: Record<string, string>;
  transport: 'auto' | TransportKind;
  fetch: FetchLike;
}

export interface SessionOptions {
  connectTimeoutMs: number;
  /** `auto` remembers what worked, per server URL. */
  transportMemo: { get(url: string): TransportKind | undefined; set(url: string, kind: TransportKind): unknown };
  onToolsChanged: () => void;
  onError?: (err: Error) => void;
}

export interface RequestOpts {
  timeoutMs: number;
  signal?: AbortSignal;
}

const MAX_TOOL_PAGES = 100;

function httpStatusOf(err: unknown): number | undefined {
  if (err instanceof StreamableHTTPError || err instanceof SseError) return err.code;
  return undefined;
}

/** The server lost our session (restart, eviction): it never ran the request. */
export function isSessionGone(err: unknown): boolean {
  return err instanceof StreamableHTTPError && err.code === 404;
}

/** Nothing reached the server: safe to send again even for tools/call. */
export function isNeverSent(err: unknown): boolean {
  for (let e = err, i = 0; e && i < 6; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ECONNREFUSED' || code === 'EGRESS_DENIED' || code === 'ENOTFOUND' || code === 'UND_ERR_CONNECT_TIMEOUT')
      return true;
  }
  return false;
}

/**
 * One long-lived, initialized MCP client session to one upstream, for one credential set.
 * Connects lazily (single flight); a lost session is re-initialized once, transparently.
 */
export class UpstreamSession {
  private client: Client | undefined;
  private transport: Transport | undefined;
  private connecting: Promise<Client> | undefined;
  private closed = false;
  transportInUse: TransportKind | undefined;

  constructor(
    readonly target: SessionTarget,
    private readonly opts: SessionOptions,
  ) {}

  async listTools(o: RequestOpts): Promise<Tool[]> {
    // tools/list is safe to repeat: retry once on any transport failure.
    return this.withSession(true, async (client) => {
      const tools: Tool[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < MAX_TOOL_PAGES; page++) {
        const r = await client.listTools(cursor ? { cursor } : undefined, { timeout: o.timeoutMs, signal: o.signal });
        tools.push(...r.tools);
        cursor = r.nextCursor;
        if (!cursor) break;
      }
      return tools;
    });
  }

  /** Never re-sent once it may have reached the server (only a lost session or refused connect). */
  async callTool(name: string, args: Record<string, unknown>, o: RequestOpts): Promise<CallToolResult> {
    return this.withSession(false, async (client) => {
      const r = await client.callTool({ name, arguments: args }, undefined, {
        timeout: o.timeoutMs,
        signal: o.signal,
      });
      return r as CallToolResult;
    });
  }

  private async withSession<T>(idempotent: boolean, fn: (c: Client) => Promise<T>): Promise<T> {
    const client = await this.connect();
    try {
      return await fn(client);
    } catch (err) {
      // Only a lost session or a failed connection ends the session: an error status on one
      // request says nothing of the others sharing it, and closing would abort them.
      const sessionDead = isSessionGone(err) || err instanceof TypeError || isNeverSent(err);
      if (sessionDead) await this.reset(client);
      const again = isSessionGone(err) || isNeverSent(err) || (idempotent && (sessionDead || httpStatusOf(err) !== undefined));
      if (!again) throw err;
      return fn(await this.connect());
    }
  }

  connect(): Promise<Client> {
    if (this.closed) return Promise.reject(new Error('session closed'));
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.open().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async open(): Promise<Client> {
    const memo = this.opts.transportMemo.get(this.target.url.href);
    const first: TransportKind = this.target.transport === 'auto' ? (memo ?? 'streamable_http') : this.target.transport;
    try {
      return await this.openWith(first);
    } catch (err) {
      // auto: a server that rejects Streamable HTTP's POST with a 4xx may be legacy SSE.
      const status = httpStatusOf(err);
      const fallback = this.target.transport === 'auto' && first === 'streamable_http' && status !== undefined && status >= 400 && status < 500;
      if (!fallback) throw err;
      // If legacy SSE fails too, the Streamable HTTP answer is the one worth reporting.
      return this.openWith('sse').catch(() => {
        throw err;
      });
    }
  }

  private async openWith(kind: TransportKind): Promise<Client> {
    const requestInit = { headers: this.target.headers };
    const transport: Transport =
      kind === 'streamable_http'
        ? new StreamableHTTPClientTransport(this.target.url, {
            requestInit,
            fetch: this.target.fetch,
            redirectPolicy: 'same-origin',
            reconnectionOptions: { maxRetries: 2, initialReconnectionDelay: 500, maxReconnectionDelay: 5000, reconnectionDelayGrowFactor: 2 },
          })
        : new SSEClientTransport(this.target.url, {
            requestInit,
            eventSourceInit: { fetch: (u, i) => this.target.fetch(u, { ...i, headers: { ...this.target.headers, ...(i?.headers as object) } }) },
            fetch: this.target.fetch,
            redirectPolicy: 'same-origin',
          });
    // No client capabilities: the broker offers remote servers no sampling, roots or elicitation.
    const client = new Client(
      { name: 'mcp-broker', version: '0.1.0' },
      {
        capabilities: {},
        listChanged: { tools: { autoRefresh: false, debounceMs: 0, onChanged: () => this.opts.onToolsChanged() } },
      },
    );
    client.onerror = (e) => this.opts.onError?.(e);
    // A transport that closes (an SSE stream ending) leaves no session: reconnect next time.
    client.onclose = () => {
      if (this.client === client) void this.reset(client);
    };
    try {
      await client.connect(transport, { timeout: this.opts.connectTimeoutMs });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await closeQuietly(client, transport);
      throw new Error('session closed');
    }
    this.client = client;
    this.transport = transport;
    this.transportInUse = kind;
    this.opts.transportMemo.set(this.target.url.href, kind);
    return client;
  }

  /**
   * Drops the current connection; the next request re-initializes. With `only`, drops it only
   * if it is still that one (a concurrent failure may have replaced it already).
   */
  async reset(only?: Client): Promise<void> {
    const { client, transport } = this;
    if (only && client !== only) return;
    this.client = undefined;
    this.transport = undefined;
    if (client && transport) await closeQuietly(client, transport);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.reset();
  }
}

/** `client.close()` sends no DELETE: terminate the upstream session first, briefly. */
async function closeQuietly(client: Client, transport: Transport): Promise<void> {
  if (transport instanceof StreamableHTTPClientTransport && transport.sessionId) {
    await Promise.race([transport.terminateSession().catch(() => undefined), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
  await client.close().catch(() => undefined);
}
