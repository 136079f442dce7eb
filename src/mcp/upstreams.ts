import type { AuthProvider, CallToolResult, FetchLike, OAuthClientProvider } from '@modelcontextprotocol/client';
import type { Agent } from 'undici';
import { AgentPool, type EgressPolicy } from './egress.js';
import { classifyUpstreamError, isServerFault, type UpstreamFailure } from './failure.js';
import { createUpstreamFetch } from './fetch.js';
import { serverUrlKey, type UpstreamLimits } from './limits.js';
import type { SessionPool } from './pool.js';
import type { ListingBounds, ProtocolPref, ToolList, UpstreamSession } from './session.js';
import { expandSecrets } from '../util/scrub.js';
import { mcpSpan } from '../obs/tracing.js';

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

/** Bearer tokens kept per upstream OAuth provider: the one in use and the ones it replaced lately. */
const SENT_TOKENS_KEPT = 4;

interface SentTokens {
  provider: AuthProvider;
  /** Oldest first, distinct. */
  tokens: string[];
  /** `tokens` in every form (util/scrub.ts), longest first. */
  forms: string[];
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
  /** Per OAuth layer provider: the wrapper sessions use, and the tokens it handed to requests. */
  private readonly sent = new WeakMap<object, SentTokens>();

  constructor(
    readonly pool: SessionPool,
    readonly agents: AgentPool,
    readonly limits: UpstreamLimits,
    private readonly o: UpstreamsOptions,
  ) {}

  session(t: UpstreamTarget): UpstreamSession {
    return this.pool.get(t.sessionKey, () => {
      const authProvider = this.recording(this.providerOf(t));
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
   * Credentials the transport adds by itself (the upstream OAuth access tokens it sent: the one
   * in use and, after a renewal, the ones before it), which a careless or hostile server may
   * echo — in an answer or in an error: scrubbed from both like header values are. In every
   * form (raw, JSON-escaped, URL-encoded). No I/O: nothing is renewed to answer this.
   */
  addedSecrets(t: UpstreamTarget): string[] {
    const p = this.providerOf(t);
    return (p && this.sent.get(p)?.forms) ?? [];
  }

  private providerOf(t: UpstreamTarget): AuthProvider | OAuthClientProvider | undefined {
    return t.authProvider ?? this.o.authFor?.(t);
  }

  /** The provider a session uses: the same one, recording each bearer token it hands out. */
  private recording(p: AuthProvider | OAuthClientProvider | undefined): AuthProvider | OAuthClientProvider | undefined {
    // An OAuthClientProvider (tokens()/clientInformation()) is driven by the SDK itself: left as is.
    if (!p || typeof (p as { token?: unknown }).token !== 'function' || typeof (p as { tokens?: unknown }).tokens === 'function') return p;
    const inner = p as AuthProvider;
    let s = this.sent.get(inner);
    if (!s) {
      const entry: Omit<SentTokens, 'provider'> = { tokens: [], forms: [] };
      const provider: AuthProvider = {
        token: async () => {
          const token = await inner.token();
          if (token && entry.tokens.at(-1) !== token) {
            entry.tokens = [...entry.tokens.filter((x) => x !== token), token].slice(-SENT_TOKENS_KEPT);
            entry.forms = expandSecrets(entry.tokens);
          }
          return token;
        },
        ...(inner.onUnauthorized ? { onUnauthorized: (ctx) => inner.onUnauthorized!(ctx) } : {}),
      };
      s = Object.assign(entry, { provider });
      this.sent.set(inner, s);
    }
    return s.provider;
  }

  listTools(t: UpstreamTarget, signal?: AbortSignal): Promise<ToolList> {
    return mcpSpan('tools/list', t, undefined, () => this.run(t, 'tools/list', signal, () => this.session(t).listTools({ timeoutMs: t.callTimeoutMs, signal }, this.o.listing)));
  }

  callTool(t: UpstreamTarget, name: string, args: Record<string, unknown>, signal?: AbortSignal): Promise<CallToolResult> {
    return mcpSpan('tools/call', t, name, () => this.run(t, 'tools/call', signal, () => this.session(t).callTool(name, args, { timeoutMs: t.callTimeoutMs, signal }, this.o.listing)));
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
