import type { AuthProvider, CallToolResult, FetchLike, OAuthClientProvider } from '@modelcontextprotocol/client';
import type { Agent } from 'undici';
import { AgentPool, type EgressPolicy } from './egress.js';
import { classifyUpstreamError, isServerFault, type UpstreamFailure } from './failure.js';
import { createUpstreamFetch } from './fetch.js';
import { serverUrlKey, type UpstreamLimits } from './limits.js';
import type { SessionPool } from './pool.js';
import type { ListingBounds, ProtocolPref, ToolList, UpstreamSession } from './session.js';
import { expandSecrets } from '../util/scrub.js';

/** What the mcp layer needs to know of a server to reach it. */
export interface UpstreamTarget {
  sessionKey: string;
  url: URL;
  origin: string;
  headers: Record<string, string>;
  transport: 'auto' | 'streamable_http' | 'sse';
  /** The record's `protocol` (inline servers: `auto`). */
  protocol?: ProtocolPref;
  egress: EgressPolicy;
  callTimeoutMs: number;
  /** Upstream OAuth, when the OAuth layer supplies one for this server. */
  authProvider?: AuthProvider | OAuthClientProvider;
  /** For logs: registered servers by label, inline ones by origin. */
  server_label?: string;
  record?: unknown;
}

/** One upstream failure, as logged (never a URL path, query, header value or argument). */
export interface FailureEvent {
  server: string;
  method: 'connect' | 'tools/list' | 'tools/call';
  failure: UpstreamFailure;
  /** Whether it counts toward the breaker (the server's own failure). */
  server_fault: boolean;
}

export interface UpstreamsOptions {
  maxUpstreamBytes: number;
  /** BROKER_MCP_TRANSPORT (default `undici`). */
  mcpTransport?: 'undici' | 'sdk';
  listing: ListingBounds;
  onFailure?: (e: FailureEvent) => void;
  /** Upstream OAuth for a target (a registered record with `oauth`), from the OAuth layer. */
  authFor?: (t: UpstreamTarget) => AuthProvider | undefined;
}

/** How a target appears in logs: a registered label, or `inline:<origin>`. */
export const logName = (t: Pick<UpstreamTarget, 'server_label' | 'record' | 'origin'>) =>
  t.record && t.server_label ? t.server_label : `inline:${t.origin}`;

/**
 * The one way out to MCP servers: a session from the pool, through the egress-guarded,
 * size-capped fetch, inside the concurrency bounds and the server's circuit breaker.
 */
export class Upstreams {
  private readonly fetches = new WeakMap<Agent, FetchLike>();

  constructor(
    readonly pool: SessionPool,
    readonly agents: AgentPool,
    readonly limits: UpstreamLimits,
    private readonly o: UpstreamsOptions,
  ) {}

  session(t: UpstreamTarget): UpstreamSession {
    return this.pool.get(t.sessionKey, () => {
      const authProvider = t.authProvider ?? this.o.authFor?.(t);
      // With upstream OAuth the record's token wins: no caller Authorization goes out, even before the first token.
      const headers = authProvider ? Object.fromEntries(Object.entries(t.headers).filter(([k]) => k.toLowerCase() !== 'authorization')) : t.headers;
      return {
        key: t.sessionKey,
        url: t.url,
        headers,
        transport: t.transport,
        protocol: t.protocol ?? 'auto',
        fetch: this.fetchFor(t.egress),
        authProvider,
        impl: this.o.mcpTransport ?? 'undici',
        dispatcher: this.agents.get(t.egress),
        maxBytes: this.o.maxUpstreamBytes,
      };
    });
  }

  /**
   * Credentials the transport adds by itself (the upstream OAuth access token), which a
   * careless server may echo: scrubbed from what it answers like header values are.
   */
  async addedSecrets(t: UpstreamTarget): Promise<string[]> {
    const auth = this.pool.peek(t.sessionKey)?.target.authProvider as { token?: () => Promise<string | undefined> } | undefined;
    const token = auth?.token ? await auth.token().catch(() => undefined) : undefined;
    return token ? expandSecrets([token]) : [];
  }

  listTools(t: UpstreamTarget, signal?: AbortSignal): Promise<ToolList> {
    return this.run(t, 'tools/list', signal, () => this.session(t).listTools({ timeoutMs: t.callTimeoutMs, signal }, this.o.listing));
  }

  callTool(t: UpstreamTarget, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    return this.run(t, 'tools/call', signal, () => this.session(t).callTool(name, args, { timeoutMs: t.callTimeoutMs, signal }));
  }

  private async run<T>(t: UpstreamTarget, method: FailureEvent['method'], signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const scope = { server: serverUrlKey(t.url), credentials: t.sessionKey.slice(t.sessionKey.lastIndexOf('|') + 1) };
    try {
      return await this.limits.run(scope, fn, signal);
    } catch (err) {
      if (this.o.onFailure) {
        this.o.onFailure({ server: logName(t), method, failure: classifyUpstreamError(err), server_fault: !signal?.aborted && isServerFault(err) });
      }
      throw err;
    }
  }

  private fetchFor(policy: EgressPolicy): FetchLike {
    const agent = this.agents.get(policy);
    let f = this.fetches.get(agent);
    if (!f) this.fetches.set(agent, (f = createUpstreamFetch(agent, this.o.maxUpstreamBytes)));
    return f;
  }

  async close() {
    await this.pool.close();
    await this.agents.close();
  }
}
