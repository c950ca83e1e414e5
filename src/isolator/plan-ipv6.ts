/**
 * IPv6 (--ipv6): containers share the host's IPv6 addresses as they share its IPv4 one. Pure, as
 * the rest of the planner (plan.ts); every function here plans nothing when the host has no IPv6
 * address to share, so an IPv4-only host's plan is the same as before.
 *
 * The host's tables are IPv4's (see IP6_HEADER_BYTES): IPv6 adds link filters only, once per host,
 * and a container none there. What is IPv6's own:
 * - on eth0 and lo, a table (IP6_TABLE_HTID) of links into the port table, one per address and
 *   port protocol (TCP, UDP; no extension header), and an ICMPv6 table (ICMP6_TABLE_HTID) whose
 *   errors quoting TCP or UDP go to the error table; on eth0 echo replies and neighbour
 *   advertisements to the host are also copied to the echo fan-out (as IPv4's echo and ARP
 *   replies). Neighbour solicitations and echo requests meet no filter: the host answers them,
 *   once.
 * - on a container's veth, its ICMPv6 and its TCP/UDP from its ports, with the host's address as
 *   the source, out to eth0 (or to lo for the host's address); the rest meets the veth's drop;
 * - in the container, on lo, what is addressed to the host's address but not to its own ports
 *   leaves for the host (as IPv4's), ICMPv6 to "itself" stays. ::1 is the container's own.
 */
import { u32Handle } from '../tc/index.js';
import type { PortBlock, U32FilterSpec, U32Match } from '../tc/index.js';
import type { HostView, TcObject, U32Parts } from './plan-objects.js';
import {
  ECHO_FANOUT_VIEW,
  ICMP6,
  ICMP6_TABLE_HTID,
  ICMP_ERROR_TABLE_HTID,
  IP6_PORTS_WORD_OFFSET,
  IP6_PORT_NEXT_HEADERS,
  IP6_QUOTED_PORTS_OFFSET,
  IP6_TABLE_HTID,
  MIRROR_TABLE_HTID,
  PORTS_WORD_OFFSET,
  NEXTHDR_HOP_BY_HOP,
  PORT_TABLE_HTID,
  PRIO,
  QUOTED_PORTS_OFFSET,
  filterObject,
  icmp6,
  icmp6Error,
  icmp6Type,
  ingressFilter,
  ip6Dst,
  ip6Of,
  ip6Src,
  ip6SrcPort,
  matchAll,
  mirrorTo,
  ndTarget,
  nextHeader,
  quotedNextHeader,
  redirect,
} from './plan-objects.js';

/** Nodes per address in the ICMPv6 table: echo-reply copy, NA copy, TCP errors, UDP errors. */
const ICMP6_NODES_PER_ADDRESS = 4;

/** `offset plus N eat`: IPv6's ports (or quoted ports) where the IPv4 tables' filters read them. */
const PORTS_EAT = { plus: IP6_PORTS_WORD_OFFSET - PORTS_WORD_OFFSET, eat: true } as const;
const QUOTED_EAT = { plus: IP6_QUOTED_PORTS_OFFSET - QUOTED_PORTS_OFFSET, eat: true } as const;

/**
 * IPv6 into eth0's or lo's port table: a table of links (one per address and port protocol, with
 * handles of ours), and the link into it. On eth0 only frames to the host's MAC are steered.
 */
export function ip6PortTablePlan(host: HostView, dev: 'eth0' | 'lo'): U32FilterSpec[] {
  const addresses = ip6Of(host);
  if (!addresses.length) return [];
  const at = (parts: U32Parts) => ingressFilter(host[dev], PRIO.IP6, 'ipv6', parts);
  const table = u32Handle({ htid: IP6_TABLE_HTID });
  const mac: U32Match[] = dev === 'eth0' ? [{ type: 'ethDst', mac: host.mac }] : [];
  const links = addresses.flatMap((a, i) =>
    IP6_PORT_NEXT_HEADERS.map((nh, j) =>
      at({
        handle: u32Handle({ htid: IP6_TABLE_HTID, node: 1 + i * IP6_PORT_NEXT_HEADERS.length + j }),
        matches: [nextHeader(nh), ip6Dst(a), ...mac],
        link: u32Handle({ htid: PORT_TABLE_HTID }),
        hashkey: { mask: 0x0000ff00, at: IP6_PORTS_WORD_OFFSET },
        offset: PORTS_EAT,
      }),
    ),
  );
  return [at({ handle: table, divisor: 1 }), ...links, at({ matches: [matchAll], link: table })];
}

/**
 * ICMPv6 on eth0's or lo's ingress: errors to the host's address that quote TCP or UDP go to the
 * error table's bucket of the quoted source port (each container's blocks have a filter there);
 * everything else is the host's (the link is terminal). On eth0, echo replies and neighbour
 * advertisements to the host are copied to the echo fan-out first (nodes of echoFanout6Plan, made
 * with the fan-out).
 */
export function icmp6TablePlan(host: HostView, dev: 'eth0' | 'lo'): U32FilterSpec[] {
  const addresses = ip6Of(host);
  if (!addresses.length) return [];
  const at = icmp6At(host, dev);
  const table = u32Handle({ htid: ICMP6_TABLE_HTID });
  const errors = addresses.flatMap((a, i) =>
    IP6_PORT_NEXT_HEADERS.map((nh, j) =>
      at({
        handle: icmp6Node(i, 2 + j),
        matches: [ip6Dst(a), icmp6Error, quotedNextHeader(nh)],
        link: u32Handle({ htid: ICMP_ERROR_TABLE_HTID }),
        hashkey: { mask: 0xff000000, at: IP6_QUOTED_PORTS_OFFSET },
        offset: QUOTED_EAT,
      }),
    ),
  );
  return [at({ handle: table, divisor: 1 }), ...errors, at({ matches: [icmp6], terminal: true, link: table })];
}

