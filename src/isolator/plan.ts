/**
 * The planner: pure functions from a container's description and the host's facts to the tc
 * objects the isolator needs (Mesos §3.5, §3.6, §5), with deterministic handles. No I/O here; the
 * engine sends them. Every object is the SDK's own spec (src/tc: U32FilterSpec with typed
 * matches, QdiscSpec, HtbClassSpec), so the SDK's builders and its u32 key packing (pack_key, as
 * tc does) are the only road to the bytes. This module plans a container's objects; its
 * vocabulary (objects, handles, matches, the filter builder) is plan-objects.ts, the host's shared
 * layout plan-host.ts; users import all three from here.
 *
 * Where we differ from Mesos, on purpose:
 * - the port filters on the host's eth0 and lo live in u32 hash tables keyed on the destination
 *   port's high byte, so a packet is compared only with the filters of its own 256-port window,
 *   however many containers there are; a block wider than 256 ports is placed in every bucket it
 *   spans;
 * - ARP and ICMP mirrors are split into filters of at most MIRRORS_PER_FILTER actions (the kernel
 *   takes at most 32 actions per filter), each but the last continuing classification, so there is
 *   no limit of 32 containers, and a container start or stop rewrites one such filter, not all;
 * - blocks are computed per port set (ephemeral and non-ephemeral apart).
 */
import { TC_H, U32NodeAllocator, portBlockRange, u32Handle, u32HandleParts } from '../tc/index.js';
import type { HtbClassSpec, PortBlock, U32FilterSpec, U32Match } from '../tc/index.js';
import type { HostView, TcObject } from './plan-objects.js';
import {
  FLOW_TABLE_HTID,
  HTB_CLASS,
  ICMP_ERROR_TABLE_HTID,
  HTB_HANDLE,
  INGRESS_HANDLE,
  LEVEL1_BLOCK_PORTS,
  PORT_SUBTABLE_HTID_BASE,
  PORT_SUBTABLE_LINK_NODE,
  PORT_SUBTABLE_PORTS,
  PORT_TABLE_DIVISOR,
  PORT_TABLE_HTID,
  PRIO,
  dstPort,
  filterObject,
  icmp,
  ihl5,
  arpSenderIp,
  ingressFilter,
  ipDst,
  ipSrc,
  quotedSrcPort,
  redirect,
  srcPort,
  u32Node,
} from './plan-objects.js';
import { dropAllPlan } from './plan-drops.js';
import { vethBaseFilters6, vethPortFilters6 } from './plan-ipv6.js';
import { selfPortRules } from './plan-self.js';
import type { RuleSpec } from '../rtnl/index.js';
import type { ShaperView } from './plan-shaper.js';
import { SHAPER_TABLE_HTID, shaperFilterPlan } from './plan-shaper.js';
import { sameBlock } from './port-blocks.js';
import type { HtbConfig } from './rates.js';

// The planner is one module to its users: its vocabulary and the host's shared layout too.
export * from './plan-objects.js';
export * from './plan-host.js';
export * from './plan-drops.js';
export * from './plan-shaper.js';
export * from './plan-ipv6.js';
export * from './plan-self.js';

/** The buckets (destination port high bytes) a block spans. */
export function bucketsOf(b: PortBlock): number[] {
  const { begin, end } = portBlockRange(b);
  const out: number[] = [];
  for (let h = begin >> 8; h <= end >> 8; h++) out.push(h);
  return out;
}

/**
 * Where a block's port filters go: the `ht` (table and bucket, node 0) of each, in level 1 for
 * blocks of 256 ports or more, else in the level-2 table of its level-1 bucket.
 */
export function portTableSlots(b: PortBlock): number[] {
  const { begin, end } = portBlockRange(b);
  if (end - begin + 1 >= LEVEL1_BLOCK_PORTS) return bucketsOf(b).map((hash) => u32Handle({ htid: PORT_TABLE_HTID, hash }));
  const htid = PORT_SUBTABLE_HTID_BASE + (begin >> 8);
  const out: number[] = [];
  const shift = Math.log2(PORT_SUBTABLE_PORTS);
  for (let hash = (begin & 0xff) >> shift; hash <= (end & 0xff) >> shift; hash++) out.push(u32Handle({ htid, hash }));
  return out;
}

/** A container's port filter (not a table, nor a level-1 link to a level-2 table). */
export function isPortFilterHandle(handle: number): boolean {
  const { htid, node } = u32HandleParts(handle);
  if (htid === PORT_TABLE_HTID) return node !== 0 && node !== PORT_SUBTABLE_LINK_NODE;
  return htid >= PORT_SUBTABLE_HTID_BASE && htid < PORT_SUBTABLE_HTID_BASE + PORT_TABLE_DIVISOR && node !== 0;
}

