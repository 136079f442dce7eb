import { MemoryResponseStore } from '../src/responses/store.js';

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
