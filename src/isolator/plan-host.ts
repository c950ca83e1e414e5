/**
 * The host's shared layout (Mesos §3.5, created once per host): the port hash tables on eth0's and
 * lo's ingress, the ARP and ICMP tables (reply mirrors on eth0, ICMP error tables on both), the
 * drop of unheld managed ports on eth0, and the unique-flow layout on eth0's egress. Pure, as the
 * rest of the planner (plan.ts).
 */
import { TC_H, tcHandle, u32Handle } from '../tc/index.js';
import type { ActionSpec, FilterRef, U32FilterSpec, U32Match } from '../tc/index.js';
import type { HostView, TcObject, U32Parts } from './plan-objects.js';
import { dropAllPlan } from './plan-drops.js';
import { echoFanout6Plan } from './plan-ipv6.js';
import {
  FLOW,
  FLOW_TABLE_HTID,
  ICMP_ECHO_REPLY_LINK_NODE,
  ICMP_ERROR_LINK_NODE,
  ICMP_ERROR_TABLE_HTID,
  ICMP_TABLE_HTID,
  ECHO_FANOUT_BURST_BYTES,
  ECHO_FANOUT_RATE_BYTES_PER_SEC,
  ECHO_FANOUT_VIEW,
  INGRESS_HANDLE,
  IP6_PORTS_WORD_OFFSET,
  IP6_PORT_NEXT_HEADERS,
  MIRRORS_PER_FILTER,
  MIRROR_NODE_BASE,
  MIRROR_TABLE_HTID,
  PORTS_WORD_OFFSET,
  PORT_SUBTABLE_DIVISOR,
  PORT_SUBTABLE_HASH_MASK,
  PORT_SUBTABLE_HTID_BASE,
  PORT_SUBTABLE_LINK_NODE,
  PORT_TABLE_DIVISOR,
  PORT_TABLE_HTID,
  PRIO,
  QUOTED_PORTS_OFFSET,
  arpOp,
  arpTargetIp,
  filterObject,
  fragmentOffset0,
  icmp,
  icmpError,
  icmpType,
  icmp6,
  ihl5,
  ip6Of,
  nextHeader,
  ingressFilter,
  ipDst,
  matchAll,
  mirrorTo,
  quotedIhl5,
  u32,
  u32Node,
} from './plan-objects.js';

/**
 * The shared layout on one host device's ingress (eth0 or lo): the port hash tables and the
 * link filters that send matching IPv4 packets into them. Created once per host.
 */
export function portTablePlan(host: HostView, dev: 'eth0' | 'lo'): U32FilterSpec[] {
  const at = (parts: U32Parts): U32FilterSpec => ingressFilter(host[dev], PRIO.IP, 'ip', parts);
  const top = u32Handle({ htid: PORT_TABLE_HTID });
  const table = at({ handle: top, divisor: PORT_TABLE_DIVISOR });
  // On eth0 only frames to the host's MAC and IP are steered; on lo any destination is.
  // Non-first fragments carry payload where the ports would be: they go to the host, never a container.
  const matches: U32Match[] = dev === 'eth0' ? [ihl5, fragmentOffset0, { type: 'ethDst', mac: host.mac }, ipDst(host.ip)] : [ihl5, fragmentOffset0];
  const link = at({ matches, link: top, hashkey: { mask: 0x0000ff00, at: PORTS_WORD_OFFSET } });
  const subtables: U32FilterSpec[] = [];
  const sublinks: U32FilterSpec[] = [];
  for (let bucket = 0; bucket < PORT_TABLE_DIVISOR; bucket++) {
    const sub = u32Handle({ htid: PORT_SUBTABLE_HTID_BASE + bucket });
    subtables.push(at({ handle: sub, divisor: PORT_SUBTABLE_DIVISOR }));
    const handle = u32Handle({ htid: PORT_TABLE_HTID, hash: bucket, node: PORT_SUBTABLE_LINK_NODE });
    sublinks.push(at({ handle, matches: [matchAll], link: sub, hashkey: { mask: PORT_SUBTABLE_HASH_MASK, at: PORTS_WORD_OFFSET } }));
  }
  // Tables before the links that point at them.
  return [table, ...subtables, ...sublinks, link];
}

