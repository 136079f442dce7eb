import pino, { type DestinationStream, type Logger } from 'pino';
import { LRUCache } from 'lru-cache';
import { expandSecrets, scrub } from '../util/scrub.js';

/**
 * Known secret values (tokens, keys, header values) to scrub from every log line: pino's
 * `redact` only covers field names (security.md D.19).
 */
export class SecretValues {
  private readonly permanent = new Set<string>();
  private readonly recent = new LRUCache<string, true>({ max: 2000 });
  /**
   * Values that replace each other (a server's current OAuth tokens): one bounded set per slot,
   * holding the current values and the ones they replaced (a log line or a server's error written
   * just after a renewal may still carry the old token). Renewals do not pile up.
   */
  private readonly slots = new Map<string, { current: string[]; previous: string[] }>();
  private sorted: string[] | undefined;

  /** The slot's values become these; the previous generation is kept, older ones are dropped. No values: the slot is emptied. */
  setSlot(slot: string, ...values: Array<string | undefined>) {
    const kept = values.filter((v): v is string => !!v && v.length >= 4);
    const had = this.slots.get(slot);
    if (!kept.length) this.slots.delete(slot);
    else if (!had) this.slots.set(slot, { current: kept, previous: [] });
    else if (kept.length !== had.current.length || kept.some((v, i) => v !== had.current[i])) {
      this.slots.set(slot, { current: kept, previous: had.current.filter((v) => !kept.includes(v)) });
    } else return;
    this.sorted = undefined;
  }

  addPermanent(...values: Array<string | undefined>) {
    for (const v of values) if (v && v.length >= 4) this.permanent.add(v);
    this.sorted = undefined;
  }
  addRecent(values: readonly string[]) {
    for (const v of values) {
      if (v.length < 4 || this.recent.has(v)) continue;
      this.recent.set(v, true);
      this.sorted = undefined;
    }
  }
  all(): string[] {
    // Raw, JSON-escaped and URL-encoded forms, longest first (util/scrub.ts).
    this.sorted ??= expandSecrets([...this.permanent, ...[...this.slots.values()].flatMap((v) => [...v.current, ...v.previous]), ...this.recent.keys()]);
    return this.sorted;
  }
}

export function createLogger(level: string, secrets: SecretValues, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      redact: {
        paths: [
          'authorization', '*.authorization', 'headers', '*.headers', 'req.headers', 'secret', '*.secret',
          'webhook_secret', '*.webhook_secret', 'token', '*.token', 'api_key', '*.api_key', 'server_url', '*.server_url',
        ],
        censor: '<redacted>',
      },
      hooks: { streamWrite: (s) => scrub(s, secrets.all()) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
