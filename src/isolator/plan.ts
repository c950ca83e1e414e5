/**
 * The planner: pure functions from a container's description and the host's facts to the tc
 * objects the isolator needs (Mesos §3.5, §3.6, §5), with deterministic handles. No I/O here; the
 * engine turns the plan into netlink batches.
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
import type { PortBlock } from './port-blocks.js';
import type { HtbConfig } from './rates.js';

/** A device: in the host namespace or the container's, by interface index. */
export interface DevRef {
  ns: 'host' | 'container';
  index: number;
}

/** One u32 key with natural values: the 32-bit word at `off` (from the IP header), masked. */
export interface U32Key {
  off: number;
  val: number;
  mask: number;
}

export type PlannedAction =
  /** mirred egress redirect (TC_ACT_STOLEN). */
  | { kind: 'redirect'; to: DevRef }
  /** mirred egress mirror; `continue` makes classification go on to the next filter. */
  | { kind: 'mirror'; to: DevRef; continue?: boolean };

export interface U32FilterPlan {
  type: 'u32';
  dev: DevRef;
  /** Parent qdisc handle (ffff:0 for ingress). */
  parent: number;
  prio: number;
  protocol: 'ip' | 'arp' | 'all';
  /** Explicit u32 handle (htid:hash:node); undefined lets the kernel choose. */
  handle?: number;
  keys: U32Key[];
  /** TC_U32_TERMINAL: set whenever there are actions or none but the match must end here. */
  terminal: boolean;
  actions: PlannedAction[];
  /** A hash table: this "filter" creates table `handle` with `divisor` buckets. */
  divisor?: number;
  /** Link to hash table `link`, hashing the word at `hashOff` with `hashMask`. */
  link?: number;
  hashOff?: number;
  hashMask?: number;
  classid?: number;
}

export interface QdiscPlan {
  type: 'qdisc';
  dev: DevRef;
  kind: 'ingress' | 'htb' | 'fq_codel';
  parent: number;
  handle: number;
  /** HTB: default class minor. */
  defcls?: number;
}

export interface HtbClassPlan {
  type: 'htb-class';
  dev: DevRef;
  parent: number;
  classid: number;
  config: HtbConfig;
}

export type TcPlan = U32FilterPlan | QdiscPlan | HtbClassPlan;

// Handles and priorities (Mesos §3.1).
export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;
export const INGRESS_HANDLE = 0xffff0000;
export const HTB_HANDLE = 0x00010000;
export const HTB_CLASS = 0x00010001;
export const PRIO = Object.freeze({
  ARP: 0x0102, // 258
  ICMP: 0x0202, // 514
  IP_HIGH: 0x0301, // 769
  IP: 0x0302, // 770
  IP_LOW: 0x0303, // 771
  DEFAULT: 0x0402, // 1026
} as const);

/**
 * The port tables on the host's eth0 and lo ingress. Level 1 (`100:`) hashes the destination
 * port's high byte into 256 buckets; a block of 256 ports or more has one filter in each bucket it
 * covers. Every bucket B also ends (node fff, after any block filter) with a link to its own level-2
 * table (`200+B:`), which hashes bits 2–7 of the port into 64 buckets of 4 ports; smaller blocks
 * live there, one filter per 4-port bucket they cover (a 16-port ephemeral block: 4). So a packet
 * meets at most two hashes, a link and the blocks of one 4-port bucket (≤ 4 filters), however many
 * containers there are: with one level, a bucket held up to 256 blocks. (Measured with 16-port
 * buckets: the 16th filter of a bucket cost ~15 % of the rate of 64-byte datagrams.)
 */