const icmp6At = (host: HostView, dev: 'eth0' | 'lo') => (parts: U32Parts) => ingressFilter(host[dev], PRIO.IP6_ICMP, 'ipv6', parts);
/** Node k of address i in the ICMPv6 table (0: echo-reply copy, 1: NA copy, 2 and 3: TCP and UDP errors). */
const icmp6Node = (i: number, k: number) => u32Handle({ htid: ICMP6_TABLE_HTID, node: 1 + i * ICMP6_NODES_PER_ADDRESS + k });

/** The host's shared IPv6 layout on eth0 and lo (tables before the links into them). */
export function ip6SharedLayout(host: HostView): U32FilterSpec[] {
  return [...ip6PortTablePlan(host, 'eth0'), ...ip6PortTablePlan(host, 'lo'), ...icmp6TablePlan(host, 'eth0'), ...icmp6TablePlan(host, 'lo')];
}

/**
 * The echo fan-out's IPv6 part: on its rx end, ICMPv6 into the ICMP mirror chunks, as IPv4's echo
 * replies (node 800 of the third root table: ICMP's and ARP's priorities are made first, in
 * echoFanoutPlan); on eth0, the ICMPv6 table's copies of echo replies and neighbour
 * advertisements to the host's addresses (a container resolves an on-link neighbour it asked for
 * from the copies, rate-limited with the echo replies).
 */
export function echoFanout6Plan(host: HostView): TcObject[] {
  const addresses = ip6Of(host);
  if (!addresses.length) return [];
  const at = icmp6At(host, 'eth0');
  return [
    filterObject(
      ingressFilter(ECHO_FANOUT_VIEW.rx, PRIO.IP6_ICMP, 'ipv6', {
        handle: u32Handle({ htid: 0x802, node: 0x800 }),
        matches: [matchAll],
        link: u32Handle({ htid: MIRROR_TABLE_HTID.icmp }),
      }),
    ),
    ...addresses.flatMap((a, i) =>
      [ICMP6.ECHO_REPLY, ICMP6.NEIGHBOUR_ADVERTISEMENT].map((type, k) =>
        filterObject(at({ handle: icmp6Node(i, k), matches: [ip6Dst(a), icmp6Type(type)], actions: [mirrorTo(ECHO_FANOUT_VIEW.tx, false)] })),
      ),
    ),
  ];
}

/**
 * The veth's IPv6 that names no port: its ICMPv6 with one of the host's addresses as the source,
 * out through eth0 — errors (types below 8), echo requests and replies, neighbour solicitations,
 * and neighbour advertisements for that address only (as its ARP must name the host's address:
 * a container cannot tell the network that the gateway, or anyone else, is at its MAC). Router
 * solicitations and advertisements, redirects and the rest meet the drop. What it sends from the
 * unspecified address (::) behind a hop-by-hop header — the MLD reports of a container without a
 * link-local address, a few at start — is accepted on the veth, whose IPv6 is off, so discarded
 * there without counting as denied.
 */
export function vethBaseFilters6(host: HostView, veth: number): TcObject[] {
  const addresses = ip6Of(host);
  if (!addresses.length) return [];
  const out = (matches: U32Match[]) => filterObject(ingressFilter(veth, PRIO.IP6_ICMP, 'ipv6', { matches, terminal: true, actions: [redirect(host.eth0)] }));
  return [
    filterObject(ingressFilter(veth, PRIO.IP6_ICMP, 'ipv6', { matches: [ip6Src('::/128'), nextHeader(NEXTHDR_HOP_BY_HOP)], terminal: true })),
    ...addresses.flatMap((a) => [
      out([icmp6, ip6Src(a), icmp6Error]),
      out([icmp6, ip6Src(a), { type: 'icmp6Type', icmpType: ICMP6.ECHO_REQUEST, mask: 0xfe }]), // and 129, the reply
      out([icmp6, ip6Src(a), icmp6Type(ICMP6.NEIGHBOUR_SOLICITATION)]),
      out([icmp6, ip6Src(a), icmp6Type(ICMP6.NEIGHBOUR_ADVERTISEMENT), ...ndTarget(a)]),
    ]),
  ];
}

/**
 * Per port block, the container's TCP and UDP from its ports with one of the host's addresses as
 * the source: to lo (`toLo`) when addressed to one of them, else out through eth0 (`toEth0`).
 */
export function vethPortFilters6(host: HostView, veth: number, blocks: PortBlock[], toEth0: number, toLo: number): U32FilterSpec[] {
  const addresses = ip6Of(host);
  const out: U32FilterSpec[] = [];
  const to = (priority: number, matches: U32Match[], dev: number) =>
    out.push(ingressFilter(veth, priority, 'ipv6', { matches, terminal: true, actions: [redirect(dev)] }));
  for (const b of blocks) {
    for (const nh of IP6_PORT_NEXT_HEADERS) {
      for (const src of addresses) {
        for (const dst of addresses) to(PRIO.IP6, [nextHeader(nh), ip6Src(src), ip6Dst(dst), ip6SrcPort(b)], toLo);
        to(PRIO.IP6_LOW, [nextHeader(nh), ip6Src(src), ip6SrcPort(b)], toEth0);
      }
    }
  }
  return out;
}
