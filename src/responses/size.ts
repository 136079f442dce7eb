/**
 * A rough byte size of stored conversations without serializing them whole each time: a
 * conversation's entries are shared by reference from one response to the next, so each
 * entry's serialized length is computed once and remembered (entries are not changed once
 * stored). Stringifying the whole transcript on every store made a conversation O(n²).
 */
const sizes = new WeakMap<object, number>();

export function entrySize(e: object): number {
  let n = sizes.get(e);
  if (n === undefined) {
    n = JSON.stringify(e)?.length ?? 0;
    sizes.set(e, n);
  }
  return n;
}

/** ≈ JSON.stringify(entries).length. */
export function transcriptSize(entries: readonly object[]): number {
  let n = entries.length ? 1 : 2; // brackets, and a comma between entries
  for (const e of entries) n += entrySize(e) + 1;
  return n;
}
