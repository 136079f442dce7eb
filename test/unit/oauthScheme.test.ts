import { schemeGuard } from '../../src/oauth/manager.js';
import { SecretValues } from '../../src/obs/logger.js';

describe('OAuth URL scheme guard', () => {
  const calls: string[] = [];
  const inner = async (url: string | URL) => {
    calls.push(String(url));
    return new Response('{}');
  };
  beforeEach(() => (calls.length = 0));

  it.each([
    ['https record: plain-http metadata URL refused', false, 'http://as.example/token', false],
    ['https record: https allowed', false, 'https://as.example/token', true],
    ['http record (admin chose http): http allowed', true, 'http://127.0.0.1:9/token', true],
    ['data: always refused', true, 'data:application/json,{}', false],
    ['file: always refused', true, 'file:///etc/passwd', false],
    ['credentials in the URL refused', false, 'https://u:p@as.example/token', false],
  ])('%s', async (_name, allowHttp, url, ok) => {
    const f = schemeGuard(inner as never, allowHttp);
    if (ok) {
      await f(url, {});
      expect(calls).toEqual([new URL(url).href]);
    } else {
      await expect(f(url, {})).rejects.toThrow(/refusing/);
      expect(calls).toEqual([]);
    }
  });
});

describe('SecretValues slots', () => {
  it('a renewed token replaces the old one instead of piling up', () => {
    const s = new SecretValues();
    s.setSlot('oauth-tokens:crm', 'access-token-0001', 'refresh-token-0001');
    for (let i = 2; i <= 500; i++) s.setSlot('oauth-tokens:crm', `access-token-${String(i).padStart(4, '0')}`, `refresh-token-${String(i).padStart(4, '0')}`);
    const all = s.all();
    expect(all).toContain('access-token-0500');
    // The generation it replaced is kept (a failure text written just after a renewal), no older one.
    expect(all).toContain('access-token-0499');
    expect(all).toContain('refresh-token-0499');
    expect(all).not.toContain('access-token-0498');
    expect(all).not.toContain('access-token-0001');
    // Each value has a few encoded forms; two values' worth, not a thousand.
    expect(all.length).toBeLessThan(20);
    // The same tokens again (adopted from the store): the previous generation stays.
    s.setSlot('oauth-tokens:crm', 'access-token-0500', 'refresh-token-0500');
    expect(s.all()).toContain('access-token-0499');
    s.setSlot('oauth-tokens:crm');
    expect(s.all()).toEqual([]);
  });
});

describe('MemoryKv', () => {
  it('expired entries (states never redeemed) are dropped as new ones are written', async () => {
    const { MemoryKv } = await import('../../src/oauth/store.js');
    const kv = new MemoryKv();
    for (let i = 0; i < 200; i++) await kv.set(`state:${i}`, 'sealed', 1);
    await new Promise((r) => setTimeout(r, 10));
    await kv.set('state:last', 'sealed', 60_000);
    expect(kv.size).toBe(1);
    expect(await kv.get('state:last')).toBe('sealed');
  });
});
