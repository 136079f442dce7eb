import pino from 'pino';
import { MemoryResponseStore, type ResponseStore } from '../src/responses/store.js';
import { RedisResponseStore } from '../src/responses/redisStore.js';
import { BackgroundRuns } from '../src/responses/background.js';
import { serializeEvent } from '../src/responses/sink.js';
import { RedisConnection } from '../src/store/redis.js';
import { localBus } from '../src/store/bus.js';
import { startRedis, type RedisFixture } from './fixtures/redis.js';

/**
 * Red team, unbounded state keyed by caller input: every background response records its
 * events (each `output_item.done` and the final event repeat the whole output, up to the
 * upstream cap per call). The embedded store bounded the responses by bytes but the event
 * logs only by count (10 000 logs × many MiB). They are bounded by bytes too.
 */
describe('red team: the embedded response store bounds background event logs by bytes', () => {
  it('300 logs of 1 MiB each: at most the byte bound is kept, the newest survive, and an oversized log is not kept whole', async () => {
    const store = new MemoryResponseStore({ maxEventBytes: 64 * 1024 * 1024 });
    const mib = 'x'.repeat(1024 * 1024);
    for (let i = 0; i < 300; i++) await store.appendEvent(`resp_${i}`, mib);
    let kept = 0;
    for (let i = 0; i < 300; i++) kept += (await store.events(`resp_${i}`, -1)).reduce((n, e) => n + e.length, 0);
    expect(kept).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(kept).toBeGreaterThan(32 * 1024 * 1024);
    expect(await store.events('resp_299', -1)).toHaveLength(1);
    expect(await store.events('resp_0', -1)).toHaveLength(0);
    // One log growing event by event is counted as it grows.
    for (let i = 0; i < 100; i++) await store.appendEvent('resp_big', mib);
    const big = await store.events('resp_big', -1);
    expect(big.length * mib.length).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  it('default bound (256 MiB)', async () => {
    const store = new MemoryResponseStore();
    const mib = 'y'.repeat(1024 * 1024);
    for (let i = 0; i < 400; i++) await store.appendEvent(`r${i}`, mib);
    let kept = 0;
    for (let i = 0; i < 400; i++) kept += (await store.events(`r${i}`, -1)).length;
    expect(kept).toBeLessThanOrEqual(256);
    expect(await store.events('r399', -1)).toHaveLength(1);
  });
});

/**
 * Red team, the shared store: one long background run grew its Redis event list without bound
 * (TTL only). Both stores bound each log by the same bytes with the same observable behaviour
 * (appendBounded): the oldest events go, sequence numbers stay, a replay after N gets the kept
 * events after N (from the oldest kept one when N is older), an event bigger than the bound is
 * not kept, and appends from two instances never race past the bound.
 */
describe('red team: background event logs are bounded by bytes on both stores', () => {
  let redis: RedisFixture;
  const conns: RedisConnection[] = [];
  const logger = pino({ level: 'silent' });
  const BOUND = 1000;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of conns) await c.close();
    await redis?.close();
  });

  const redisStore = async () => {
    const c = new RedisConnection(redis.url, logger);
    await c.connect();
    conns.push(c);
    return new RedisResponseStore(c, logger, { maxEventBytes: BOUND });
  };
  /** Two handles on one store: two instances for Redis, the same object embedded. */
  const stores: Array<[string, () => Promise<[ResponseStore, ResponseStore]>]> = [
    ['memory', async () => {
      const s = new MemoryResponseStore({ maxEventBytes: BOUND });
      return [s, s];
    }],
    ['redis', async () => [await redisStore(), await redisStore()]],
  ];
  const ev = (seq: number, pad = 80) => serializeEvent('response.output_text.delta', { delta: 'é'.repeat(pad / 2) }, seq);
  const seqs = (events: string[]) => events.map((e) => (JSON.parse(e) as { sequence_number: number }).sequence_number);
  const bytes = (events: string[]) => events.reduce((n, e) => n + Buffer.byteLength(e), 0);
  let n = 0;
  const newId = (name: string) => `resp_${name}_${process.pid}_${n++}`;

  it.each(stores)('%s: the oldest events go past the bound; sequence numbers and replays after N stay right', async (_name, make) => {
    const [s] = await make();
    const id = newId('trim');
    const size = Buffer.byteLength(ev(0));
    expect(size).toBeGreaterThan(100);
    for (let i = 0; i < 50; i++) await s.appendEvent(id, ev(i));
    const kept = await s.events(id, -1);
    const fit = Math.floor(BOUND / size);
    expect(bytes(kept)).toBeLessThanOrEqual(BOUND);
    expect(seqs(kept)).toEqual(Array.from({ length: fit }, (_, i) => 50 - fit + i));
    expect(await s.eventCount(id)).toBe(50);
    // After N: the kept events above N; N older than the oldest kept: from the oldest kept.
    expect(seqs(await s.events(id, 47))).toEqual([48, 49]);
    expect(seqs(await s.events(id, 5))).toEqual(seqs(kept));
    expect(await s.events(id, 49)).toEqual([]);
    expect(await s.events(id, 99)).toEqual([]);
  });

  it.each(stores)('%s: an event bigger than the bound is not kept, and the count goes on', async (_name, make) => {
    const [s] = await make();
    const id = newId('big');
    for (let i = 0; i < 3; i++) await s.appendEvent(id, ev(i));
    await s.appendEvent(id, ev(3, 2 * BOUND));
    expect(await s.events(id, -1)).toEqual([]);
    expect(await s.eventCount(id)).toBe(4);
    await s.appendEvent(id, ev(4));
    expect(seqs(await s.events(id, -1))).toEqual([4]);
    expect(seqs(await s.events(id, 3))).toEqual([4]);
    expect(await s.events(id, 4)).toEqual([]);
    expect(await s.eventCount(id)).toBe(5);
    // Deleted with its response: nothing left of the log.
    await s.delete(id);
    expect(await s.events(id, -1)).toEqual([]);
    expect(await s.eventCount(id)).toBe(0);
  });

  it.each(stores)('%s: appends from two instances at once stay within the bound, nothing counted twice', async (_name, make) => {
    const [a, b] = await make();
    const id = newId('race');
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).appendEvent(id, ev(i, 60 + (i % 7) * 10))));
    const kept = await a.events(id, -1);
    expect(kept.length).toBeGreaterThan(0);
    expect(bytes(kept)).toBeLessThanOrEqual(BOUND);
    // No more is dropped than needed: one more event (≤ the largest appended) would not have fit.
    expect(bytes(kept) + Buffer.byteLength(ev(0, 120))).toBeGreaterThan(BOUND);
    expect(await b.eventCount(id)).toBe(200);
    expect(await b.events(id, 200 - kept.length - 1)).toEqual(kept);
    expect(await a.events(id, 200 - kept.length)).toEqual(kept.slice(1));
  });

  it.each(stores)('%s: a replay of a trimmed run (starting_after) sends the kept events in order and ends at the terminal one', async (_name, make) => {
    const [s] = await make();
    const id = newId('replay');
    const runs = new BackgroundRuns({ store: s, bus: localBus, logger, leaseMs: 1000, maxRunning: 1 });
    await s.put({ id, owner: 'o', response: { id, status: 'completed', background: true, output: [] }, inputItems: [], transcript: [] });
    for (let i = 0; i < 30; i++) await s.appendEvent(id, ev(i));
    await s.appendEvent(id, serializeEvent('response.completed', { response: { id, status: 'completed' } }, 30));
    const replayed = async (after: number) => {
      const got: string[] = [];
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 10_000);
      await runs.replay(id, after, { send: (_type, json) => got.push(json), close: () => undefined }, ac.signal, (x) => x?.owner === 'o');
      clearTimeout(t);
      return got;
    };
    const all = await replayed(-1);
    const kept = await s.events(id, -1);
    expect(all).toEqual(kept);
    expect(seqs(all).at(-1)).toBe(30);
    expect(seqs(await replayed(27))).toEqual([28, 29, 30]);
    expect(seqs(await replayed(0))).toEqual(seqs(kept));
  });
});
