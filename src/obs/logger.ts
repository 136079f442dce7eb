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
  /** Values that replace each other (a server's current OAuth tokens): one bounded set per slot. */
  private readonly slots = new Map<string, string[]>();
  private sorted: string[] | undefined;

  /** The slot's values become these (the previous ones are dropped): renewals do not pile up. */
  setSlot(slot: string, ...values: Array<string | undefined>) {
    const kept = values.filter((v): v is string => !!v && v.length >= 4);
    if (kept.length) this.slots.set(slot, kept);
    else this.slots.delete(slot);
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
    this.sorted ??= expandSecrets([...this.permanent, ...[...this.slots.values()].flat(), ...this.recent.keys()]);
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