/** The fq_codel handle for --egress_flow_classifier_parent: root → 1:0, X:Y → (X+1):0 (as Mesos). */
export function flowQdiscHandle(parent: number): number {
  return parent === TC_H.ROOT ? tcHandle(1) : (((parent >>> 16) + 1) << 16) >>> 0;
}

/**
 * The shared egress layout of unique flows on the host's eth0: fq_codel at `parent` with handle
 * `qdisc`; ARP and ICMP to flow 2, everything unclassified to flow 1 (without a catch-all,
 * fq_codel drops what no filter classifies), and the table of per-container flow filters.
 */
export function flowSharedPlan(host: HostView, parent: number, qdisc: number): TcObject[] {
  const at = (priority: number, protocol: 'ip' | 'arp' | 'all' | 'ipv6', parts: U32Parts) => filterObject(u32(host.eth0, qdisc, priority, protocol, parts));
  const f = (priority: number, protocol: 'ip' | 'arp' | 'all' | 'ipv6', matches: U32Match[], flowId: number) =>
    at(priority, protocol, { matches, terminal: true, classid: (qdisc | flowId) >>> 0 });
  const table = u32Handle({ htid: FLOW_TABLE_HTID });
  return [
    { type: 'qdisc', spec: { kind: 'fq_codel', ifindex: host.eth0, parent, handle: qdisc } },
    // The catch-all first: until it exists fq_codel drops whatever no filter classifies.
    f(PRIO.DEFAULT, 'all', [matchAll], FLOW.HOST),
    f(PRIO.ARP, 'arp', [matchAll], FLOW.ARP_ICMP),
    f(PRIO.ICMP, 'ip', [icmp], FLOW.ARP_ICMP),
    at(PRIO.IP_LOW, 'ip', { handle: table, divisor: PORT_TABLE_DIVISOR }),
    at(PRIO.IP_LOW, 'ip', { matches: [ihl5], link: table, hashkey: { mask: 0xff000000, at: PORTS_WORD_OFFSET } }),
    // IPv6 (--ipv6): ICMPv6 to flow 2; TCP and UDP without extension headers into the same table (plan-ipv6.ts).
    ...(ip6Of(host).length
      ? [
          f(PRIO.IP6_ICMP, 'ipv6', [icmp6], FLOW.ARP_ICMP),
          ...IP6_PORT_NEXT_HEADERS.map((nh) =>
            at(PRIO.IP6_LOW, 'ipv6', {
              matches: [nextHeader(nh)],
              link: table,
              hashkey: { mask: 0xff000000, at: IP6_PORTS_WORD_OFFSET },
              offset: { plus: IP6_PORTS_WORD_OFFSET - PORTS_WORD_OFFSET, eat: true },
            }),
          ),
        ]
      : []),
  ];
}

/** The mirror chunks (ARP replies' and echo replies') are on the echo fan-out's rx end (echoFanoutPlan). */
const mirrorFilter = (what: 'arp' | 'icmp', parts: U32Parts): U32FilterSpec =>
  ingressFilter(ECHO_FANOUT_VIEW.rx, what === 'arp' ? PRIO.ARP : PRIO.ICMP, what === 'arp' ? 'arp' : 'ip', parts);
const mirrorChunkHandle = (what: 'arp' | 'icmp', chunk: number) => u32Handle({ htid: MIRROR_TABLE_HTID[what], node: MIRROR_NODE_BASE + chunk });