export const PORT_TABLE_HTID = 0x100;
export const PORT_TABLE_DIVISOR = 256;
/** Level-2 table of level-1 bucket B: htid 0x200 + B. */
export const PORT_SUBTABLE_HTID_BASE = 0x200;
/** Ports per level-2 bucket (a power of two): the port bits below the level-2 hash. */
export const PORT_SUBTABLE_PORTS = 4;
export const PORT_SUBTABLE_DIVISOR = 256 / PORT_SUBTABLE_PORTS;
/** The level-2 hash key: the port's low byte above the bits inside a bucket (word at offset 20: sport << 16 | dport). */
export const PORT_SUBTABLE_HASH_MASK = 0xff & ~(PORT_SUBTABLE_PORTS - 1);
/** The level-1 node that links bucket B to its level-2 table: the last one, so block filters come first. */
export const PORT_SUBTABLE_LINK_NODE = 0xfff;
/** Blocks this large or larger go in level 1. */
const LEVEL1_BLOCK_PORTS = 256;
/**
 * Mirror actions per filter: at most 32 (the kernel's TCA_ACT_MAX_PRIO); 8 keeps the rewrite a
 * container start or stop causes small (the kernel creates every action of the filter anew).
 */
export const MIRRORS_PER_FILTER = 8;
/** Mirror chunk k is node k + 1 of its table. */
export const MIRROR_NODE_BASE = 1;

export const u32HandleOf = (htid: number, hash: number, node: number): number => ((htid << 20) | (hash << 12) | node) >>> 0;

// Keys (Mesos §3.2).
export const keyIhl5: U32Key = { off: 0, val: 0x05000000, mask: 0x0f000000 };
export const keyIcmp: U32Key = { off: 8, val: 0x00010000, mask: 0x00ff0000 };
export const keyMatchAll: U32Key = { off: 0, val: 0, mask: 0 };

export function ipToU32(ip: string): number {
  const p = ip.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
}
export const keyDstIp = (ip: string): U32Key => ({ off: 16, val: ipToU32(ip), mask: 0xffffffff });
export function keysDstMac(mac: string): U32Key[] {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  return [
    { off: -16, val: ((b[0]! << 8) | b[1]!) >>> 0, mask: 0x0000ffff },
    { off: -12, val: ((b[2]! << 24) | (b[3]! << 16) | (b[4]! << 8) | b[5]!) >>> 0, mask: 0xffffffff },
  ];
}
export const keyDport = (b: PortBlock): U32Key => ({ off: 20, val: b.begin, mask: b.mask });
export const keySport = (b: PortBlock): U32Key => ({ off: 20, val: (b.begin << 16) >>> 0, mask: (b.mask << 16) >>> 0 });

/** The buckets (destination port high bytes) a block spans. */
export function bucketsOf(b: PortBlock): number[] {
  const out: number[] = [];
  for (let h = b.begin >> 8; h <= b.end >> 8; h++) out.push(h);
  return out;
}

/**
 * Where a block's port filters go: the `ht` (table and bucket, node 0) of each, in level 1 for
 * blocks of 256 ports or more, else in the level-2 table of its level-1 bucket.
 */
export function portTableSlots(b: PortBlock): number[] {
  if (b.end - b.begin + 1 >= LEVEL1_BLOCK_PORTS) return bucketsOf(b).map((bucket) => u32HandleOf(PORT_TABLE_HTID, bucket, 0));
  const htid = PORT_SUBTABLE_HTID_BASE + (b.begin >> 8);
  const out: number[] = [];
  const shift = Math.log2(PORT_SUBTABLE_PORTS);
  for (let sub = (b.begin & 0xff) >> shift; sub <= (b.end & 0xff) >> shift; sub++) out.push(u32HandleOf(htid, sub, 0));
  return out;
}

export interface HostView {
  ip: string;
  mac: string;
  eth0: number;
  lo: number;
}

/**
 * The shared layout on one host device's ingress (eth0 or lo): the port hash table and the
 * link filter that sends matching IPv4 packets into it. Created once per host.
 */
