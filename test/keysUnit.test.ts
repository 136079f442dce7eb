import { createHash } from 'node:crypto';
import { liveHashes, mintKey, newKeyRecord, rotated, sha256OfKey } from '../src/keys/keys.js';
import { retryAfterSeconds, step } from '../src/keys/rateLimit.js';
import { KeyIndex } from '../src/keys/store.js';
import { keyView, type KeyRecord } from '../src/keys/schema.js';

const body = { name: 'k', grants: '*' as const, allow_inline_servers: false, rate_limit_per_min: null, max_pending_approvals: null };
const digest = (key: string) => createHash('sha256').update(key).digest();

describe('key records', () => {
  it('mints mcpb_ + ≥20 URL-safe characters, stored only as SHA-256', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const m = mintKey();
      expect(m.key).toMatch(/^mcpb_[A-Za-z0-9_-]{20,}$/);
      expect(m.sha256).toBe(createHash('sha256').update(m.key).digest('hex'));
      seen.add(m.key);
    }
    expect(seen.size).toBe(50);
    const rec = newKeyRecord(body, sha256OfKey('mcpb_x'));
    expect(JSON.stringify(keyView(rec))).not.toContain(sha256OfKey('mcpb_x'));
    expect(Object.keys(keyView(rec)).sort()).toEqual(['allow_inline_servers', 'created_at', 'grants', 'max_pending_approvals', 'name', 'rate_limit_per_min']);
  });

  it.each([
    [0, 1000, ['new']],
    [10, 1000, ['new', 'old']],
    [10, 11_000, ['new']],
  ])('rotate with grace %ss, checked %sms later → %j live', (grace, later, live) => {
    const now = 1_000_000;
    const rec = newKeyRecord(body, 'old'.padEnd(64, '0'), now);
    const next = rotated(rec, 'new'.padEnd(64, '0'), grace, now);
    expect(liveHashes(next, now + later).map((h) => h.sha256.replace(/0+$/, ''))).toEqual(live);
    expect(next.id).toBe(rec.id);
  });

  it('a second rotation never extends an earlier grace, and drops expired hashes', () => {
    const now = 1_000_000;
    const r1 = rotated(newKeyRecord(body, 'a'.repeat(64), now), 'b'.repeat(64), 5, now);
    const r2 = rotated(r1, 'c'.repeat(64), 3600, now + 1000);
    expect(r2.hashes.find((h) => h.sha256 === 'a'.repeat(64))?.expires_at_ms).toBe(now + 5000);
    const r3 = rotated(r2, 'd'.repeat(64), 10, now + 6000);
    expect(r3.hashes.map((h) => h.sha256[0])).toEqual(['d', 'c', 'b']); // 'a' had expired
  });

  it('KeyIndex finds live keys by digest only; removal and expiry refuse at once', () => {
    const idx = new KeyIndex();
    const k1 = mintKey();
    const k2 = mintKey();
    const rec: KeyRecord = rotated(newKeyRecord(body, k1.sha256), k2.sha256, 60);
    idx.set(rec);
    expect(idx.find(digest(k1.key))?.name).toBe('k');
    expect(idx.find(digest(k2.key))?.name).toBe('k');
    expect(idx.find(digest(k1.key), Date.now() + 61_000)).toBeUndefined();
    expect(idx.find(digest(k2.key), Date.now() + 61_000)?.name).toBe('k');
    expect(idx.find(digest('mcpb_other'))).toBeUndefined();
    expect(idx.find(Buffer.alloc(3))).toBeUndefined();
    idx.set({ ...rec, hashes: [rec.hashes[0]!] }); // a replaced record forgets old hashes
    expect(idx.find(digest(k1.key))).toBeUndefined();
    idx.remove('K');
    expect(idx.find(digest(k2.key))).toBeUndefined();
    expect(idx.size).toBe(0);
  });
});

describe('token bucket', () => {
  it('allows perMin at once, then refills at perMin per minute', () => {
    let b: { tokens: number; at: number } | undefined;
    const t0 = 1_000_000;
    for (let i = 0; i < 6; i++) {
      const s = step(b, 6, t0);
      expect(s.waitMs).toBe(0);
      b = s.bucket;
    }
    const refused = step(b, 6, t0);
    expect(refused.waitMs).toBeCloseTo(10_000);
    expect(step(refused.bucket, 6, t0 + 9_000).waitMs).toBeGreaterThan(0);
    expect(step(refused.bucket, 6, t0 + 10_000).waitMs).toBe(0);
    // Never more than the capacity, however long idle.
    let idle = step(refused.bucket, 6, t0 + 3_600_000).bucket;
    for (let i = 0; i < 5; i++) idle = step(idle, 6, t0 + 3_600_000).bucket;
    expect(step(idle, 6, t0 + 3_600_000).waitMs).toBeGreaterThan(0);
  });
  it.each([
    [1, 1],
    [999, 1],
    [1001, 2],
    [59_000, 59],
    [600_000, 60],
  ])('Retry-After for %sms is %ss (whole, 1–60)', (ms, s) => {
    expect(retryAfterSeconds(ms)).toBe(s);
  });
});