/**
 * The ARP layout on the host's eth0 ingress, created once per host: a table, and a TERMINAL link
 * filter at Mesos' priority that sends ARP *replies* to the host's address through it; requests
 * meet no ARP filter and are the host's alone (Mesos copied every ARP packet to every container,
 * and each answered). The table's node 1 (echoFanoutPlan) copies the replies to the echo fan-out,
 * from where, rate-limited, they reach every container (so a container resolves an on-link
 * neighbour it asked for); then the link's terminal flag accepts the reply for the host.
 */
export function mirrorTablePlan(host: HostView, what: 'arp' | 'icmp'): U32FilterSpec[] {
  if (what === 'icmp') return icmpTablePlan(host, 'eth0');
  const at = (parts: U32Parts) => ingressFilter(host.eth0, PRIO.ARP, 'arp', parts);
  const table = u32Handle({ htid: MIRROR_TABLE_HTID.arp });
  return [at({ handle: table, divisor: 1 }), at({ matches: [arpOp(2), arpTargetIp(host.ip)], terminal: true, link: table })];
}

/**
 * The ICMP layout on the host's eth0 or lo ingress, created once per host. A TERMINAL link filter
 * sends ICMP (on eth0: to the host's address) through the ICMP table, which ends in a link into
 * the error table: errors that quote a packet without IP options go to the bucket of that
 * packet's source port, where each container's blocks have a filter to its veth
 * (hostPortFilters). Whatever is not steered there (echo requests, errors no container owns,
 * anything else) is accepted for the host: no container sees an echo request (Mesos copied every
 * ICMP packet to every container, and each answered), and on lo no ICMP packet reaches the port
 * table, whose hash would read its checksum as a port. (On eth0, echo replies are also copied to
 * the echo fan-out: echoFanoutPlan.)
 */
export function icmpTablePlan(host: HostView, dev: 'eth0' | 'lo'): U32FilterSpec[] {
  const at = (parts: U32Parts) => ingressFilter(host[dev], PRIO.ICMP, 'ip', parts);
  const table = u32Handle({ htid: ICMP_TABLE_HTID });
  const errors = u32Handle({ htid: ICMP_ERROR_TABLE_HTID });
  return [
    at({ handle: errors, divisor: PORT_TABLE_DIVISOR }),
    at({ handle: table, divisor: 1 }),
    at({
      handle: u32Handle({ htid: ICMP_TABLE_HTID, node: ICMP_ERROR_LINK_NODE }),
      matches: [ihl5, icmpError, quotedIhl5],
      link: errors,
      hashkey: { mask: 0xff000000, at: QUOTED_PORTS_OFFSET },
    }),
    at({ matches: dev === 'eth0' ? [icmp, ipDst(host.ip)] : [icmp], terminal: true, link: table }),
  ];
}

/**
 * The echo fan-out (data path v2): how echo replies reach the container that pinged, whoever it
 * is (a reply names no port, and a container's ping picks any identifier), without letting anyone
 * who sends echo replies to the host make it copy each one to every container. On eth0, node 1 of
 * the ICMP table copies each echo reply (the original goes on to the host) to `pmi-echo`, whose
 * tbf lets ECHO_FANOUT_RATE_BYTES_PER_SEC through (about 51 replies of 98 bytes a second,
 * bursts of ~30) and drops the rest (counted: its drops); what comes out at `pmi-echo-rx` goes
 * through the mirror chunks (mirrorChunk) to every container's veth and is then dropped there.
 * So an echo reply costs one copy, plus N copies for the few that pass the bucket: a flood is
 * bounded at ECHO_FANOUT_RATE × N copies a second, and containers' pings lose replies under one.
 */