export function portTablePlan(host: HostView, dev: 'eth0' | 'lo'): U32FilterPlan[] {
  const ref: DevRef = { ns: 'host', index: host[dev] };
  const table: U32FilterPlan = { type: 'u32', dev: ref, parent: INGRESS_HANDLE, prio: PRIO.IP, protocol: 'ip', handle: u32HandleOf(PORT_TABLE_HTID, 0, 0), keys: [], terminal: false, actions: [], divisor: PORT_TABLE_DIVISOR };
  // On eth0 only frames to the host's MAC and IP are steered; on lo any destination is.
  const keys = dev === 'eth0' ? [keyIhl5, ...keysDstMac(host.mac), keyDstIp(host.ip)] : [keyIhl5];
  const link: U32FilterPlan = { type: 'u32', dev: ref, parent: INGRESS_HANDLE, prio: PRIO.IP, protocol: 'ip', keys, terminal: false, actions: [], link: u32HandleOf(PORT_TABLE_HTID, 0, 0), hashOff: 20, hashMask: 0x0000ff00 };
  const subtables: U32FilterPlan[] = [];
  const sublinks: U32FilterPlan[] = [];
  for (let bucket = 0; bucket < PORT_TABLE_DIVISOR; bucket++) {
    const sub = u32HandleOf(PORT_SUBTABLE_HTID_BASE + bucket, 0, 0);
    subtables.push({ type: 'u32', dev: ref, parent: INGRESS_HANDLE, prio: PRIO.IP, protocol: 'ip', handle: sub, keys: [], terminal: false, actions: [], divisor: PORT_SUBTABLE_DIVISOR });
    sublinks.push({
      type: 'u32',
      dev: ref,
      parent: INGRESS_HANDLE,
      prio: PRIO.IP,
      protocol: 'ip',
      handle: u32HandleOf(PORT_TABLE_HTID, bucket, PORT_SUBTABLE_LINK_NODE),
      keys: [keyMatchAll],
      terminal: false,
      actions: [],
      link: sub,
      hashOff: 20,
      hashMask: PORT_SUBTABLE_HASH_MASK,
    });
  }
  // Tables before the links that point at them.
  return [table, ...subtables, ...sublinks, link];
}

/** Node ids already used in each table bucket (keyed by its `ht`, node 0) of a device, for choosing new handles. */
export type NodeUse = Map<number, Set<number>>;

/** A container's port filter (not a table, nor a level-1 link to a level-2 table). */
export function isPortFilterHandle(handle: number): boolean {
  const htid = handle >>> 20;
  const node = handle & 0xfff;
  if (htid === PORT_TABLE_HTID) return node !== 0 && node !== PORT_SUBTABLE_LINK_NODE;
  return htid >= PORT_SUBTABLE_HTID_BASE && htid < PORT_SUBTABLE_HTID_BASE + PORT_TABLE_DIVISOR && node !== 0;
}

/** The `ht` (table and bucket, node 0) a filter handle lives in: the key of NodeUse. */
export const htOf = (handle: number): number => (handle & 0xfffff000) >>> 0;

/** A free node id in the bucket `ht` (below fff, which links a level-1 bucket to its level-2 table). */
export function allocateNode(use: NodeUse, ht: number): number {
  let set = use.get(ht);
  if (!set) use.set(ht, (set = new Set()));
  for (let node = 1; node < PORT_SUBTABLE_LINK_NODE; node++) {
    if (!set.has(node)) {
      set.add(node);
      return node;
    }
  }
  throw new Error(`No available handle exists in bucket ${(ht >>> 12) & 0xff} of table ${(ht >>> 20).toString(16)}: (4094 filters)`);
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
}

/**
 * Host-side filters steering one container's blocks: the H.eth0 and H.lo port-table entries
 * (Mesos §3.5, one per bucket the block spans), with handles from `use`.
 */
export type HostFilterRole = 'eth0' | 'lo' | 'egress';

export function hostPortFilters(
  host: HostView,
  c: ContainerView,
  blocks: PortBlock[],
  use: Record<HostFilterRole, NodeUse>,
  flow?: { qdisc: number; flowId: number },
): Array<U32FilterPlan & { devRole: HostFilterRole; block: PortBlock }> {
  const out: Array<U32FilterPlan & { devRole: HostFilterRole; block: PortBlock }> = [];
  for (const dev of ['eth0', 'lo'] as const) {
    for (const b of blocks) {
      for (const ht of portTableSlots(b)) out.push(portFilterPlan(host, dev, c.veth, b, (ht | allocateNode(use[dev], ht)) >>> 0));
    }
  }
  // Unique egress flows (Mesos §5.4): the container's source ports → its own fq_codel flow.
  if (flow) {
    for (const b of blocks) {
      for (const bucket of bucketsOf(b)) {
        out.push({
          devRole: 'egress',
          block: b,
          type: 'u32',
          dev: { ns: 'host', index: host.eth0 },
          parent: flow.qdisc,
          prio: PRIO.IP_LOW,
          protocol: 'ip',
          handle: u32HandleOf(FLOW_TABLE_HTID, bucket, allocateNode(use.egress, u32HandleOf(FLOW_TABLE_HTID, bucket, 0))),
          keys: [keySport(b)],
          terminal: true,
          actions: [],
          classid: (flow.qdisc | flow.flowId) >>> 0,
        });
      }
    }
  }
  return out;
}

