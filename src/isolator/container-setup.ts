/**
 * The container's side (Mesos §2.3, done without a shell script): loopback and eth0 configured
 * like the host's, the host IP and default route, the container's sysctls, and its tc objects.
 */
import type { Request } from '../netlink/index.js';
import { IPV4_DEVCONF, NUD, SysctlDir, addressRequests, linkRequests, neighbourRequests, routeRequests } from '../rtnl/index.js';
import { filterRequest } from '../tc/index.js';
import type { HostFacts } from './host.js';
import type { ContainerView, TcContext } from './plan.js';
import { containerBaseFilters, containerFilters, containerPortFilters, shapingPlan, tcObjectRequest } from './plan.js';

/** Requests for the container's namespace, in order; sent as one batch. */
export function containerRequests(h: HostFacts, c: ContainerView, hostView: { ip: string; mac: string; eth0: number; lo: number }, ctx: TcContext): Request[] {
  return [...containerStaticRequests(h, c), ...containerFilters(hostView, c).map((o) => tcObjectRequest(o, 'add', ctx))];
}

/** The part that does not depend on the container: lo and eth0 like the host's, the host IP and default route. */
export function containerStaticRequests(h: HostFacts, c: { cLo: number; cEth0: number }): Request[] {
  return [
    // accept_local: packets from "our own" IP arrive from outside; route_localnet on lo.
    linkRequests.set(c.cLo, {
      address: h.eth0.address,
      mtu: h.eth0.mtu,
      up: true,
      ipv4Devconf: { [IPV4_DEVCONF.ACCEPT_LOCAL]: 1, [IPV4_DEVCONF.ROUTE_LOCALNET]: 1 },
    }),
    linkRequests.set(c.cEth0, { up: true, ipv4Devconf: { [IPV4_DEVCONF.ACCEPT_LOCAL]: 1 } }),
    addressRequests.add({ ifindex: c.cEth0, address: `${h.ip}/${h.prefixlen}` }),
    routeRequests.add({ dst: 'default', gateway: h.gateway, oif: c.cEth0 }),
    // The gateway as a permanent neighbour: ARP requests to the host are no longer copied to
    // containers, and this way none needs one for the gateway (replies are still copied, for others).
    ...(h.gatewayMac ? [gatewayNeighbourRequest(h, c.cEth0)] : []),
  ];
}

/** The container's permanent neighbour entry for the gateway, with the MAC the host has for it. */
export const gatewayNeighbourRequest = (h: HostFacts, cEth0: number): Request =>
  neighbourRequests.replace({ ifindex: cEth0, address: h.gateway, lladdr: h.gatewayMac!, state: NUD.PERMANENT });

/** A warm-pool spare's part: the static requests and the tc objects that do not depend on ports. */
export function spareContainerRequests(
  h: HostFacts,
  c: { cLo: number; cEth0: number },
  hostView: { ip: string; mac: string; eth0: number; lo: number },
  ctx: TcContext,
): Request[] {
  return [...containerStaticRequests(h, c), ...containerBaseFilters(hostView, c).map((o) => tcObjectRequest(o, 'add', ctx))];
}

/** What a container made from a spare still needs: its ports' filters and its egress shaping. */
export function adoptedContainerRequests(c: ContainerView, ctx: TcContext): Request[] {
  const shaping = c.egress && !c.shaper ? shapingPlan(c.cEth0, c.egress, c.fqCodel, c.mtu) : [];
  return [...containerPortFilters(c).map((s) => filterRequest('add', s)), ...shaping.map((o) => tcObjectRequest(o, 'add', ctx))];
}

/**
 * Sysctls inside the container that netlink cannot set: its ephemeral block as
 * ip_local_port_range, and IPv6 off (the isolator steers IPv4 only), for devices there now and
 * any made later. Call inside the container's namespace (Netns.run).
 */
export function writeContainerSysctlsHere(ephemeral: { begin: number; end: number } | undefined, procRoot = '/proc', ipv6Off = true): void {
  // One walk through /proc/sys (its cost grows with the number of namespaces), then relative writes.
  const net = SysctlDir.openHere(['net'], procRoot);
  try {
    if (ephemeral) net.write(['ipv4', 'ip_local_port_range'], `${ephemeral.begin} ${ephemeral.end}`);
    if (!ipv6Off) return;
    try {
      // `all` also sets `default` (addrconf_disable_ipv6), so devices made later start with IPv6 off.
      net.write(['ipv6', 'conf', 'all', 'disable_ipv6'], '1');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; // a kernel without IPv6
    }
  } finally {
    net.close();
  }
}
