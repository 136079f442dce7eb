import type { RedisConnection } from './redis.js';

/** What one instance tells the others (SPEC §9: invalidation within 1 s). */
export type ClusterEvent =
  | { kind: 'registry'; label: string }
  | { kind: 'pins'; label: string }
  | { kind: 'tools_changed'; serverKey: string }
  | { kind: 'approval'; id: string }
  | { kind: 'response_cancel'; id: string };

export interface ClusterBus {
  publish(e: ClusterEvent): void;
  subscribe(handler: (e: ClusterEvent) => void): void;
  /** Resolves once the subscription is live. */
  ready(): Promise<void>;
}

/** A single instance has nobody to tell. */
export const localBus: ClusterBus = { publish() {}, subscribe() {}, ready: async () => undefined };

export class RedisBus implements ClusterBus {
  private readonly handlers: Array<(e: ClusterEvent) => void> = [];
  private readonly channel: string;
  private readonly subscribed: Promise<unknown>;
  /** Events this instance published itself, not to be handled twice. */
  private readonly origin = Math.random().toString(36).slice(2);

  constructor(private readonly conn: RedisConnection) {
    this.channel = conn.key('events');
    this.subscribed = conn.sub.subscribe(this.channel);
    conn.sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      let parsed: { origin: string; event: ClusterEvent };
      try {
        parsed = JSON.parse(message);
      } catch {
        return;
      }
      if (parsed.origin === this.origin) return;
      for (const h of this.handlers) h(parsed.event);
    });
  }

  publish(event: ClusterEvent) {
    // Best effort: a missed invalidation is bounded by listing TTLs and reload on reconnect.
    this.conn.cmd.publish(this.channel, JSON.stringify({ origin: this.origin, event })).catch(() => undefined);
  }

  subscribe(handler: (e: ClusterEvent) => void) {
    this.handlers.push(handler);
  }

  async ready() {
    await this.subscribed;
  }
}