/** One of a container's filters in the host's eth0 or lo port table: its block's packets to its veth. */
export function portFilterPlan(host: HostView, dev: 'eth0' | 'lo', veth: number, block: PortBlock, handle: number): U32FilterPlan & { devRole: HostFilterRole; block: PortBlock } {
  return {
    devRole: dev,
    block,
    type: 'u32',
    dev: { ns: 'host', index: host[dev] },
    parent: INGRESS_HANDLE,
    prio: PRIO.IP,
    protocol: 'ip',
    handle,
    keys: [keyDport(block)],
    terminal: true,
    actions: [{ kind: 'redirect', to: { ns: 'host', index: veth } }],
  };
}

/** fq_codel flow numbers (Mesos §3.1): the host's, ARP/ICMP, and the containers' range. */
export const FLOW = Object.freeze({ HOST: 1, ARP_ICMP: 2, MIN_CONTAINER: 3, MAX_CONTAINER: 1023 } as const);
/** The table of per-container egress flow classifiers, keyed on the source port's high byte. */
export const FLOW_TABLE_HTID = 0x102;

/** The fq_codel handle for --egress_flow_classifier_parent: root → 1:0, X:Y → (X+1):0 (as Mesos). */
export function flowQdiscHandle(parent: number): number {
  return parent === TC_H_ROOT ? 0x00010000 : (((parent >>> 16) + 1) << 16) >>> 0;
}

/**
 * The shared egress layout of unique flows on the host's eth0: fq_codel at `parent` with handle
 * `qdisc`; ARP and ICMP to flow 2, everything unclassified to flow 1 (without a catch-all,
 * fq_codel drops what no filter classifies), and the table of per-container flow filters.
 */
export function flowSharedPlan(host: HostView, parent: number, qdisc: number): TcPlan[] {
  const eth0: DevRef = { ns: 'host', index: host.eth0 };
  const f = (prio: number, protocol: 'ip' | 'arp' | 'all', keys: U32Key[], flowId: number): U32FilterPlan => ({ type: 'u32', dev: eth0, parent: qdisc, prio, protocol, keys, terminal: true, actions: [], classid: (qdisc | flowId) >>> 0 });
  return [
    { type: 'qdisc', dev: eth0, kind: 'fq_codel', parent, handle: qdisc },
    // The catch-all first: until it exists fq_codel drops whatever no filter classifies.
    f(PRIO.DEFAULT, 'all', [keyMatchAll], FLOW.HOST),
    f(PRIO.ARP, 'arp', [keyMatchAll], FLOW.ARP_ICMP),
    f(PRIO.ICMP, 'ip', [keyIcmp], FLOW.ARP_ICMP),
    { type: 'u32', dev: eth0, parent: qdisc, prio: PRIO.IP_LOW, protocol: 'ip', handle: u32HandleOf(FLOW_TABLE_HTID, 0, 0), keys: [], terminal: false, actions: [], divisor: PORT_TABLE_DIVISOR },
    { type: 'u32', dev: eth0, parent: qdisc, prio: PRIO.IP_LOW, protocol: 'ip', keys: [keyIhl5], terminal: false, actions: [], link: u32HandleOf(FLOW_TABLE_HTID, 0, 0), hashOff: 20, hashMask: 0xff000000 },
  ];
}

/**
 * Filters on the container's host veth ingress: what the container sends (Mesos §3.5). The part
 * that does not depend on its ports (vethBaseFilters, which a warm-pool spare has already) comes
 * first, then one set per port block (vethPortFilters).
 */
export function vethFilters(host: HostView, c: ContainerView): TcPlan[] {
  return [...vethBaseFilters(host, c), ...vethPortFilters(host, c)];
}

