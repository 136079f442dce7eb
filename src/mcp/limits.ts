import { ConsecutiveBreaker, BrokenCircuitError, CircuitState, circuitBreaker, handleWhen, type CircuitBreakerPolicy } from 'cockatiel';
import { LRUCache } from 'lru-cache';
import { BrokerCapacityError, classifyUpstreamError } from './failure.js';

export interface LimitOptions {
  maxInflightPerOrigin: number;
  maxInflight: number;
  breakerThreshold: number;
  breakerHalfOpenMs: number;
}

/**
 * Fail-fast bounds on upstream MCP work (security.md E.24): in-flight counts per origin and
 * overall, and a per-origin circuit breaker that opens after consecutive transport failures.
 */
export class UpstreamLimits {
  private inflight = 0;
  private readonly perOrigin = new Map<string, number>();
  // Origins of inline servers are caller-chosen: keep the most recent breakers only.
  private readonly breakers = new LRUCache<string, CircuitBreakerPolicy>({ max: 10_000 });

  constructor(private readonly o: LimitOptions) {}

  async run<T>(origin: string, fn: () => Promise<T>): Promise<T> {
    // An open breaker refuses inside execute(), which is also where it moves to half-open.
    const breaker = this.breaker(origin);
    const n = this.perOrigin.get(origin) ?? 0;
    if (n >= this.o.maxInflightPerOrigin || this.inflight >= this.o.maxInflight) {
      throw new BrokerCapacityError(429, 'upstream_busy', 'Too many concurrent calls to the MCP server.', 1);
    }
    this.perOrigin.set(origin, n + 1);
    this.inflight++;
    try {
      return await breaker.execute(fn);
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        throw new BrokerCapacityError(503, 'circuit_open', 'The MCP server is failing; calls are refused for a while.', this.o.breakerHalfOpenMs / 1000);
      }
      throw err;
    } finally {
      this.inflight--;
      const left = (this.perOrigin.get(origin) ?? 1) - 1;
      if (left === 0) this.perOrigin.delete(origin);
      else this.perOrigin.set(origin, left);
    }
  }

  /** Origins whose breaker is open now (for /metrics). */
  openBreakers(): number {
    let n = 0;
    for (const b of this.breakers.values()) if (b.state === CircuitState.Open || b.state === CircuitState.Isolated) n++;
    return n;
  }

  /** Upstream MCP requests in flight now (for /metrics). */
  get inflightCount() {
    return this.inflight;
  }

  private breaker(origin: string): CircuitBreakerPolicy {
    let b = this.breakers.get(origin);
    if (!b) {
      // Only transport failures count; a tool's own error or a JSON-RPC error is a healthy server.
      const transportFailure = handleWhen((err) => {
        const f = classifyUpstreamError(err);
        return f.kind === 'http' && f.code !== 'egress_denied' && !(err instanceof BrokerCapacityError);
      });
      b = circuitBreaker(transportFailure, {
        halfOpenAfter: this.o.breakerHalfOpenMs,
        breaker: new ConsecutiveBreaker(this.o.breakerThreshold),
      });
      this.breakers.set(origin, b);
    }
    return b;
  }
}