export function echoFanoutPlan(host: HostView): TcObject[] {
  const { tx, rx } = ECHO_FANOUT_VIEW;
  const icmpChunks = u32Handle({ htid: MIRROR_TABLE_HTID.icmp });
  const arpChunks = u32Handle({ htid: MIRROR_TABLE_HTID.arp });
  // The links into the chunk tables have handles of ours, in the root tables the kernel gives a new
  // qdisc's priorities in the order they are made (800: for ICMP's, made first, 801: for ARP's):
  // adding one again is EEXIST, not a second link.
  const rootNode = (htid: number) => u32Handle({ htid, node: 0x800 });
  const tbf = { kind: 'tbf' as const, ifindex: tx, parent: TC_H.ROOT, rateBytesPerSec: ECHO_FANOUT_RATE_BYTES_PER_SEC, burstBytes: ECHO_FANOUT_BURST_BYTES };
  return [
    { type: 'qdisc', spec: { ...tbf, limitBytes: ECHO_FANOUT_BURST_BYTES } },
    { type: 'qdisc', spec: { kind: 'ingress', ifindex: rx } },
    filterObject(ingressFilter(rx, PRIO.ICMP, 'ip', { handle: icmpChunks, divisor: 1 })),
    filterObject(ingressFilter(rx, PRIO.ICMP, 'ip', { handle: rootNode(0x800), matches: [matchAll], link: icmpChunks })),
    filterObject(ingressFilter(rx, PRIO.ARP, 'arp', { handle: arpChunks, divisor: 1 })),
    filterObject(ingressFilter(rx, PRIO.ARP, 'arp', { handle: rootNode(0x801), matches: [matchAll], link: arpChunks })),
    ...echoFanout6Plan(host),
    { type: 'bpf', spec: dropAllPlan(rx) },
    // eth0's copies: echo replies (node 1 of its ICMP table), ARP replies to the host (node 1 of its ARP table).
    filterObject(
      ingressFilter(host.eth0, PRIO.ICMP, 'ip', {
        handle: u32Handle({ htid: ICMP_TABLE_HTID, node: ICMP_ECHO_REPLY_LINK_NODE }),
        matches: [ihl5, icmpType(0)],
        actions: [mirrorTo(tx, false)],
      }),
    ),
    filterObject(
      ingressFilter(host.eth0, PRIO.ARP, 'arp', {
        handle: u32Handle({ htid: MIRROR_TABLE_HTID.arp, node: 1 }),
        matches: [matchAll],
        actions: [mirrorTo(tx, false)],
      }),
    ),
  ];
}

/** Chunk k of the ARP or ICMP mirror: which filter (to delete it). */
export function mirrorChunkRef(_host: HostView, what: 'arp' | 'icmp', chunk: number): FilterRef & { kind: 'u32' } {
  const f = mirrorFilter(what, {});
  return { kind: 'u32', ifindex: f.ifindex, parent: f.parent, priority: f.priority, protocol: f.protocol!, handle: mirrorChunkHandle(what, chunk) };
}

/**
 * One chunk of the ARP or ICMP mirror: mirrors to up to MIRRORS_PER_FILTER veths (the kernel's
 * action limit per filter), the last one continuing classification to the next chunk. Chunk k
 * has handle <table>:0:<k+1>.
 */
export function mirrorChunk(_host: HostView, what: 'arp' | 'icmp', chunk: number, veths: number[]): U32FilterSpec & { handle: number } {
  if (veths.length === 0 || veths.length > MIRRORS_PER_FILTER)
    throw new RangeError(`a mirror chunk holds 1..${MIRRORS_PER_FILTER} devices, got ${veths.length}`);
  const last = veths.length - 1;
  const actions: ActionSpec[] = veths.map((ifindex, i) => mirrorTo(ifindex, i === last));
  const prio = what === 'arp' ? PRIO.ARP : PRIO.ICMP;
  // (Only answers reach the chunks: ARP replies to the host's address, ICMP echo replies; see the links.)
  return u32Node(ECHO_FANOUT_VIEW.rx, INGRESS_HANDLE, prio, what === 'arp' ? 'arp' : 'ip', mirrorChunkHandle(what, chunk), {
    matches: [matchAll],
    terminal: true,
    actions,
  });
}