const redirectTo = (index: number): PlannedAction => ({ kind: 'redirect', to: { ns: 'host', index } });
const vethFilter = (c: { veth: number }, prio: number, protocol: 'ip' | 'arp', keys: U32Key[], action: PlannedAction): U32FilterPlan => ({
  type: 'u32',
  dev: { ns: 'host', index: c.veth },
  parent: INGRESS_HANDLE,
  prio,
  protocol,
  keys,
  terminal: true,
  actions: [action],
});

/** The veth's ingress qdisc, and its ICMP and ARP going out through eth0. */
export function vethBaseFilters(host: HostView, c: { veth: number }): TcPlan[] {
  return [
    { type: 'qdisc', dev: { ns: 'host', index: c.veth }, kind: 'ingress', parent: TC_H_INGRESS, handle: INGRESS_HANDLE },
    vethFilter(c, PRIO.ICMP, 'ip', [keyIcmp], redirectTo(host.eth0)),
    vethFilter(c, PRIO.ARP, 'arp', [keyMatchAll], redirectTo(host.eth0)),
  ];
}

/**
 * Per port block: what the container sends from that block goes to eth0, or to lo when addressed to
 * the host IP or 127.0.0.1. Added before the host eth0/lo filters and removed after them (Mesos §7.8).
 */
export function vethPortFilters(host: HostView, c: ContainerView): U32FilterPlan[] {
  const out: U32FilterPlan[] = [];
  for (const b of c.blocks) {
    out.push(vethFilter(c, PRIO.IP_LOW, 'ip', [keyIhl5, keySport(b)], redirectTo(host.eth0)));
    out.push(vethFilter(c, PRIO.IP, 'ip', [keyIhl5, keyDstIp(host.ip), keySport(b)], redirectTo(host.lo)));
    out.push(vethFilter(c, PRIO.IP, 'ip', [keyIhl5, keyDstIp('127.0.0.1'), keySport(b)], redirectTo(host.lo)));
  }
  return out;
}

/** HTB root `1:` (default class 1), class `1:1` and an fq_codel leaf when the kernel has one (Mesos §5.2). */
export function shapingPlan(dev: DevRef, config: HtbConfig, fqCodel: boolean): TcPlan[] {
  const out: TcPlan[] = [
    { type: 'qdisc', dev, kind: 'htb', parent: TC_H_ROOT, handle: HTB_HANDLE, defcls: 1 },
    { type: 'htb-class', dev, parent: HTB_HANDLE, classid: HTB_CLASS, config },
  ];
  if (fqCodel) out.push({ type: 'qdisc', dev, kind: 'fq_codel', parent: HTB_CLASS, handle: 0 });
  return out;
}

/**
 * Everything inside the container's namespace (Mesos §3.6), plus egress shaping on C.eth0: the part
 * that does not depend on its ports (containerBaseFilters, which a warm-pool spare has already),
 * then its ports' filters, then shaping.
 */
export function containerFilters(host: HostView, c: ContainerView): TcPlan[] {
  const out: TcPlan[] = [...containerBaseFilters(host, c), ...containerPortFilters(c)];
  if (c.egress) out.push(...shapingPlan({ ns: 'container', index: c.cEth0 }, c.egress, c.fqCodel));
  return out;
}

const containerFilter = (index: number, prio: number, keys: U32Key[], actions: PlannedAction[]): U32FilterPlan => ({
  type: 'u32',
  dev: { ns: 'container', index },
  parent: INGRESS_HANDLE,
  prio,
  protocol: 'ip',
  keys,
  terminal: true,
  actions,
});

