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

/** Pure: may the broker connect to this IP address under this policy? */
export function isAddressAllowed(ip: string, policy: EgressPolicy): boolean {
  const literal = ip.replace(/^\[|\]$/g, '');
  if (!ipaddr.isValid(literal)) return false;
  const addr = ipaddr.process(literal); // unwraps ::ffff:a.b.c.d
  if (METADATA.includes(addr.toNormalizedString())) return false;
  if (addr.range() === 'unicast') return true;
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
