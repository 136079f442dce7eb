export const REDACTED = '<redacted>';

/** Replaces every known secret value in a text (security.md D.19: redaction by value). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length >= 4 && out.includes(s)) out = out.split(s).join(REDACTED);
  return out;
}

/** A header value and, for `Bearer x`/`Basic x`, the bare token too. */
export function secretsOfHeaders(headers: Record<string, string>): string[] {
  const out: string[] = [];
  for (const v of Object.values(headers)) {
    out.push(v);
    const m = /^\s*\S+\s+(.+)$/.exec(v);
    if (m) out.push(m[1]!.trim());
  }
  return out.sort((a, b) => b.length - a.length);
}
