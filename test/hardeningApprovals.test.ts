import pino from 'pino';
import { MemoryApprovalStore } from '../src/approvals/memoryStore.js';
import { RedisApprovalStore } from '../src/approvals/redisStore.js';
import { approvalBytes, nowS, type ApprovalRecord } from '../src/approvals/record.js';
import { TooManyPendingError, UnknownCursorError, type ApprovalStore } from '../src/approvals/store.js';
import { RedisBus } from '../src/store/bus.js';
import { RedisConnection } from '../src/store/redis.js';
import { newId } from '../src/util/ids.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';

/** Issue 10 item 3 at the store level: the same table against memory and a real redis-server. */

let seq = 0;
const rec = (owner: string, o: { args?: string; ttl?: number; status?: ApprovalRecord['status'] } = {}): ApprovalRecord => {
  const created_at = nowS() - 1;
  return {
    id: newId('mcpr'),
    status: o.status ?? 'pending',
    owner,
    mode: 'caller',
    server_label: 'fx',
    server_key: 'reg:fx',
    server_url: 'http://127.0.0.1:1/mcp',
    server_origin: 'http://127.0.0.1:1',
    name: `tool_${seq++}`,
    arguments: o.args ?? '{"a":1}',
    arguments_sha256: 'a'.repeat(64),
    tool_sha256: 'b'.repeat(64),
    created_at,
    expires_at: created_at + (o.ttl ?? 900),
    decided_at: null,
    reason: null,
  };
};

async function refusal(p: Promise<unknown>): Promise<TooManyPendingError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof TooManyPendingError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

let redis: RedisFixture;
let conn: RedisConnection;
beforeAll(async () => {
  redis = await startRedis();
  conn = new RedisConnection(redis.url, pino({ level: 'silent' }));
  await conn.connect();
});
afterAll(async () => {
  await conn.close();
  await redis.close();
});

const kinds: Array<[string, () => Promise<ApprovalStore>]> = [
  ['memory', async () => new MemoryApprovalStore()],
  [
    'redis',
    async () => {
      await redis.flush();
      const bus = new RedisBus(conn);
      await bus.ready();
      return new RedisApprovalStore(conn, bus);
    },
  ],
];

