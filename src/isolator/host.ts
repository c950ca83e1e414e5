import type { Netns } from '../netlink/index.js';
import { IFA_F, IFF, LOOPBACK_IFINDEX, NUD, RT_SCOPE, type Rtnl } from '../rtnl/index.js';
import { ipv6Words } from '../tc/index.js';
import type { IsolatorConfig } from './config.js';
import { ConfigError } from './errors.js';
import { PortSet } from './port-set.js';

/** What the isolator needs to know about the host it acts on. */
export interface HostFacts {
  netns: Netns | undefined;
  eth0: { name: string; index: number; address: string; mtu: number };
  lo: { name: string; index: number; address: string; mtu: number };
  /** The host's public IPv4 address and prefix length on eth0; containers share it. */
  ip: string;
  prefixlen: number;
  gateway: string;
  /**
   * The gateway's MAC as the host's neighbour table has it (undefined: not resolved there yet).
   * Containers get it as a permanent neighbour, so none of them asks for it with ARP.
   */
  gatewayMac?: string;
  /** The host's own ip_local_port_range, inclusive. */
  localPortRange: [number, number];
  /** IPv6 shared with containers (--ipv6): absent when off, or 'auto' found no global address. */
  ipv6?: Ipv6Facts;
  /** --ipv6=on without a global IPv6 address: why creates are refused (other commands work). */
  ipv6Missing?: string;
}

/** The host's IPv6 addressing that containers share. */
export interface Ipv6Facts {
  /** eth0's global addresses (at most MAX_IPV6_ADDRESSES, in the kernel's order), each with its prefix length. */
  addresses: Array<{ address: string; prefixlen: number }>;
  /** The IPv6 default route's next hop (often link-local); undefined: containers get no IPv6 default route. */
  gateway?: string;
  /** Its MAC in the host's neighbour table, when resolved there (a container's permanent neighbour). */
  gatewayMac?: string;
}

/** The host's global IPv6 addresses steered to containers, at most: each costs its own link filters on eth0 and lo, and per container on its veth. */
export const MAX_IPV6_ADDRESSES = 4;

/**
 * Addresses not to share: not (yet, or any longer) usable as a source (still in DAD, failed it,
 * deprecated), and temporary (privacy) ones, which come and go (IFA_F_TEMPORARY is IFA_F_SECONDARY's bit).
 */
const UNUSABLE_IPV6 = IFA_F.TENTATIVE | IFA_F.DADFAILED | IFA_F.DEPRECATED | IFA_F.SECONDARY;

/** Neighbour states with a MAC worth copying (not INCOMPLETE or FAILED). */
const RESOLVED = NUD.REACHABLE | NUD.STALE | NUD.DELAY | NUD.PROBE | NUD.PERMANENT | NUD.NOARP;

/** The MAC of a neighbour entry worth copying (resolved), else undefined. */
export const resolvedMac = (n: { lladdr: string | undefined; state: number } | undefined): string | undefined =>
  n && n.lladdr && n.state & RESOLVED ? n.lladdr : undefined;

/** The MAC of `address` in the host's neighbour table on `ifindex`, when resolved. */
export async function resolvedNeighbour(rtnl: Rtnl, ifindex: number, address: string): Promise<string | undefined> {
  const family = address.includes(':') ? 'inet6' : 'inet';
  return resolvedMac((await rtnl.neighbours.list({ ifindex })).find((e) => e.address === address && e.family === family));
}

/**
 * eth0's IPv6 addressing for --ipv6: its global addresses (not temporary ones, which rotate; in
 * address order, so that the same set always gives the same layout), the IPv6 default route's
 * gateway and that gateway's MAC. Undefined when off, or when there is no global address (a
 * kernel without IPv6 has none): `auto` then means IPv4 only; `on` is the caller's error to raise
 * when something is to be built (ipv6MissingReason).
 */
export async function discoverIpv6(rtnl: Rtnl, mode: 'auto' | 'on' | 'off', eth0: { index: number; name: string }): Promise<Ipv6Facts | undefined> {
  if (mode === 'off') return undefined;
  const global = (await rtnl.addresses.list({ ifindex: eth0.index, family: 'inet6' }))
    .filter((a) => a.scope === RT_SCOPE.UNIVERSE && (a.flags & UNUSABLE_IPV6) === 0)
    .sort((a, b) => compareWords(ipv6Words(a.address), ipv6Words(b.address)));
  if (!global.length) return undefined;
  const def = await rtnl.routes.defaultRoute('inet6');
  const gateway = def && def.oif === eth0.index ? def.gateway : undefined;
  const gatewayMac = gateway ? await resolvedNeighbour(rtnl, eth0.index, gateway) : undefined;
  return {
    addresses: global.slice(0, MAX_IPV6_ADDRESSES).map((a) => ({ address: a.address, prefixlen: a.prefixlen })),
    ...(gateway ? { gateway } : {}),
    ...(gatewayMac ? { gatewayMac } : {}),
  };
}