/**
 * Which host table a container's filter is in: eth0's or lo's port tables, eth0's egress flow
 * table, or eth0's or lo's ICMP error table.
 */
export type HostFilterRole = 'eth0' | 'lo' | 'egress' | 'eth0Icmp' | 'loIcmp' | 'shaper';

/** The device whose ingress holds an ingress role's table. */
export const roleDevice = (role: 'eth0' | 'lo' | 'eth0Icmp' | 'loIcmp'): 'eth0' | 'lo' => (role === 'lo' || role === 'loIcmp' ? 'lo' : 'eth0');

/** Whether a role's table is on eth0's or lo's ingress (not eth0's egress flows, nor the shaper). */
export const isIngressRole = (role: HostFilterRole): role is 'eth0' | 'lo' | 'eth0Icmp' | 'loIcmp' => role !== 'egress' && role !== 'shaper';

/** One of a container's filters in the host's tables: the spec (its handle chosen by us), its device's role and the block it steers. */
export interface HostPortFilter {
  role: HostFilterRole;
  block: PortBlock;
  spec: U32FilterSpec & { handle: number };
}

/**
 * The u32 nodes in use in the host's tables, per role, for choosing new handles: the SDK's
 * allocator, handing out the lowest free node below fff (which links a level-1 bucket to its
 * level-2 table).
 */
export type HostNodes = Record<HostFilterRole, U32NodeAllocator>;

export function hostNodes(): HostNodes {
  const make = () => new U32NodeAllocator({ range: { first: 1, last: PORT_SUBTABLE_LINK_NODE - 1 } });
  return { eth0: make(), lo: make(), egress: make(), eth0Icmp: make(), loIcmp: make(), shaper: make() };
}

/** The unique egress flow of a container (Mesos §5.4): the fq_codel on eth0 and its flow id there. */
export interface EgressFlow {
  qdisc: number;
  flowId: number;
}

export interface ContainerView {
  /** Host end of the veth pair. */
  veth: number;
  /** Container ends. */
  cEth0: number;
  cLo: number;
  /** Every block the container owns: its ephemeral block and its non-ephemeral ports, apart. */
  blocks: PortBlock[];
  egress?: HtbConfig;
  ingress?: HtbConfig;
  /** fq_codel is available in this kernel (else HTB alone). */
  fqCodel: boolean;
  /** MTU of its veth pair (the host's eth0's): the HTB quantum is at least one packet. */
  mtu: number;
  /** Its egress limit is enforced on the host's shaper, in this class (plan-shaper.ts), not on its eth0. */
  shaper?: ContainerShaper;
  /** What it sends to itself is steered by routing rules (plan-self.ts); false: a container of an earlier version, with u32 filters on lo that its updates leave alone. */
  selfRouting: boolean;
}

/** Where a container is shaped on the host: the shaper's ends and its class minor there. */
export interface ContainerShaper {
  view: ShaperView;
  minor: number;
}

/**
 * Host-side filters steering one container's blocks: the H.eth0 and H.lo port-table entries
 * (Mesos §3.5, one per bucket the block spans) and, with unique flows, the egress flow
 * classifiers, with handles from `nodes`.
 */
export function hostPortFilters(
  host: HostView,
  c: { veth: number },
  blocks: PortBlock[],
  nodes: HostNodes,
  flow?: EgressFlow,
  shaper?: ContainerShaper,
): HostPortFilter[] {
  const out: HostPortFilter[] = [];
  for (const role of ['eth0', 'lo'] as const) {
    for (const b of blocks) for (const ht of portTableSlots(b)) out.push(portFilterPlan(host, role, c.veth, b, nodes[role].allocate({ ht })));
  }
  // ICMP errors about the packets it sent from its blocks, on eth0 (from the network) and lo (from the host).
  for (const role of ['eth0Icmp', 'loIcmp'] as const) {
    for (const b of blocks) {
      for (const hash of bucketsOf(b))
        out.push(icmpErrorFilterPlan(host, role, c.veth, b, nodes[role].allocate({ ht: u32Handle({ htid: ICMP_ERROR_TABLE_HTID, hash }) })));
    }
  }
  // Egress shaped on the host: the container's source ports → its class on the shaper.
  if (shaper) {
    for (const b of blocks) {
      for (const hash of bucketsOf(b))
        out.push(shaperFilterPlan(shaper.view, b, nodes.shaper.allocate({ ht: u32Handle({ htid: SHAPER_TABLE_HTID, hash }) }), shaper.minor));
    }
  }
  // Unique egress flows (Mesos §5.4): the container's source ports → its own fq_codel flow.
  if (flow) {
    for (const b of blocks) {
      for (const hash of bucketsOf(b)) out.push(flowFilterPlan(host, flow, b, nodes.egress.allocate({ ht: u32Handle({ htid: FLOW_TABLE_HTID, hash }) })));
    }
  }
  return out;
}

