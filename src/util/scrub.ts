export const REDACTED = '<redacted>';

/** Shorter values are never scrubbed (they would mangle ordinary text); see MIN_SECRET_LENGTH for what callers may send. */
const MIN_SCRUB_LENGTH = 4;

/**
 * The forms in which a secret can appear in text that leaves the broker: raw, JSON-escaped
 * (once — inside a JSON text — and twice — a JSON text inside a JSON string, e.g. a tool's
 * structured content holding serialized headers) and URL-encoded. A secret with `"` or `\`
 * only shows up escaped once a server echoes it inside JSON.
 */
export function secretForms(secret: string): string[] {
  const forms = new Set<string>([secret]);
  const once = JSON.stringify(secret).slice(1, -1);
  forms.add(once);
  forms.add(JSON.stringify(once).slice(1, -1));
  try {
    forms.add(encodeURIComponent(secret));
  } catch {
    /* lone surrogate: no URL form */
  }
  return [...forms];
}

/** Every form of every secret, longest first, so a longer secret is replaced before a shorter one inside it. */
export function expandSecrets(secrets: Iterable<string>): string[] {
  const out = new Set<string>();
  for (const s of secrets) if (s.length >= MIN_SCRUB_LENGTH) for (const f of secretForms(s)) out.add(f);
  return [...out].sort((a, b) => b.length - a.length);
}

/** Expanded secret values (expandSecrets), or a scrubber that applies them. */
export type Secrets = readonly string[] | ((text: string) => string);

/** `text` with `secrets` applied, whichever form they come in. */
export const scrubWith = (text: string, secrets: Secrets): string => (typeof secrets === 'function' ? secrets(text) : scrub(text, secrets));

/** Several expanded lists as one (for scrub): distinct, longest first, so no shorter secret is replaced inside a longer one of another list. */
export function mergeSecrets(...lists: ReadonlyArray<readonly string[]>): string[] {
  const nonEmpty = lists.filter((l) => l.length > 0);
  if (nonEmpty.length <= 1) return [...(nonEmpty[0] ?? [])];
  return [...new Set(nonEmpty.flat())].sort((a, b) => b.length - a.length);
}

/**
 * Replaces every known secret value in a text (security.md D.19: redaction by value).
 * `secrets` should come from expandSecrets (or secretsOfHeaders, which expands).
 */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= MIN_SCRUB_LENGTH && out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/**
 * Scrubs every string inside a JSON value (object keys too) and returns a new value. Walks
 * with an explicit stack (no recursion: upstream content may be nested arbitrarily deep) and
 * scrubs each string as a string, so a replacement can never break a JSON escape sequence.
 */
export function scrubJson<T>(value: T, secrets: readonly string[]): T {
  if (secrets.length === 0) return value;
  const fix = (v: unknown): unknown => (typeof v === 'string' ? scrub(v, secrets) : v);
  const root: { v: unknown } = { v: value };
  const stack: Array<[Record<string, unknown> | unknown[], string | number, unknown]> = [[root as Record<string, unknown>, 'v', value]];
  while (stack.length) {
    const [parent, key, v] = stack.pop()!;
    if (v === null || typeof v !== 'object') {
      (parent as Record<string | number, unknown>)[key] = fix(v);
      continue;
    }
    if (Array.isArray(v)) {
      const copy: unknown[] = new Array(v.length);
      (parent as Record<string | number, unknown>)[key] = copy;
      for (let i = 0; i < v.length; i++) stack.push([copy, i, v[i]]);
    } else {
      const copy: Record<string, unknown> = {};
      (parent as Record<string | number, unknown>)[key] = copy;
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        const sk = scrub(k, secrets);
        Object.defineProperty(copy, sk, { value: undefined, writable: true, enumerable: true, configurable: true });
        stack.push([copy, sk, x]);
      }
    }
  }
  return root.v as T;
}

/** A header value and, for `Bearer x`/`Basic x`, the bare token too — in every form. */
export function secretsOfHeaders(headers: Record<string, string>): string[] {
  const raw: string[] = [];
  for (const v of Object.values(headers)) {
    raw.push(v, v.trim());
    const m = /^\s*\S+\s+(.+)$/.exec(v);
    if (m) raw.push(m[1]!.trim());
  }
  return expandSecrets(raw);
}