const compareWords = (a: number[], b: number[]): number => a.reduce((d, w, i) => d || w - b[i]!, 0);

/** Why --ipv6=on cannot be met on this host. */
export const ipv6MissingReason = (eth0: string): string => `${eth0} has no global IPv6 address to share with containers (use --ipv6=auto or off)`;

/** Parse /proc/sys/net/ipv4/ip_local_port_range ('32768\t60999'). */
export function parseLocalPortRange(raw: string): [number, number] {
  const parts = raw.trim().split(/\s+/);
  if (parts.length !== 2) throw new Error(`Unexpected format from host ip_local_port_range: ${raw.trim()}`);
  const [b, e] = parts.map(Number) as [number, number];
  if (!Number.isInteger(b) || !Number.isInteger(e) || b < 1 || e > 65535 || b > e)
    throw new Error(`Unexpected format from host ip_local_port_range: ${raw.trim()}`);
  return [b, e];
}

/**
 * Find the host's public interface (--eth0_name, or the default route's), loopback, IPv4 address,
 * MAC, MTU and gateway, and check the ephemeral pool against the host's ip_local_port_range
 * (Mesos §1.3 steps 9, 13, 18). Failures are ConfigErrors naming the flag to fix.
 */
export async function discoverHost(rtnl: Rtnl, config: IsolatorConfig): Promise<HostFacts> {
  // Links one at a time, never a dump of them all: with a thousand containers' veths coming and
  // going, a dump of every link is interrupted (NLM_F_DUMP_INTR) again and again.
  const def = await rtnl.routes.defaultRoute();

  let eth0;
  if (config.eth0Name) {
    eth0 = await rtnl.links.find(config.eth0Name);
    if (!eth0) throw new ConfigError('eth0_name', `The public interface ${config.eth0Name} does not exist`);
  } else {
    eth0 = def?.oif !== undefined ? await rtnl.links.find(def.oif) : undefined;
    if (!eth0) throw new ConfigError('eth0_name', 'Network Isolator failed to find a public interface: the host has no IPv4 default route (pass --eth0_name)');
  }
  let lo;
  if (config.loName) {
    lo = await rtnl.links.find(config.loName);
    if (!lo) throw new ConfigError('lo_name', `The loopback interface ${config.loName} does not exist`);
  } else {
    lo = await rtnl.links.find(LOOPBACK_IFINDEX);
    if (!lo || (lo.flags & IFF.LOOPBACK) === 0) throw new ConfigError('lo_name', 'Network Isolator failed to find a loopback interface');
  }
  const addr = (await rtnl.addresses.list({ ifindex: eth0.index, family: 'inet' }))[0];
  if (!addr) throw new ConfigError('eth0_name', `Failed to get the public IP network of ${eth0.name}: does not have an IPv4 network`);
  if (!eth0.address || eth0.address.split(':').length !== 6)
    throw new ConfigError('eth0_name', `Failed to get the MAC address of ${eth0.name}: it has no Ethernet address`);
  const gateway = def?.gateway;
  if (!gateway) throw new ConfigError('eth0_name', 'Failed to get the default gateway of the host: The default gateway of the host does not exist');

  let localPortRange: [number, number];
  try {
    localPortRange = parseLocalPortRange(rtnl.readSysctl('net.ipv4.ip_local_port_range'));
  } catch (e) {
    throw new ConfigError('resources', `Failed to read host ip_local_port_range: ${(e as Error).message}`);
  }
  const hostRange = PortSet.ofRanges([localPortRange]);
  if (config.ephemeralPorts.intersects(hostRange)) {
    throw new ConfigError(
      'resources',
      `The specified ephemeral ports ${config.ephemeralPorts.toIntervalString()} intersect with the ephemeral ports used by the host [${localPortRange[0]},${localPortRange[1] + 1}) ` +
        `(move the host's net.ipv4.ip_local_port_range out of the pool, or choose other ephemeral_ports)`,
    );
  }
  const gatewayMac = await resolvedNeighbour(rtnl, eth0.index, gateway);
  const ipv6 = await discoverIpv6(rtnl, config.ipv6, eth0);
  return {
    ...(ipv6 ? { ipv6 } : {}),
    ...(!ipv6 && config.ipv6 === 'on' ? { ipv6Missing: ipv6MissingReason(eth0.name) } : {}),
    netns: rtnl.netns,
    ...(gatewayMac ? { gatewayMac } : {}),
    eth0: { name: eth0.name, index: eth0.index, address: eth0.address, mtu: eth0.mtu },
    lo: { name: lo.name, index: lo.index, address: lo.address ?? '00:00:00:00:00:00', mtu: lo.mtu },
    ip: addr.address,
    prefixlen: addr.prefixlen,
    gateway,
    localPortRange,
  };
}
