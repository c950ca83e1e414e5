/**
 * The container's side (Mesos §2.3, done without a shell script): loopback and eth0 configured
 * like the host's, the host IP and default route, the container's sysctls, the routing of what it
 * sends to itself, and its egress shaping.
 */
import type { Request } from '../netlink/index.js';
import { IPV4_DEVCONF, NUD, SysctlDir, addressRequests, linkRequests, neighbourRequests, routeRequests, ruleRequests } from '../rtnl/index.js';
import type { HostFacts } from './host.js';
import type { ContainerView, HostView, SelfRoutingHost, SelfRoutingPlan, TcContext } from './plan.js';
import { selfPortRules, selfRoutingBase, shapingPlan, tcObjectRequest } from './plan.js';

/**
 * The container's namespace, in order, after the host batch; sent as one batch. Its egress shaping
 * comes first, while eth0 is still down: grafting a qdisc onto an up device makes the kernel wait
 * for an RCU grace period (dev_deactivate) under the rtnl lock. Then lo and eth0 like the host's,
 * and the routing that keeps what it sends to its own ports in it (plan-self.ts), its routes after
 * eth0's address and default route, which they go through.
 */
export function containerRequests(h: HostFacts, c: ContainerView, hostView: HostView, ctx: TcContext): Request[] {
  const shaping = c.egress && !c.shaper ? shapingPlan(c.cEth0, c.egress, c.fqCodel, c.mtu) : [];
  return [...shaping.map((o) => tcObjectRequest(o, 'add', ctx)), ...spareContainerRequests(h, c), ...selfPortRules(hostView, c.blocks).map(ruleRequests.add)];
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
    // route_localnet on eth0 too: 127.0.0.1:<its port> from the host's services arrives on eth0
    // (steered by the host's lo port table) and is taken as it is (Mesos redirected it to lo).
    linkRequests.set(c.cEth0, { up: true, ipv4Devconf: { [IPV4_DEVCONF.ACCEPT_LOCAL]: 1, [IPV4_DEVCONF.ROUTE_LOCALNET]: 1 } }),
    addressRequests.add({ ifindex: c.cEth0, address: `${h.ip}/${h.prefixlen}` }),
    routeRequests.add({ dst: 'default', gateway: h.gateway, oif: c.cEth0 }),
    // The gateway as a permanent neighbour: ARP requests to the host are no longer copied to
    // containers, and this way none needs one for the gateway (replies are still copied, for others).
    ...(h.gatewayMac ? [gatewayNeighbourRequest(h, c.cEth0)] : []),
    ...containerIpv6Requests(h, c.cEth0),
  ];
}

/**
 * IPv6 (--ipv6): the host's global addresses with their prefixes (no DAD: the sysctls turned it
 * off, and the host holds them), the IPv6 default route and the gateway as a permanent neighbour.
 */
function containerIpv6Requests(h: HostFacts, cEth0: number): Request[] {
  const v6 = h.ipv6;
  if (!v6) return [];
  return [
    ...v6.addresses.map((a) => addressRequests.add({ ifindex: cEth0, address: `${a.address}/${a.prefixlen}` })),
    ...(v6.gateway ? [routeRequests.add({ dst: 'default', gateway: v6.gateway, oif: cEth0 })] : []),
    ...(v6.gateway && v6.gatewayMac ? [gateway6NeighbourRequest(h, cEth0)] : []),
  ];
}

/** The container's permanent neighbour entry for the IPv6 gateway, with the MAC the host has for it. */
export const gateway6NeighbourRequest = (h: HostFacts, cEth0: number): Request =>
  neighbourRequests.replace({ ifindex: cEth0, address: h.ipv6!.gateway!, lladdr: h.ipv6!.gatewayMac!, state: NUD.PERMANENT });

/** The container's permanent neighbour entry for the gateway, with the MAC the host has for it. */
export const gatewayNeighbourRequest = (h: HostFacts, cEth0: number): Request =>
  neighbourRequests.replace({ ifindex: cEth0, address: h.gateway, lladdr: h.gatewayMac!, state: NUD.PERMANENT });

/** What does not depend on the container's ports (a warm-pool spare's part): lo and eth0 like the host's, the host IP and default route, the routing of what it sends to itself. */
export function spareContainerRequests(h: HostFacts, c: { cLo: number; cEth0: number }): Request[] {
  return [...containerStaticRequests(h, c), ...selfRoutingRequests(selfRoutingBase(selfRoutingHost(h), c.cEth0), c.cEth0)];
}

/** What a container made from a spare still needs: the rules of its own ports and its egress shaping. */
export function adoptedContainerRequests(hostView: HostView, c: ContainerView, ctx: TcContext): Request[] {
  const shaping = c.egress && !c.shaper ? shapingPlan(c.cEth0, c.egress, c.fqCodel, c.mtu) : [];
  return [...selfPortRules(hostView, c.blocks).map(ruleRequests.add), ...shaping.map((o) => tcObjectRequest(o, 'add', ctx))];
}

/** What the container's "to itself" routing needs of the host's facts. */
export function selfRoutingHost(h: HostFacts): SelfRoutingHost {
  const v6 = h.ipv6;
  return { ip: h.ip, mac: h.eth0.address, ...(v6 ? { ip6: v6.addresses.map((a) => a.address) } : {}) };
}

/** Adding a "to itself" plan on eth0 `cEth0`: its rules (the local table's at its new place among them), neighbours and routes, then the local table's rule taken from preference 0. */
export function selfRoutingRequests(p: SelfRoutingPlan, cEth0: number): Request[] {
  return [
    ...p.rules.map(ruleRequests.add),
    ...p.neighbours.addresses.map((address) => neighbourRequests.replace({ ifindex: cEth0, address, lladdr: p.neighbours.mac, state: NUD.PERMANENT })),
    ...p.routes.map(routeRequests.add),
    ...p.localRuleMoved.map(ruleRequests.delete),
  ];
}

/** IPv6 in a container's namespace: off (Mesos), or on for its interface `ifname`. */
export type ContainerIpv6 = { off: true } | { off: false; ifname: string };

/**
 * Sysctls inside the container that netlink cannot set: its ephemeral block as
 * ip_local_port_range (the kernel applies it to IPv6 sockets too), and IPv6 either off, for devices
 * there now and any made later, or on for its interface without autoconfiguration: no link-local
 * address (it would be the host's own, from the same MAC), no DAD (the host holds the address), no
 * router advertisements. Call inside the container's namespace (Netns.run), before its interfaces
 * are up. `ipv6` undefined: leave IPv6 as it is (a spare's, set when it was made).
 */
export function writeContainerSysctlsHere(ephemeral: { begin: number; end: number } | undefined, procRoot = '/proc', ipv6?: ContainerIpv6): void {
  // One walk through /proc/sys (its cost grows with the number of namespaces), then relative writes.
  const net = SysctlDir.openHere(['net'], procRoot);
  try {
    if (ephemeral) net.write(['ipv4', 'ip_local_port_range'], `${ephemeral.begin} ${ephemeral.end}`);
    if (!ipv6) return;
    if (!ipv6.off) {
      for (const [key, value] of [
        ['addr_gen_mode', '1'],
        ['accept_dad', '0'],
        ['accept_ra', '0'],
        ['router_solicitations', '0'],
        ['disable_ipv6', '0'],
      ] as const)
        net.write(['ipv6', 'conf', ipv6.ifname, key], value);
      return;
    }
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
