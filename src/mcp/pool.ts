import { LRUCache } from 'lru-cache';
import { UpstreamSession, type SessionOptions, type SessionTarget, type TransportKind } from './session.js';

export interface PoolOptions {
  connectTimeoutMs: number;
  /** Sessions unused this long are closed (inline servers especially). */
  idleMs: number;
  max: number;
  onToolsChanged: (key: string) => void;
  onError?: (key: string, err: Error) => void;
}

/** Long-lived sessions keyed by (server, credential-set hash); idle ones are closed. */
export class SessionPool {
  private readonly memo = new LRUCache<string, TransportKind>({ max: 10_000 });
  private readonly sessions: LRUCache<string, UpstreamSession>;

  constructor(private readonly opts: PoolOptions) {
    this.sessions = new LRUCache<string, UpstreamSession>({
      max: opts.max,
      ttl: opts.idleMs,
      ttlAutopurge: true,
      updateAgeOnGet: true,
      dispose: (s) => void s.close(),
    });
  }

  get(target: SessionTarget): UpstreamSession {
    let s = this.sessions.get(target.key);
    if (!s) {
      const sessionOpts: SessionOptions = {
        connectTimeoutMs: this.opts.connectTimeoutMs,
        transportMemo: this.memo,
        onToolsChanged: () => this.opts.onToolsChanged(target.key),
        onError: (e) => this.opts.onError?.(target.key, e),
      };
      s = new UpstreamSession(target, sessionOpts);
      this.sessions.set(target.key, s);
    }
    return s;
  }

  peek(key: string): UpstreamSession | undefined {
    return this.sessions.peek(key);
  }

  /** Closes every session whose key starts with `prefix` (a server's records changed). */
  drop(prefix: string): void {
    for (const k of [...this.sessions.keys()]) if (k.startsWith(prefix)) this.sessions.delete(k);
    for (const k of [...this.memo.keys()]) if (k.startsWith(prefix)) this.memo.delete(k);
  }

  get size(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.close()));
  }
}
