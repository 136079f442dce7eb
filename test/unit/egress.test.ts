import { isAddressAllowed, parseCidrs } from '../../src/mcp/egress.js';
import { checkCallerUrl } from '../../src/mcp/callerUrl.js';
import { ApiError } from '../../src/errors/index.js';

const strict = { allowPrivate: false, allowCidrs: [] };
const privateOk = { allowPrivate: true, allowCidrs: [] };

describe('address classifier', () => {
  const blocked = [
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.1.1',
    '100.64.0.1', '100.127.255.255', '0.0.0.0', '224.0.0.1', '255.255.255.255', '192.0.2.1', '198.18.0.1',
    '::1', '::', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:169.254.169.254', '64:ff9b::a00:1', '2002:a00:1::1', '[::1]',
  ];
  it.each(blocked)('%s is refused by default', (ip) => expect(isAddressAllowed(ip, strict)).toBe(false));

  const allowed = ['8.8.8.8', '1.1.1.1', '172.15.255.255', '172.32.0.0', '100.63.255.255', '100.128.0.0', '2606:4700::1111', '::ffff:8.8.8.8'];
  it.each(allowed)('%s is public', (ip) => expect(isAddressAllowed(ip, strict)).toBe(true));

  const metadata = ['169.254.169.254', '169.254.170.2', 'fd00:ec2::254', '100.100.100.200', '::ffff:169.254.169.254'];
  it.each(metadata)('metadata %s is refused even when private networks or a covering CIDR are allowed', (ip) => {
    expect(isAddressAllowed(ip, privateOk)).toBe(false);
    expect(isAddressAllowed(ip, { allowPrivate: false, allowCidrs: parseCidrs(['0.0.0.0/0', '::/0', '169.254.0.0/16']) })).toBe(false);
  });

  it('allowCidrs widens exactly its range', () => {
    const p = { allowPrivate: false, allowCidrs: parseCidrs(['127.0.0.0/8']) };
    expect(isAddressAllowed('127.0.0.1', p)).toBe(true);
    expect(isAddressAllowed('::ffff:127.0.0.1', p)).toBe(true);
    expect(isAddressAllowed('10.0.0.1', p)).toBe(false);
    expect(isAddressAllowed('::1', p)).toBe(false);
  });
  it('private networks allowed by an admin flag', () => {
    expect(isAddressAllowed('10.1.2.3', privateOk)).toBe(true);
    expect(isAddressAllowed('::1', privateOk)).toBe(true);
  });
  it('garbage is refused', () => expect(isAddressAllowed('not-an-ip', privateOk)).toBe(false));
  it('bad CIDRs are a configuration error', () => expect(() => parseCidrs(['10.0.0.0/99'])).toThrow(/BROKER_EGRESS_ALLOW_CIDRS/));
});

describe('caller URL check (before any I/O)', () => {
  it.each(['http://x.example', 'file:///etc/passwd', 'https://u:p@x.example/', 'gopher://x.example', 'https://x.example/#frag', 'ftp://x.example', `https://x.example/${'a'.repeat(2050)}`])(
    '%s → 400',
    (u) => {
      let err: unknown;
      try {
        checkCallerUrl(u, false, 'tool.server_url');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(400);
      expect((err as ApiError).param).toBe('tool.server_url');
    },
  );
  it('https is accepted; http only when widened', () => {
    expect(checkCallerUrl('https://mcp.example.com/mcp', false, 'p').origin).toBe('https://mcp.example.com');
    expect(checkCallerUrl('http://mcp.example.com/mcp', true, 'p').protocol).toBe('http:');
  });
  it('numeric host forms are normalized by the URL parser to one literal', () => {
    for (const h of ['0x7f000001', '2130706433', '127.1', '0177.0.0.1']) {
      expect(checkCallerUrl(`https://${h}/`, false, 'p').hostname).toBe('127.0.0.1');
    }
  });
});
