import ipaddr from 'ipaddr.js';
import dns from 'node:dns';
import net from 'node:net';
import { Agent, buildConnector } from 'undici';

/** Cloud metadata endpoints: refused whatever an allow-list or a record's flag says. */
const METADATA = ['169.254.169.254', '169.254.170.2', '169.254.170.23', 'fd00:ec2::254', 'fd00:ec2::23', '100.100.100.200'].map(
  (a) => ipaddr.parse(a).toNormalizedString(),
);

export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

export interface EgressPolicy {
  /** Private, loopback and other non-unicast ranges allowed (admin `allow_private_network`, webhooks). */
  allowPrivate: boolean;
  /** Extra ranges allowed (BROKER_EGRESS_ALLOW_CIDRS). */
  allowCidrs: readonly Cidr[];
}

export class EgressDeniedError extends Error {
  readonly code = 'EGRESS_DENIED';
  constructor(readonly address: string) {
    super(`egress to ${address} is not allowed`);
  }
}

export function parseCidrs(list: readonly string[]): Cidr[] {
  return list.map((c) => {
    try {
      return c.includes('/') ? ipaddr.parseCIDR(c) : ([ipaddr.parse(c), ipaddr.parse(c).kind() === 'ipv4' ? 32 : 128] as Cidr);
    } catch {
      throw new Error(`BROKER_EGRESS_ALLOW_CIDRS: '${c}' is not an address or CIDR`);
    }
  });
}

const v4 = (parts: number[], hi: number, lo: number) => ipaddr.fromByteArray([parts[hi]! >> 8, parts[hi]! & 255, parts[lo]! >> 8, parts[lo]! & 255]) as ipaddr.IPv4;

/**
 * The IPv4 addresses an IPv6 address carries, for the forms that reach them: IPv4-compatible
 * (`::a.b.c.d`, ::/96, deprecated), SIIT (::ffff:0:0:0/96), NAT64 (64:ff9b::/96 and the
 * local-use 64:ff9b:1::/48), 6to4 (2002::/16) and Teredo (2001::/32: server and client).
 * (`::ffff:a.b.c.d` is unwrapped by `ipaddr.process` before this.)
 */
export function embeddedIPv4(addr: ipaddr.IPv6): ipaddr.IPv4[] {
  const p = addr.parts;
  const zero = (from: number, to: number) => p.slice(from, to).every((x) => x === 0);
  if (zero(0, 6) && !(p[6] === 0 && p[7]! <= 1)) return [v4(p, 6, 7)];
  if (zero(0, 4) && p[4] === 0xffff && p[5] === 0) return [v4(p, 6, 7)];
  if (p[0] === 0x64 && p[1] === 0xff9b && (zero(2, 6) || p[2] === 1)) return [v4(p, 6, 7)];
  if (p[0] === 0x2002) return [v4(p, 1, 2)];
  if (p[0] === 0x2001 && p[1] === 0) return [v4(p, 2, 3), v4([p[6]! ^ 0xffff, p[7]! ^ 0xffff], 0, 1)];
  return [];
}

/** Pure: may the broker connect to this IP address under this policy? */
export function isAddressAllowed(ip: string, policy: EgressPolicy): boolean {
  const literal = ip.replace(/^\[|\]$/g, '');
  if (!ipaddr.isValid(literal)) return false;
  const addr = ipaddr.process(literal); // unwraps ::ffff:a.b.c.d
  if (METADATA.includes(addr.toNormalizedString())) return false;
  // Embedded-IPv4 forms are never public unicast: refused like private ranges, and a
  // metadata address inside one is refused whatever the policy says.
  const embedded = addr.kind() === 'ipv6' ? embeddedIPv4(addr as ipaddr.IPv6) : [];
  if (embedded.some((e) => METADATA.includes(e.toNormalizedString()))) return false;
  if (addr.range() === 'unicast' && embedded.length === 0) return true;
  if (policy.allowPrivate) return true;
  return policy.allowCidrs.some(([net, bits]) => net.kind() === addr.kind() && addr.match(net, bits));
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/**
 * An undici Agent whose every connection is checked at connect time: IP literals directly
 * (Node does no lookup for them) and every resolved address (so DNS rebinding gains nothing).
 */
export function createGuardedAgent(policy: EgressPolicy, connectTimeoutMs = 5000): Agent {
  const lookup = (hostname: string, options: dns.LookupOptions, cb: LookupCallback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return cb(err, []);
      const denied = addresses.find((a) => !isAddressAllowed(a.address, policy));
      if (denied || addresses.length === 0) return cb(new EgressDeniedError(denied?.address ?? hostname) as never, []);
      // Node 20's autoSelectFamily asks for all addresses and needs an array back.
      if (options.all) return cb(null, addresses);
      cb(null, addresses[0]!.address, addresses[0]!.family);
    });
  };
  const connector = buildConnector({ timeout: connectTimeoutMs, lookup } as buildConnector.BuildOptions);
  return new Agent({
    connect(opts, cb) {
      const host = opts.hostname.replace(/^\[|\]$/g, '');
      if (net.isIP(host) && !isAddressAllowed(host, policy)) {
        cb(new EgressDeniedError(host), null);
        return;
      }
      connector(opts, cb);
    },
  });
}

/** Walks an error's cause chain for an egress refusal. */
export function findEgressDenied(err: unknown): EgressDeniedError | undefined {
  for (let e = err, i = 0; e && i < 8; e = (e as { cause?: unknown }).cause, i++) {
    if (e instanceof EgressDeniedError || (e as { code?: string }).code === 'EGRESS_DENIED') return e as EgressDeniedError;
  }
  return undefined;
}

/** Policies are few; share one Agent (and its connection pool) per distinct policy. */
export class AgentPool {
  private readonly agents = new Map<string, Agent>();
  get(policy: EgressPolicy): Agent {
    const key = `${policy.allowPrivate}|${policy.allowCidrs.map(([a, b]) => `${a.toString()}/${b}`).join(',')}`;
    let agent = this.agents.get(key);
    if (!agent) this.agents.set(key, (agent = createGuardedAgent(policy)));
    return agent;
  }
  async close() {
    await Promise.all([...this.agents.values()].map((a) => a.close().catch(() => undefined)));
    this.agents.clear();
  }
}