/** lo's and eth0's ingress qdiscs; a ping to itself stays local; anything else to "self" leaves. */
export function containerBaseFilters(host: HostView, c: { cLo: number; cEth0: number }): TcPlan[] {
  const toEth0: PlannedAction = { kind: 'redirect', to: { ns: 'container', index: c.cEth0 } };
  return [
    { type: 'qdisc', dev: { ns: 'container', index: c.cLo }, kind: 'ingress', parent: TC_H_INGRESS, handle: INGRESS_HANDLE },
    { type: 'qdisc', dev: { ns: 'container', index: c.cEth0 }, kind: 'ingress', parent: TC_H_INGRESS, handle: INGRESS_HANDLE },
    containerFilter(c.cLo, PRIO.ICMP, [keyIcmp, keyDstIp(host.ip)], []),
    containerFilter(c.cLo, PRIO.ICMP, [keyIcmp, keyDstIp('127.0.0.1')], []),
    // What is addressed to "self" but not to its own ports (those stay on lo, PRIO.IP_HIGH, below)
    // leaves the container, to the host or another container.
    containerFilter(c.cLo, PRIO.IP, [keyIhl5, keyDstIp(host.ip)], [toEth0]),
    containerFilter(c.cLo, PRIO.IP, [keyIhl5, keyDstIp('127.0.0.1')], [toEth0]),
  ];
}

/** Per port block: local traffic to its own ports stays on lo; 127.0.0.1:<own port> from outside is handed to lo. */
export function containerPortFilters(c: ContainerView): U32FilterPlan[] {
  const out: U32FilterPlan[] = [];
  for (const b of c.blocks) out.push(containerFilter(c.cLo, PRIO.IP_HIGH, [keyIhl5, keyDport(b)], []));
  for (const b of c.blocks) out.push(containerFilter(c.cEth0, PRIO.IP, [keyIhl5, keyDstIp('127.0.0.1'), keyDport(b)], [{ kind: 'redirect', to: { ns: 'container', index: c.cLo } }]));
  return out;
}

/** The hash tables (one bucket each) that hold the ARP and ICMP mirror filters on eth0. */
export const MIRROR_TABLE_HTID = Object.freeze({ arp: 0x110, icmp: 0x111 } as const);

/**
 * The ARP and ICMP mirror layout on the host's eth0 ingress, created once per host: a table per
 * kind, and a TERMINAL link filter at Mesos' priority that sends matching packets through it.
 * When the table's mirrors have run (each continues classification) the link filter's terminal
 * flag accepts the packet, so nothing else (the port table) sees it, as in Mesos.
 */
export function mirrorTablePlan(host: HostView, what: 'arp' | 'icmp'): U32FilterPlan[] {
  const eth0: DevRef = { ns: 'host', index: host.eth0 };
  const htid = MIRROR_TABLE_HTID[what];
  const prio = what === 'arp' ? PRIO.ARP : PRIO.ICMP;
  const protocol = what === 'arp' ? 'arp' : 'ip';
  return [
    { type: 'u32', dev: eth0, parent: INGRESS_HANDLE, prio, protocol, handle: u32HandleOf(htid, 0, 0), keys: [], terminal: false, actions: [], divisor: 1 },
    { type: 'u32', dev: eth0, parent: INGRESS_HANDLE, prio, protocol, keys: what === 'arp' ? [keyMatchAll] : [keyIcmp, keyDstIp(host.ip)], terminal: true, actions: [], link: u32HandleOf(htid, 0, 0) },
  ];
}

/**
 * One chunk of the ARP or ICMP mirror: mirrors to up to MIRRORS_PER_FILTER veths (the kernel's
 * action limit per filter), the last one continuing classification to the next chunk. Chunk k
 * has handle <table>:0:<k+1>.
 */
export function mirrorChunk(host: HostView, what: 'arp' | 'icmp', chunk: number, veths: number[]): U32FilterPlan {
  if (veths.length === 0 || veths.length > MIRRORS_PER_FILTER) throw new RangeError(`a mirror chunk holds 1..${MIRRORS_PER_FILTER} devices, got ${veths.length}`);
  return {
    type: 'u32',
    dev: { ns: 'host', index: host.eth0 },
    parent: INGRESS_HANDLE,
    prio: what === 'arp' ? PRIO.ARP : PRIO.ICMP,
    protocol: what === 'arp' ? 'arp' : 'ip',
    handle: u32HandleOf(MIRROR_TABLE_HTID[what], 0, MIRROR_NODE_BASE + chunk),
    keys: [keyMatchAll],
    terminal: true,
    actions: veths.map((v, i) => ({ kind: 'mirror', to: { ns: 'host', index: v }, ...(i === veths.length - 1 ? { continue: true } : {}) })),
  };
}