describe.each(kinds)('%s approval store: holding bounded per key', (_kind, make) => {
  let store: ApprovalStore;
  beforeEach(async () => {
    store = await make();
  });
  afterEach(async () => {
    await store.close();
  });
  const big = { maxCount: 1000, maxBytes: 1 << 30 };

  it('count: finished records are dropped (oldest first) to make room; live ones are refused with a Retry-After', async () => {
    const bound = { maxCount: 3, maxBytes: 1 << 30 };
    const a = [rec('A'), rec('A'), rec('A')];
    for (const r of a) await store.create(r, bound);
    const e = await refusal(store.create(rec('A'), bound));
    expect(e.reason).toBe('count');
    expect(e.retryAfterS).toBeGreaterThan(0);
    expect(e.retryAfterS).toBeLessThanOrEqual(900);
    await store.create(rec('B'), bound); // per key
    await store.transition(a[1]!.id, ['pending'], { status: 'approved', decided_at: nowS() });
    await refusal(store.create(rec('A'), bound)); // approved is live
    await store.transition(a[2]!.id, ['pending'], { status: 'denied', decided_at: nowS(), reason: 'no' });
    await store.transition(a[0]!.id, ['pending'], { status: 'denied', decided_at: nowS(), reason: 'no' });
    const fresh = rec('A');
    await store.create(fresh, bound);
    expect(await store.get(a[0]!.id)).toBeUndefined(); // the oldest finished one went
    expect((await store.get(a[2]!.id))?.status).toBe('denied'); // the other stays while it fits
    expect((await store.get(a[1]!.id))?.status).toBe('approved');
    expect((await store.get(fresh.id))?.status).toBe('pending');
  });

  it('expired records count until dropped, and are dropped first when room is needed', async () => {
    const bound = { maxCount: 2, maxBytes: 1 << 30 };
    const old = rec('A', { ttl: 1 });
    old.expires_at = nowS() - 1;
    await store.create(old, bound);
    const live = rec('A');
    await store.create(live, bound);
    await store.create(rec('A'), bound); // room made from the expired one
    expect(await store.get(old.id)).toBeUndefined();
    await refusal(store.create(rec('A'), bound));
    expect((await store.get(live.id))?.status).toBe('pending');
  });

  it('bytes: arguments count toward the key\'s bytes, and so do decision reasons', async () => {
    const args = JSON.stringify({ blob: 'x'.repeat(100_000) });
    const one = approvalBytes(rec('A', { args }));
    const bound = { maxCount: 1000, maxBytes: one * 2 + 1000 };
    const first = rec('A', { args });
    await store.create(first, bound);
    await store.create(rec('A', { args }), bound);
    const e = await refusal(store.create(rec('A', { args }), bound));
    expect(e.reason).toBe('bytes');
    await store.create(rec('A'), bound); // a small one still fits
    await store.create(rec('B', { args }), bound);
    // A long reason is held too: 600 bytes more than the remaining room.
    const tight = { maxCount: 1000, maxBytes: approvalBytes(rec('C')) * 2 + 500 };
    const c1 = rec('C');
    await store.create(c1, tight);
    await store.transition(c1.id, ['pending'], { status: 'approved', decided_at: nowS(), reason: 'r'.repeat(1100) });
    await refusal(store.create(rec('C'), tight));
    expect((await store.get(first.id))?.status).toBe('pending');
  });

  it('concurrent creates at the bound: exactly the bound succeeds', async () => {
    const bound = { maxCount: 5, maxBytes: 1 << 30 };
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => store.create(rec('A'), bound)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(results.filter((r) => r.status === 'rejected' && r.reason instanceof TooManyPendingError)).toHaveLength(15);
  });

  it('lists in creation order, paged with after, filtered by status', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const r = rec(i % 2 ? 'B' : 'A');
      await store.create(r, big);
      ids.push(r.id);
    }
    await store.transition(ids[3]!, ['pending'], { status: 'denied', decided_at: nowS(), reason: null });
    const p1 = await store.list({ limit: 3 });
    expect(p1.data.map((r) => r.id)).toEqual(ids.slice(0, 3));
    expect(p1.has_more).toBe(true);
    const p2 = await store.list({ limit: 3, after: ids[2] });
    expect(p2.data.map((r) => r.id)).toEqual(ids.slice(3, 6));
    const p3 = await store.list({ limit: 3, after: ids[5] });
    expect(p3).toEqual({ data: [expect.objectContaining({ id: ids[6] })], has_more: false });
    const pending = await store.list({ limit: 10, status: 'pending' });
    expect(pending.data.map((r) => r.id)).toEqual(ids.filter((_, i) => i !== 3));
    expect((await store.list({ limit: 10, status: 'denied' })).data.map((r) => r.id)).toEqual([ids[3]]);
    expect((await store.list({ limit: 2, status: 'pending', after: ids[3] })).data.map((r) => r.id)).toEqual([ids[4], ids[5]]);
    await expect(store.list({ limit: 3, after: 'mcpr_nope' })).rejects.toBeInstanceOf(UnknownCursorError);
  });

  it('create-and-cancel 200 times with 64 KiB arguments keeps the holding within its bytes', async () => {
    const args = JSON.stringify({ blob: 'y'.repeat(64 * 1024) });
    const bound = { maxCount: 1000, maxBytes: 1024 * 1024 };
    for (let i = 0; i < 200; i++) {
      const r = rec('A', { args });
      await store.create(r, bound);
      await store.transition(r.id, ['pending'], { status: 'denied', decided_at: nowS(), reason: 'cancelled by caller' });
    }
    let held = 0;
    let after: string | undefined;
    for (;;) {
      const page = await store.list({ limit: 100, after });
      for (const r of page.data) held += approvalBytes(r);
      if (!page.has_more) break;
      after = page.data.at(-1)!.id;
    }
    expect(held).toBeLessThanOrEqual(bound.maxBytes + 2000);
    expect(held).toBeGreaterThan(bound.maxBytes / 2);
  }, 30_000);
});

describe('ApprovalService: a per-key override of the holding bound', () => {
  it('create(…, { maxPending, maxBytes }) overrides the broker-wide bound for that call', async () => {
    const { ApprovalService } = await import('../src/approvals/service.js');
    const store = new MemoryApprovalStore();
    const svc = new ApprovalService(store, { ttlS: 900, maxPendingPerKey: 100, maxBytesPerKey: 1 << 30 });
    const a = (owner: string) => {
      const { id: _id, status: _s, created_at: _c, expires_at: _e, decided_at: _d, reason: _r, ...rest } = rec(owner);
      return rest;
    };
    await svc.create(a('K'), { maxPending: 1 });
    await expect(svc.create(a('K'), { maxPending: 1 })).rejects.toMatchObject({ status: 429, code: 'too_many_pending_approvals', message: expect.stringMatching(/1 approval requests/) });
    await svc.create(a('K')); // the broker-wide bound (100) otherwise
    await expect(svc.create(a('L'), { maxBytes: 100 })).rejects.toMatchObject({ status: 429, message: expect.stringMatching(/100 bytes/) });
    const e = await svc.create(a('K'), { maxPending: 2 }).catch((x) => x);
    expect(Number(e.headers['Retry-After'])).toBeGreaterThan(0);
    expect(Number(e.headers['Retry-After'])).toBeLessThanOrEqual(900);
    await store.close();
  });
});
