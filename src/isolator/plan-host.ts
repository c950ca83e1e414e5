/**
 * The host's shared layout (Mesos §3.5, created once per host): the port hash tables on eth0's and
 * lo's ingress, the ARP and ICMP mirror tables and their chunks on eth0, and the unique-flow
 * layout on eth0's egress. Pure, as the rest of the planner (plan.ts).
 */
import { TC_H, tcHandle, u32Handle } from '../tc/index.js';
import type { ActionSpec, FilterRef, U32FilterSpec, U32Match } from '../tc/index.js';
import type { HostView, TcObject, U32Parts } from './plan-objects.js';
import {
  FLOW,
  FLOW_TABLE_HTID,
  INGRESS_HANDLE,
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
  filterObject,
  icmp,
  ihl5,
  ingressFilter,
  ipDst,
  matchAll,
  mirrorTo,
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
  const matches: U32Match[] = dev === 'eth0' ? [ihl5, { type: 'ethDst', mac: host.mac }, ipDst(host.ip)] : [ihl5];
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
  const at = (priority: number, protocol: 'ip' | 'arp' | 'all', parts: U32Parts) => filterObject(u32(host.eth0, qdisc, priority, protocol, parts));
  const f = (priority: number, protocol: 'ip' | 'arp' | 'all', matches: U32Match[], flowId: number) =>
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
  ];
}

const mirrorFilter = (host: HostView, what: 'arp' | 'icmp', parts: U32Parts): U32FilterSpec =>
  ingressFilter(host.eth0, what === 'arp' ? PRIO.ARP : PRIO.ICMP, what === 'arp' ? 'arp' : 'ip', parts);
const mirrorChunkHandle = (what: 'arp' | 'icmp', chunk: number) => u32Handle({ htid: MIRROR_TABLE_HTID[what], node: MIRROR_NODE_BASE + chunk });

/**
 * The ARP and ICMP mirror layout on the host's eth0 ingress, created once per host: a table per
 * kind, and a TERMINAL link filter at Mesos' priority that sends matching packets through it.
 * When the table's mirrors have run (each continues classification) the link filter's terminal
 * flag accepts the packet, so nothing else (the port table) sees it, as in Mesos.
 */
export function mirrorTablePlan(host: HostView, what: 'arp' | 'icmp'): U32FilterSpec[] {
  const table = u32Handle({ htid: MIRROR_TABLE_HTID[what] });
  return [
    mirrorFilter(host, what, { handle: table, divisor: 1 }),
    mirrorFilter(host, what, { matches: what === 'arp' ? [matchAll] : [icmp, ipDst(host.ip)], terminal: true, link: table }),
  ];
}

/** Chunk k of the ARP or ICMP mirror: which filter (to delete it). */
export function mirrorChunkRef(host: HostView, what: 'arp' | 'icmp', chunk: number): FilterRef & { kind: 'u32' } {
  const f = mirrorFilter(host, what, {});
  return { kind: 'u32', ifindex: f.ifindex, parent: f.parent, priority: f.priority, protocol: f.protocol!, handle: mirrorChunkHandle(what, chunk) };
}

/**
 * One chunk of the ARP or ICMP mirror: mirrors to up to MIRRORS_PER_FILTER veths (the kernel's
 * action limit per filter), the last one continuing classification to the next chunk. Chunk k
 * has handle <table>:0:<k+1>.
 */
export function mirrorChunk(host: HostView, what: 'arp' | 'icmp', chunk: number, veths: number[]): U32FilterSpec & { handle: number } {
  if (veths.length === 0 || veths.length > MIRRORS_PER_FILTER)
    throw new RangeError(`a mirror chunk holds 1..${MIRRORS_PER_FILTER} devices, got ${veths.length}`);
  const last = veths.length - 1;
  const actions: ActionSpec[] = veths.map((ifindex, i) => mirrorTo(ifindex, i === last));
  const prio = what === 'arp' ? PRIO.ARP : PRIO.ICMP;
  return u32Node(host.eth0, INGRESS_HANDLE, prio, what === 'arp' ? 'arp' : 'ip', mirrorChunkHandle(what, chunk), {
    matches: [matchAll],
    terminal: true,
    actions,
  });
}
