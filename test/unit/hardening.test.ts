import { isAddressAllowed, embeddedIPv4, parseCidrs } from '../../src/mcp/egress.js';
import { expandRefs, expansionEnv, isExpandable, MissingEnvVarError } from '../../src/config/expand.js';
import { authorizationProblem, credentialValueProblem, HeaderValueSchema, MIN_SECRET_LENGTH } from '../../src/config/headers.js';
import { expandSecrets, scrub, scrubJson, secretsOfHeaders } from '../../src/util/scrub.js';
import { exceedsDepth } from '../../src/util/depth.js';
import { SecretValues } from '../../src/obs/logger.js';
import { metricLabel } from '../../src/obs/metrics.js';
import { parseArguments } from '../../src/broker/arguments.js';
import ipaddr from 'ipaddr.js';

const strict = { allowPrivate: false, allowCidrs: [] };
const privateOk = { allowPrivate: true, allowCidrs: [] };

describe('item 10: embedded-IPv4 IPv6 forms', () => {
  const refused = [
    ['::7f00:1', 'IPv4-compatible 127.0.0.1'],
    ['::127.0.0.1', 'IPv4-compatible, dotted'],
    ['::a00:1', 'IPv4-compatible 10.0.0.1'],
    ['::808:808', 'IPv4-compatible public (deprecated form)'],
    ['::ffff:0:7f00:1', 'SIIT 127.0.0.1'],
    ['64:ff9b::7f00:1', 'NAT64 127.0.0.1'],
    ['64:ff9b::808:808', 'NAT64 public'],
    ['64:ff9b:1::a00:1', 'local-use NAT64'],
    ['2002:7f00:1::1', '6to4 127.0.0.1'],
    ['2002:808:808::1', '6to4 public'],
    ['2001:0:7f00:1::1', 'Teredo, server 127.0.0.1'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo'],
    ['[::7f00:1]', 'bracketed'],
  ];
  it.each(refused)('%s (%s) is refused by default', (ip) => expect(isAddressAllowed(ip, strict)).toBe(false));

  const metadata = ['::a9fe:a9fe', '::ffff:0:a9fe:a9fe', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::1', '2001:0:a9fe:a9fe::1', '2001:0:4136:e378:8000:63bf:5601:5601', '::6464:64c8'];
  it.each(metadata)('metadata inside %s is refused even with private networks or ::/0 allowed', (ip) => {
    expect(isAddressAllowed(ip, privateOk)).toBe(false);
    expect(isAddressAllowed(ip, { allowPrivate: false, allowCidrs: parseCidrs(['::/0', '0.0.0.0/0']) })).toBe(false);
  });

  it.each(['2606:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001::200e', '8.8.8.8', '::ffff:8.8.8.8'])('%s stays public', (ip) =>
    expect(isAddressAllowed(ip, strict)).toBe(true),
  );
  it.each(['::', '::1'])('%s keeps its own classification (refused)', (ip) => expect(isAddressAllowed(ip, strict)).toBe(false));

  it('embeddedIPv4 extracts every carried address', () => {
    const e = (ip: string) => embeddedIPv4(ipaddr.parse(ip) as ipaddr.IPv6).map(String);
    expect(e('::7f00:1')).toEqual(['127.0.0.1']);
    expect(e('64:ff9b::a00:1')).toEqual(['10.0.0.1']);
    expect(e('2002:c000:201::1')).toEqual(['192.0.2.1']);
    expect(e('2001:0:4136:e378:8000:63bf:3fff:fdd2')).toEqual(['65.54.227.120', '192.0.2.45']);
    expect(e('2606:4700::1111')).toEqual([]);
    expect(e('::1')).toEqual([]);
  });
  it('private networks allowed by the admin flag still reach embedded private forms, not metadata', () => {
    expect(isAddressAllowed('::7f00:1', privateOk)).toBe(true);
    expect(isAddressAllowed('::a9fe:a9fe', privateOk)).toBe(false);
  });
});

describe('item 5: BROKER_EXPAND_ENV', () => {
  it.each([
    ['CRM_TOKEN', undefined, true],
    ['GITHUB_TOKEN', undefined, true],
    ['BROKER_API_KEYS', undefined, false],
    ['BROKER_ADMIN_TOKEN', undefined, false],
    ['UPSTREAM_API_KEY', undefined, false],
    ['APPROVAL_WEBHOOK_SECRET', undefined, false],
    ['OTEL_EXPORTER_OTLP_HEADERS', undefined, false],
    ['BROKERX', undefined, true],
    ['CRM_TOKEN', 'CRM_*,GITHUB_TOKEN', true],
    ['GITHUB_TOKEN', 'CRM_*,GITHUB_TOKEN', true],
    ['GITHUB_TOKEN2', 'CRM_*,GITHUB_TOKEN', false],
    ['HOME', 'CRM_*,GITHUB_TOKEN', false],
    ['BROKER_API_KEYS', 'CRM_*', false],
    ['BROKER_CUSTOM', 'BROKER_CUSTOM', true],
    ['ANY', '*', true],
    ['CRM_TOKEN', ' CRM_* , ', true],
    ['CRM_TOKEN', '', true],
  ])('%s with BROKER_EXPAND_ENV=%s → %s', (name, allow, ok) => expect(isExpandable(name, allow)).toBe(ok));

  it('one error text for "not allowed" and "not set" (no existence oracle)', () => {
    const env = expansionEnv({ BROKER_API_KEYS: 'k1,k2', CRM_TOKEN: 'crm-token-value' }, undefined);
    const msg = (ref: string) => {
      try {
        expandRefs(`Bearer \${${ref}}`, env, 'headers.A');
      } catch (e) {
        expect(e).toBeInstanceOf(MissingEnvVarError);
        return (e as Error).message.replace(ref, 'NAME');
      }
      throw new Error('expanded');
    };
    expect(msg('BROKER_API_KEYS')).toBe(msg('BROKER_NOT_SET_ANYWHERE'));
    expect(msg('BROKER_API_KEYS')).toBe(msg('NOT_SET_ANYWHERE'));
    expect(msg('BROKER_API_KEYS')).not.toContain('k1');
    expect(expandRefs('Bearer ${CRM_TOKEN}', env, 'x')).toBe('Bearer crm-token-value');
  });
  it('the view is live and hides disallowed names from `in` too', () => {
    const src: NodeJS.ProcessEnv = {};
    const env = expansionEnv(src, 'CRM_*');
    src.CRM_LATE = 'late-value';
    src.OTHER = 'x';
    expect(env.CRM_LATE).toBe('late-value');
    expect('OTHER' in env).toBe(false);
    expect(env.OTHER).toBeUndefined();
  });
});

describe('item 2 and 9: header values and credentials', () => {
  const bad = ['a\rb-long-value', 'a\nb-long-value', 'nul\0-long-value', 'bell\x07-long-value', 'del\x7f-long-value', 'esc\x1b-long-value', 'euro€-long-value', 'emoji😀-long-value'];
  it.each(bad.map((v) => [JSON.stringify(v), v]))('%s is refused (fetch would throw)', (_n, v) => {
    expect(HeaderValueSchema.safeParse(v).success).toBe(false);
    expect(credentialValueProblem('X-A', v)).toMatch(/control characters/);
    expect(authorizationProblem(v)).toMatch(/control characters/);
  });
  it.each(['plain-value-123', 'tab\there-value', 'latin1-é-ÿ-value', 'q"uote\\back-value'])('%s is accepted', (v) => {
    expect(HeaderValueSchema.safeParse(v).success).toBe(true);
    expect(credentialValueProblem('X-A', v)).toBeUndefined();
  });
  it(`credentials shorter than ${MIN_SECRET_LENGTH} characters are refused`, () => {
    expect(MIN_SECRET_LENGTH).toBe(8);
    expect(credentialValueProblem('X-Api-Key', 'abc')).toMatch(/at least 8/);
    expect(credentialValueProblem('X-Token', '1234567')).toMatch(/at least 8/);
    expect(credentialValueProblem('X-Api-Key', '12345678')).toBeUndefined();
    // Headers that are not credentials by name may be short (they cannot be scrubbed, and are not secrets).
    expect(credentialValueProblem('X-Region', 'eu')).toBeUndefined();
    expect(credentialValueProblem('Authorization', 'Bearer abc')).toMatch(/after the authorization scheme/);
    expect(credentialValueProblem('authorization', 'Bearer abcdefgh')).toBeUndefined();
    expect(authorizationProblem('abc')).toMatch(/at least 8/);
    expect(authorizationProblem('   abcd   ')).toMatch(/at least 8/);
    expect(authorizationProblem('abcdefgh')).toBeUndefined();
  });
});

describe('item 9: scrubbing raw, JSON-escaped and URL-encoded forms', () => {
  const secret = 'se"cr\\et/va lue&1';
  const forms = expandSecrets([secret]);
  it('every form of a secret with " and \\ is scrubbed', () => {
    const texts = [
      `raw ${secret} end`,
      JSON.stringify({ authorization: secret }),
      JSON.stringify(JSON.stringify({ authorization: secret })),
      `url ${encodeURIComponent(secret)}`,
    ];
    for (const t of texts) {
      const out = scrub(t, forms);
      expect(out).toContain('<redacted>');
      for (const f of forms) expect(out).not.toContain(f);
    }
  });
  it('scrubJson scrubs strings and keys, keeps JSON valid, never recurses', () => {
    const v = { [secret]: [secret, { n: 1, s: `x${secret}y` }], ok: 'text' };
    expect(scrubJson(v, forms)).toEqual({ '<redacted>': ['<redacted>', { n: 1, s: 'x<redacted>y' }], ok: 'text' });
    // A secret that looks like the tail of an escape sequence cannot break anything.
    expect(scrubJson({ t: 'a\n1234567' }, expandSecrets(['n1234567']))).toEqual({ t: 'a\n1234567' });
    let deep: unknown = secret;
    for (let i = 0; i < 20_000; i++) deep = [deep];
    let out = scrubJson(deep, forms) as unknown;
    for (let i = 0; i < 20_000; i++) out = (out as unknown[])[0];
    expect(out).toBe('<redacted>');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(scrubJson(JSON.parse('{"__proto__":{"polluted":1}}'), forms))).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
  it('secretsOfHeaders and SecretValues carry every form', () => {
    const s = secretsOfHeaders({ Authorization: `Bearer ${secret}` });
    expect(scrub(JSON.stringify({ echoed: secret }), s)).not.toContain('cr\\\\et');
    const sv = new SecretValues();
    sv.addPermanent(secret);
    expect(scrub(JSON.stringify({ msg: `token ${secret}` }), sv.all())).toBe('{"msg":"token <redacted>"}');
  });
});

describe('item 8: nesting depth', () => {
  const nest = (n: number, leaf: unknown = 1) => {
    let v: unknown = leaf;
    for (let i = 0; i < n; i++) v = i % 2 ? [v] : { a: v };
    return v;
  };
  it.each([
    [0, 1, false],
    [1, 1, false],
    [2, 1, true],
    [64, 64, false],
    [65, 64, true],
    [100_000, 100, true],
  ])('%i levels against a limit of %i → exceeds %s', (n, max, exceeds) => expect(exceedsDepth(nest(n), max)).toBe(exceeds));
  it('wide but shallow values pass', () => expect(exceedsDepth({ a: Array.from({ length: 10_000 }, () => ({ b: [1] })) }, 4)).toBe(false));
  it('arguments: 64 levels pass, 65 and 5 000 are a 400 naming the field, as objects and as JSON text', () => {
    expect(parseArguments({ x: nest(63) }).text.length).toBeGreaterThan(0);
    for (const raw of [{ x: nest(64) }, JSON.stringify({ x: nest(64) }), { x: nest(5000) }, '{"x":' + '['.repeat(5000) + ']'.repeat(5000) + '}']) {
      expect(() => parseArguments(raw, 'tools[0].arguments')).toThrow(expect.objectContaining({ status: 400, code: 'invalid_value', param: 'tools[0].arguments' }));
    }
  });
});

describe('item 7: metric labels', () => {
  it('inline servers are one value; registered ones by label', () => {
    expect(metricLabel({ server_label: 'attacker_chosen_123', record: undefined })).toBe('inline');
    expect(metricLabel({ server_label: 'crm', record: { server_label: 'crm' } })).toBe('crm');
  });
});