/**
 * The host filters of `c`'s blocks when it has `current`: a block's filters there are kept (with
 * their handles), the blocks without any get new ones, with handles from `nodes`.
 */
export function nextHostPortFilters(host: HostView, c: ContainerView, current: HostPortFilter[], nodes: HostNodes, flow?: EgressFlow): HostPortFilter[] {
  const fresh = c.blocks.filter((b) => !current.some((f) => sameBlock(f.block, b)));
  return [...keptHostPortFilters(current, c.blocks), ...hostPortFilters(host, c, fresh, nodes, flow, c.shaper)];
}

/** The filters of `current` that steer one of `blocks`. */
export function keptHostPortFilters(current: HostPortFilter[], blocks: PortBlock[]): HostPortFilter[] {
  return current.filter((f) => blocks.some((b) => sameBlock(b, f.block)));
}

/** A host filter as recorded (role, block, handle), planned again. */
export function hostPortFilterAt(
  host: HostView,
  veth: number,
  role: HostFilterRole,
  block: PortBlock,
  handle: number,
  flow: EgressFlow | undefined,
  shaper?: ContainerShaper,
): HostPortFilter {
  if (role === 'eth0' || role === 'lo') return portFilterPlan(host, role, veth, block, handle);
  if (role === 'eth0Icmp' || role === 'loIcmp') return icmpErrorFilterPlan(host, role, veth, block, handle);
  if (role === 'shaper') {
    if (!shaper) throw new RangeError("a shaper filter needs the container's shaper class");
    return shaperFilterPlan(shaper.view, block, handle, shaper.minor);
  }
  if (!flow) throw new RangeError("an egress flow filter needs the container's flow");
  return flowFilterPlan(host, flow, block, handle);
}

/** One of a container's filters in the host's eth0 or lo port table: its block's packets to its veth. */
export function portFilterPlan(host: HostView, role: 'eth0' | 'lo', veth: number, block: PortBlock, handle: number): HostPortFilter {
  const spec = u32Node(host[role], INGRESS_HANDLE, PRIO.IP, 'ip', handle, { matches: [dstPort(block)], terminal: true, actions: [redirect(veth)] });
  return { role, block, spec };
}

/** One of a container's filters in the host's eth0 or lo ICMP error table: errors quoting a packet it sent from the block, to its veth. */
export function icmpErrorFilterPlan(host: HostView, role: 'eth0Icmp' | 'loIcmp', veth: number, block: PortBlock, handle: number): HostPortFilter {
  const spec = u32Node(host[roleDevice(role)], INGRESS_HANDLE, PRIO.ICMP, 'ip', handle, {
    matches: [quotedSrcPort(block)],
    terminal: true,
    actions: [redirect(veth)],
  });
  return { role, block, spec };
}

/** A container's egress flow classifier: its block's source ports to its fq_codel flow. */
function flowFilterPlan(host: HostView, flow: EgressFlow, block: PortBlock, handle: number): HostPortFilter {
  const spec = u32Node(host.eth0, flow.qdisc, PRIO.IP_LOW, 'ip', handle, {
    matches: [srcPort(block)],
    terminal: true,
    classid: (flow.qdisc | flow.flowId) >>> 0,
  });
  return { role: 'egress', block, spec };
}

const ingressQdisc = (ifindex: number): TcObject => ({ type: 'qdisc', spec: { kind: 'ingress', ifindex } });

/**
 * Filters on the container's host veth ingress: what the container sends (Mesos §3.5). The part
 * that does not depend on its ports (vethBaseFilters, which a warm-pool spare has already) comes
 * first, then one set per port block (vethPortFilters).
 */
export function vethFilters(host: HostView, c: ContainerView): TcObject[] {
  return [...vethBaseFilters(host, c), ...vethPortFilters(host, c).map(filterObject)];
}

const vethFilter = (c: { veth: number }, priority: number, protocol: 'ip' | 'arp', matches: U32Match[], to: number): U32FilterSpec =>
  ingressFilter(c.veth, priority, protocol, { matches, terminal: true, actions: [redirect(to)] });

/**
 * The veth's ingress qdisc, its ICMP and ARP going out through eth0 — only with the host's address
 * as the source (ARP: as the sender) —, and, last, the drop of everything no filter let through:
 * a source port it does not own, a source address not the host's, anything not IPv4 or ARP. The
 * veth's ingress qdisc counts those drops: the container's `net_tx_isolator_dropped` statistic.
 */
export function vethBaseFilters(host: HostView, c: { veth: number }): TcObject[] {
  return [
    ingressQdisc(c.veth),
    filterObject(vethFilter(c, PRIO.ICMP, 'ip', [icmp, ipSrc(host.ip)], host.eth0)),
    filterObject(vethFilter(c, PRIO.ARP, 'arp', arpSenderIp(host.ip), host.eth0)),
    ...vethBaseFilters6(host, c.veth),
    { type: 'bpf', spec: dropAllPlan(c.veth) },
  ];
}

