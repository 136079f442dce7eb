import { ConsecutiveBreaker, BrokenCircuitError, CircuitState, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import { LRUCache } from 'lru-cache';
import { BrokerCapacityError, isServerFault } from './failure.js';

export interface LimitOptions {
  maxInflightPerServer: number;
  maxInflight: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
}

/** What the bounds are kept per: the server URL (origin + path) and the credential scope. */
export interface LimitScope {
  /** Origin + path of the MCP endpoint (never the query). */
  server: string;
  /** The credential-set hash: one tenant's failures never open another's breaker. */
  credentials: string;
}

/** The server URL the bounds are kept per: origin + path, no query. */
export const serverUrlKey = (url: URL) => `${url.origin}${url.pathname}`;

/**
 * Fail-fast bounds on upstream MCP work (security.md 24): in-flight counts per server URL
 * and overall, and a circuit breaker per server URL and credential scope that opens after
 * consecutive failures of the server's own (connection, 5xx, timeouts).
 */
export class UpstreamLimits {
  private inflight = 0;
  private readonly perServer = new Map<string, number>();
  // Inline servers are caller-chosen: keep the most recent breakers only.
  private readonly breakers = new LRUCache<string, CircuitBreakerPolicy>({ max: 10_000 });

  constructor(private readonly o: LimitOptions) {}

  async run<T>(scope: LimitScope, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    // An open breaker refuses inside execute(), which is also where it moves to half-open.
    const breaker = this.breaker(`${scope.server}|${scope.credentials}`);
    const n = this.perServer.get(scope.server) ?? 0;
    if (n >= this.o.maxInflightPerServer || this.inflight >= this.o.maxInflight) {
      throw new BrokerCapacityError(429, 'upstream_busy', 'Too many concurrent calls to the MCP server.', 1);
    }
    this.perServer.set(scope.server, n + 1);
    this.inflight++;
    try {
      // A caller who went away is not the server failing: such errors pass the breaker wrapped.
      return await breaker.execute(() =>
        fn().catch((err: unknown) => {
          throw signal?.aborted ? new CallerAborted(err) : err;
        }),
      );
    } catch (err) {
      if (err instanceof CallerAborted) throw err.inner;
      if (err instanceof BrokenCircuitError) {
        throw new BrokerCapacityError(503, 'circuit_open', 'The MCP server is failing; calls are refused for a while.', this.o.breakerHalfOpenMs / 1000);
      }
      throw err;
    } finally {
      this.inflight--;
      const left = (this.perServer.get(scope.server) ?? 1) - 1;
      if (left === 0) this.perServer.delete(scope.server);
      else this.perServer.set(scope.server, left);
    }
  }

  /** Breakers open now (for /metrics). */
  openBreakers(): number {
    let n = 0;
    for (const b of this.breakers.values()) if (b.state === CircuitState.Open || b.state === CircuitState.Isolated) n++;
    return n;
  }

  /**
   * The breaker of a server URL as admins see it (SPEC §13): the worst state over every
   * credential scope that has one; "closed" when none has failed yet. A breaker whose
   * half-open delay has passed still reads "open" until the next call probes it.
   */
  breakerState(server: string): BreakerState {
    let worst: BreakerState = 'closed';
    for (const [key, b] of this.breakers.entries()) {
      if (key.slice(0, key.lastIndexOf('|')) !== server) continue;
      const s = stateName(b.state);
      if (BREAKER_RANK[s] > BREAKER_RANK[worst]) worst = s;
    }
    return worst;
  }

  /** Upstream MCP requests in flight now (for /metrics). */
  get inflightCount() {
    return this.inflight;
  }

  private breaker(key: string): CircuitBreakerPolicy {
    let b = this.breakers.get(key);
    if (!b) {
      const serverFault = handleWhen((err) => !(err instanceof CallerAborted) && isServerFault(err));
      b = circuitBreaker(serverFault, { halfOpenAfter: this.o.breakerHalfOpenMs, breaker: new ConsecutiveBreaker(this.o.breakerThreshold) });
      this.breakers.set(key, b);
    }
    return b;
  }
}

export type BreakerState = 'closed' | 'open' | 'half_open';
const BREAKER_RANK: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };
const stateName = (s: CircuitState): BreakerState =>
  s === CircuitState.Open || s === CircuitState.Isolated ? 'open' : s === CircuitState.HalfOpen ? 'half_open' : 'closed';

class CallerAborted extends Error {
  constructor(readonly inner: unknown) {
    super('aborted by the caller');
  }
}
