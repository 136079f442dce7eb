export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function summarize(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  return { n: s.length, p50: percentile(s, 50), p99: percentile(s, 99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

export const ms = (x: number) => `${x.toFixed(3)} ms`;

/**
 * A fresh order for interleaved variants each round, from a seeded generator (mulberry32, so
 * runs are reproducible). A rotation keeps the cyclic order: one variant always ran right
 * after the same other one and paid for what that one left behind (its GC, a peer still
 * busy). In the cached-listing comparison the broker followed the direct SDK listTools three
 * rounds in four; measured 2026-12-02 in one harness, broker ÷ bare node:http was 1.61–1.75
 * rotated and 1.37 shuffled.
 */
export function shuffler(seed = 1): <T>(xs: readonly T[]) => T[] {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (xs) => {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  };
}