/**
 * Per port block: what the container sends from that block goes to eth0, or to lo when addressed to
 * the host IP or 127.0.0.1. Added before the host eth0/lo filters and removed after them (Mesos §7.8).
 */
export function vethPortFilters(host: HostView, c: ContainerView): U32FilterSpec[] {
  const out: U32FilterSpec[] = [];
  // Shaped on the host, everything goes through the shaper, which sends it on to eth0 or lo.
  const toEth0 = c.shaper ? c.shaper.view.tx : host.eth0;
  const toLo = c.shaper ? c.shaper.view.tx : host.lo;
  // What leaves the host (eth0) or reaches its services (the host IP) carries the host's address.
  for (const b of c.blocks) {
    out.push(vethFilter(c, PRIO.IP_LOW, 'ip', [ihl5, ipSrc(host.ip), srcPort(b)], toEth0));
    out.push(vethFilter(c, PRIO.IP, 'ip', [ihl5, ipSrc(host.ip), ipDst(host.ip), srcPort(b)], toLo));
    out.push(vethFilter(c, PRIO.IP, 'ip', [ihl5, ipDst('127.0.0.1'), srcPort(b)], toLo));
  }
  out.push(...vethPortFilters6(host, c.veth, c.blocks, toEth0, toLo));
  return out;
}

/** HTB quantum chosen so the kernel never clamps it (and so never warns): rate/10 within mtu..200000. */
export const htbQuantum = (rateBytesPerSec: number, mtu: number): number => Math.min(200_000, Math.max(mtu, Math.floor(rateBytesPerSec / 10)));

/** HTB root `1:` (default class 1), class `1:1` and an fq_codel leaf when the kernel has one (Mesos §5.2). */
export function shapingPlan(ifindex: number, config: HtbConfig, fqCodel: boolean, mtu: number): TcObject[] {
  const cls: HtbClassSpec = { kind: 'htb', ifindex, parent: HTB_HANDLE, classid: HTB_CLASS, rateBytesPerSec: config.rateBytesPerSec };
  if (config.ceilBytesPerSec !== undefined) cls.ceilBytesPerSec = config.ceilBytesPerSec;
  if (config.burstBytes !== undefined) cls.burstBytes = config.burstBytes;
  cls.quantumBytes = htbQuantum(config.rateBytesPerSec, mtu);
  const out: TcObject[] = [
    { type: 'qdisc', spec: { kind: 'htb', ifindex, parent: TC_H.ROOT, handle: HTB_HANDLE, defaultClass: 1 } },
    { type: 'class', spec: cls },
  ];
  if (fqCodel) out.push({ type: 'qdisc', spec: { kind: 'fq_codel', ifindex, parent: HTB_CLASS } });
  return out;
}

/**
 * A container's objects that depend on its ports. Update and destroy remove the difference
 * between two of these (planDiff): the old ports' plan and the new one's, or the plan and nothing.
 */
export interface PortPlan {
  /** On its host veth's ingress: what it sends from its ports (handles chosen by the kernel). */
  veth: U32FilterSpec[];
  /** In the host's port tables and egress flow table (handles chosen by us, recorded). */
  hostPorts: HostPortFilter[];
  /** In its namespace: the routing rules that keep what it sends to its own ports in it (plan-self.ts). */
  container: RuleSpec[];
}

export const EMPTY_PORT_PLAN: PortPlan = Object.freeze({ veth: [], hostPorts: [], container: [] });

/** The port plan of a container whose host filters are `hostPorts`. */
export function portPlan(host: HostView, c: ContainerView, hostPorts: HostPortFilter[]): PortPlan {
  return { veth: vethPortFilters(host, c), hostPorts, container: c.selfRouting ? selfPortRules(host, c.blocks) : [] };
}

/** The objects of `from` that `to` does not have, in `from`'s order: what going from one to the other removes (or, the other way round, adds). */
export function planDiff(from: PortPlan, to: PortPlan): PortPlan {
  const id = (s: U32FilterSpec | RuleSpec) => JSON.stringify(s);
  const minus = <T>(a: T[], b: T[], key: (x: T) => string): T[] => {
    if (!b.length) return a;
    const there = new Set(b.map(key));
    return a.filter((x) => !there.has(key(x)));
  };
  return {
    veth: minus(from.veth, to.veth, id),
    hostPorts: minus(from.hostPorts, to.hostPorts, (f) => `${f.role} ${id(f.spec)}`),
    container: minus(from.container, to.container, id),
  };
}

export const isEmptyPlan = (p: PortPlan): boolean => !p.veth.length && !p.hostPorts.length && !p.container.length;
