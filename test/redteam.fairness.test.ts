import { startFakeModel, type FakeModel } from './fixtures/fakeModel.js';
import { ADMIN, startBroker, type TestBroker } from './fixtures/broker.js';

/**
 * Red team, rate limit × background mode: one key's background runs must not take every
 * slot of the instance (each start is one request, well under the key's rate limit, but
 * the run goes on for as long as the model takes). Tenant B keeps room.
 */
describe('red team: background capacity is shared fairly between keys', () => {
  let model: FakeModel;
  let b: TestBroker;

  beforeAll(async () => {
    model = await startFakeModel();
    b = await startBroker({ env: { UPSTREAM_BASE_URL: model.url, BROKER_MAX_BACKGROUND_RESPONSES: '4', BROKER_MAX_BACKGROUND_PER_KEY: '2' } });
  });
  afterAll(async () => {
    await b.close();
    await model.close();
  });

  it("key A fills its share (429 beyond it), key B still starts; A's room comes back when its runs end", async () => {
    const admin = (method: string, path: string, body?: unknown) => b.call(method, path, { token: ADMIN, body });
    const keyA = (await admin('POST', '/admin/keys', { name: 'a', grants: '*', rate_limit_per_min: 600 })).body.key;
    const keyB = (await admin('POST', '/admin/keys', { name: 'b', grants: '*' })).body.key;
    model.push(...Array.from({ length: 8 }, () => ({ text: 'slow', delayMs: 1500 })));
    const start = (key: string) => b.call('POST', '/v1/responses', { token: key, body: { model: 'm', input: 'x', background: true } });
    const a = [];
    for (let i = 0; i < 4; i++) a.push(await start(keyA));
    expect(a.map((r) => r.status)).toEqual([200, 200, 429, 429]);
    expect(a[2]!.body.error.code).toBe('too_many_background_responses');
    expect(a[2]!.headers.get('retry-after')).toBeTruthy();
    const rb = await start(keyB);
    expect(rb.status).toBe(200);
    // Cancelling one of A's runs gives A its room back.
    expect((await b.call('POST', `/v1/responses/${a[0]!.body.id}/cancel`, { token: keyA })).body.status).toBe('cancelled');
    const again = await start(keyA);
    expect(again.status).toBe(200);
    for (const [id, key] of [[a[1]!.body.id, keyA], [rb.body.id, keyB], [again.body.id, keyA]]) await b.call('POST', `/v1/responses/${id}/cancel`, { token: key });
  });
});
