import { LRUCache } from 'lru-cache';
import { UpstreamSession, type Remembered, type SessionOptions, type SessionTarget } from './session.js';

export interface PoolOptions {
  /** Sessions unused this long are closed (inline servers especially). */
  idleMs: number;
  max: number;
  onToolsChanged: (key: string) => void;
  onError?: (key: string, err: Error) => void;
}

/** Long-lived sessions keyed by (server, credential-set hash); idle ones are closed. */
export class SessionPool {
  private readonly memo = new LRUCache<string, Remembered>({ max: 10_000 });
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

  /** The session for `key`; `target` is worked out only when a new one must be made. */
  get(key: string, target: () => SessionTarget): UpstreamSession {
    let s = this.sessions.get(key);
    if (!s) {
      const t = target();
      const sessionOpts: SessionOptions = {
        memo: this.memo,
        onToolsChanged: () => this.opts.onToolsChanged(key),
        onError: (e) => this.opts.onError?.(key, e),
      };
      s = new UpstreamSession({ ...t, key }, sessionOpts);
      this.sessions.set(key, s);
    }
    return s;
  }

  peek(key: string): UpstreamSession | undefined {
    return this.sessions.peek(key);
  }

  /** Closes every session whose key starts with `prefix` (a server's records changed). */
  drop(prefix: string): void {
    for (const k of [...this.sessions.keys()]) if (k.startsWith(prefix)) this.sessions.delete(k);
    // What worked is remembered per server (`serverKey|url`): a PUT forgets it.
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
