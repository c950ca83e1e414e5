/**
 * The planner's vocabulary (see plan.ts): a planned tc object is the SDK's own spec (src/tc:
 * U32FilterSpec with typed matches, QdiscSpec, HtbClassSpec), built by src/tc's builders; the
 * handles, priorities and tables of the layout (Mesos §3.1); the typed matches (Mesos §3.2); and
 * the one builder every planned u32 filter goes through.
 */
import type { Request } from '../netlink/index.js';
import { TC_ACT, TC_H, classRequest, filterRequest, ipv6Words, qdiscRequest, tcHandle } from '../tc/index.js';
import type { ActionSpec, BpfFilterSpec, HtbClassSpec, PortBlock, Psched, QdiscSpec, TcVerb, U32FilterSpec, U32Match } from '../tc/index.js';

/** One tc object of the plan, as the SDK's spec (a tag tells HTB qdiscs from HTB classes, u32 filters from the drops' bpf ones). */
export type TcObject =
  { type: 'qdisc'; spec: QdiscSpec } | { type: 'class'; spec: HtbClassSpec } | { type: 'filter'; spec: U32FilterSpec } | { type: 'bpf'; spec: BpfFilterSpec };

/** What building a request needs besides the object: HTB's clock parameters. */
export interface TcContext {
  psched: Psched;
}

/** The request creating (add, replace) or removing (delete) one planned object, built by src/tc. */
export function tcObjectRequest(o: TcObject, verb: TcVerb, ctx: TcContext): Request {
  switch (o.type) {
    case 'filter':
    case 'bpf':
      return filterRequest(verb, o.spec);
    case 'qdisc':
      return qdiscRequest(verb, o.spec, ctx);
    case 'class':
      return classRequest(verb, o.spec, ctx);
  }
}

/** A filter spec as a planned object. */
export const filterObject = (spec: U32FilterSpec): TcObject => ({ type: 'filter', spec });

// Handles and priorities (Mesos §3.1).
/** The ingress qdisc's handle, ffff: (TC_H_MAJ(TC_H_INGRESS)): the parent of every ingress filter. */
export const INGRESS_HANDLE = (TC_H.INGRESS & TC_H.MAJ_MASK) >>> 0;
export const HTB_HANDLE = tcHandle(1);
export const HTB_CLASS = tcHandle(1, 1);
export const PRIO = Object.freeze({
  ARP: 0x0102, // 258
  ICMP: 0x0202, // 514
  IP_HIGH: 0x0301, // 769
  IP: 0x0302, // 770
  IP_LOW: 0x0303, // 771
  // IPv6 (--ipv6): a priority holds filters of one protocol, so IPv6 has its own, beside IPv4's.
  IP6_ICMP: 0x0203, // 515
  IP6_HIGH: 0x0304, // 772
  IP6: 0x0305, // 773
  IP6_LOW: 0x0306, // 774
  /** The catch-all drops of data path v2 (cls_bpf, classic BPF, direct action): after every steering filter. */
  DROP: 0x0401, // 1025
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
export const LEVEL1_BLOCK_PORTS = 256;
/** The word the port hashes read: source port << 16 | destination port (no IP options). */
export const PORTS_WORD_OFFSET = 20;
/**
 * Mirror actions per filter: at most 32 (the kernel's TCA_ACT_MAX_PRIO); 8 keeps the rewrite a
 * container start or stop causes small (the kernel creates every action of the filter anew).
 */
export const MIRRORS_PER_FILTER = 8;
/** Mirror chunk k is node k + 1 of its table. */
export const MIRROR_NODE_BASE = 1;

/** The table and bucket (node 0) a u32 handle lives in. */
export const htOf = (handle: number): number => (handle & 0xfffff000) >>> 0;

/** fq_codel flow numbers (Mesos §3.1): the host's, ARP/ICMP, and the containers' range. */
export const FLOW = Object.freeze({ HOST: 1, ARP_ICMP: 2, MIN_CONTAINER: 3, MAX_CONTAINER: 1023 } as const);
/** The table of per-container egress flow classifiers, keyed on the source port's high byte. */
export const FLOW_TABLE_HTID = 0x102;

/**
 * The hash tables (one bucket each) that hold the ARP and ICMP mirror chunks on eth0: ARP replies
 * to the host's address, and ICMP echo replies.
 */
export const MIRROR_TABLE_HTID = Object.freeze({ arp: 0x110, icmp: 0x114 } as const);
// (0x114 is on the echo fan-out's rx end, where ICMP's chunks are; ARP's table is on eth0.)
/**
 * The ICMP table (one bucket) on eth0 and lo that ICMP to the host goes through: on eth0, node 1
 * links echo replies to their mirror chunks; on both, the last node links errors to the error table.
 */
export const ICMP_TABLE_HTID = 0x111;
/** The ICMP table's node that copies echo replies to the echo fan-out (eth0). */
export const ICMP_ECHO_REPLY_LINK_NODE = 1;
/** The echo fan-out's pair (plan-host.ts, echoFanoutPlan): names and our interface indexes (below the shaper's). */
export const ECHO_FANOUT_NAMES = Object.freeze({ tx: 'pmi-echo', rx: 'pmi-echo-rx' } as const);
export const ECHO_FANOUT_VIEW = Object.freeze({ tx: 999_996, rx: 999_997 });
/**
 * Echo replies copied to every container, at most: 5000 bytes/s (~51 replies of 98 bytes a
 * second), bursts of 3000 bytes (~30). Each one that passes costs a copy per container: at 1000
 * containers a flood then costs the host about half a core (bench/control-flood.ts).
 */
export const ECHO_FANOUT_RATE_BYTES_PER_SEC = 5_000;
export const ECHO_FANOUT_BURST_BYTES = 3_000;
/**
 * The ICMP error tables on eth0 and lo: ICMP errors (destination unreachable — fragmentation
 * needed among them — and time exceeded) hashed on the high byte of the source port of the packet
 * they quote, so each reaches the container that sent that packet.
 */
export const ICMP_ERROR_TABLE_HTID = 0x112;
/** The node of the ICMP table that links into the error table: the last, after the echo-reply mirrors. */
export const ICMP_ERROR_LINK_NODE = 0xfff;
/**
 * Where an ICMP error quotes the ports of the packet it answers: IPv4 header (20, no options),
 * ICMP header (8), quoted IPv4 header (20, no options): its source << 16 | destination port.
 */
export const QUOTED_PORTS_OFFSET = 48;

/**
 * IPv6 shares the IPv4 tables (port tables, ICMP error tables, the shaper's and unique flows'):
 * its link filters move u32's offset on (`offset plus N eat`) so that the tables' filters, which
 * read ports at 20 (and quoted ports at 48), read an IPv6 packet's at 40 (and 88). So a container
 * costs no IPv6 filter in the host's tables. The hash is read before the offset moves, at the
 * packet's own offset. Only packets without extension headers qualify (next header TCP or UDP):
 * the rest go to the host, never to a container.
 */
export const IP6_HEADER_BYTES = 40;
/** Where an IPv6 packet's ports are (source << 16 | destination), without extension headers. */
export const IP6_PORTS_WORD_OFFSET = IP6_HEADER_BYTES;
/** Where an ICMPv6 error quotes the ports: IPv6 header (40), ICMPv6 header (8), quoted IPv6 header (40). */
export const IP6_QUOTED_PORTS_OFFSET = 88;
/** The IPv6 tables (one bucket each) on eth0's and lo's ingress: ports (their links into the port table) and ICMPv6. */
export const IP6_TABLE_HTID = 0x115;
export const ICMP6_TABLE_HTID = 0x116;
/** IPv6 next headers: the port protocols the IPv6 links take, and ICMPv6. */
export const IP6_PORT_NEXT_HEADERS = [6, 17] as const;
export const NEXTHDR_ICMPV6 = 58;
export const NEXTHDR_HOP_BY_HOP = 0;
/** ICMPv6 types the data path treats: echo reply, neighbour advertisement. */
export const ICMP6 = Object.freeze({ ECHO_REQUEST: 128, ECHO_REPLY: 129, NEIGHBOUR_SOLICITATION: 135, NEIGHBOUR_ADVERTISEMENT: 136 } as const);

// Matches (Mesos §3.2), typed: src/tc packs them into keys.
export const ihl5: U32Match = { type: 'ipHeaderLength', words: 5 };
export const icmp: U32Match = { type: 'ipProto', protocol: 'icmp' };
/** Every packet (tc's `match u32 0 0`): no typed match says that. */
export const matchAll: U32Match = { type: 'u32', value: 0, mask: 0, at: 0 };
export const ipDst = (address: string): U32Match => ({ type: 'ipDst', address });
export const ipSrc = (address: string): U32Match => ({ type: 'ipSrc', address });
/** Unfragmented packets and first fragments (fragment offset 0): the only ones whose bytes 20–23 are ports. */
export const fragmentOffset0: U32Match = { type: 'u16', value: 0, mask: 0x1fff, at: 6 };
/** An ICMP message of this type (the byte after a 20-byte IPv4 header). */
export const icmpType = (type: number): U32Match => ({ type: 'u8', value: type, mask: 0xff, at: 20 });
/** ICMP destination unreachable (3) or time exceeded (11): 3 and 11 are the only bytes equal to 3 under 0xf7. */
export const icmpError: U32Match = { type: 'u8', value: 0x03, mask: 0xf7, at: 20 };
/** The packet an ICMP error quotes has no IP options (so its ports are at QUOTED_PORTS_OFFSET). */
export const quotedIhl5: U32Match = { type: 'u8', value: 0x05, mask: 0x0f, at: 28 };
/** The packet an ICMP error quotes came from a port of this block. */
export const quotedSrcPort = (b: PortBlock): U32Match => ({ type: 'u16', value: b.port, mask: b.mask, at: QUOTED_PORTS_OFFSET });
/** ARP operation (at 6 in the ARP header): 1 request, 2 reply. */
export const arpOp = (op: 1 | 2): U32Match => ({ type: 'u16', value: op, mask: 0xffff, at: 6 });
/** ARP sender protocol address (bytes 14–17 of the ARP header, two half-words of aligned words). */
export function arpSenderIp(address: string): U32Match[] {
  const n = ipv4Number(address);
  return [
    { type: 'u16', value: n >>> 16, mask: 0xffff, at: 14 },
    { type: 'u16', value: n & 0xffff, mask: 0xffff, at: 16 },
  ];
}
/** ARP target protocol address (bytes 24–27 of the ARP header). */
export const arpTargetIp = (address: string): U32Match => ({ type: 'u32', value: ipv4Number(address), mask: 0xffffffff, at: 24 });

/** A dotted IPv4 address as a 32-bit number. */
export function ipv4Number(address: string): number {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`not an IPv4 address: ${address}`);
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}
/** IPv6 matches. */
export const ip6Dst = (address: string): U32Match => ({ type: 'ip6Dst', address });
export const ip6Src = (address: string): U32Match => ({ type: 'ip6Src', address });
export const nextHeader = (protocol: number): U32Match => ({ type: 'ip6NextHeader', protocol });
export const icmp6 = nextHeader(NEXTHDR_ICMPV6);
export const icmp6Type = (type: number): U32Match => ({ type: 'icmp6Type', icmpType: type });
/** ICMPv6 errors: destination unreachable (1), packet too big (2), time exceeded (3), parameter problem (4): types below 8. */
export const icmp6Error: U32Match = { type: 'icmp6Type', icmpType: 0, mask: 0xf8 };
/** The next header of the packet an ICMPv6 error quotes (byte 6 of the quoted IPv6 header). */
export const quotedNextHeader = (protocol: number): U32Match => ({ type: 'u8', value: protocol, mask: 0xff, at: IP6_HEADER_BYTES + 8 + 6 });
/** A block's source or destination ports in an IPv6 packet without extension headers. */
export const ip6SrcPort = (b: PortBlock): U32Match => ({ type: 'ip6SrcPort', port: b.port, mask: b.mask });
export const ip6DstPort = (b: PortBlock): U32Match => ({ type: 'ip6DstPort', port: b.port, mask: b.mask });

/** The target address of a neighbour solicitation or advertisement (after the ICMPv6 header and 4 reserved bytes). */
export const ndTarget = (address: string): U32Match[] =>
  ipv6Words(address).map((value, i) => ({ type: 'u32', value, mask: 0xffffffff, at: IP6_HEADER_BYTES + 8 + 4 * i }));

/** A block's destination ports. */
export const dstPort = (b: PortBlock): U32Match => ({ type: 'dstPort', port: b.port, mask: b.mask });
/** A block's source ports. */
export const srcPort = (b: PortBlock): U32Match => ({ type: 'srcPort', port: b.port, mask: b.mask });

/**
 * Shared mirred actions. The kernel walks every mirred action of the machine, under the RTNL lock,
 * whenever any device goes away (mirred_device_event): with one action per filter (~18 per
 * container), every teardown grew with the number of containers. So every filter that sends to
 * one device binds one action of a fixed index instead (a filter naming an index that exists binds
 * it; the first one makes it, the last one's removal frees it). Indexes sit far above those the
 * kernel picks itself (the lowest free from 1): redirects at REDIRECT_INDEX_BASE + ifindex, the
 * ARP/ICMP mirrors at MIRROR_INDEX_BASE + 2 × ifindex (+1 for a chunk's last, which continues).
 */
export const REDIRECT_INDEX_BASE = 0x8000_0000;
export const MIRROR_INDEX_BASE = 0x4000_0000;
/** The largest interface index whose mirror actions fit below REDIRECT_INDEX_BASE. */
const MAX_SHARED_MIRROR_IFINDEX = (REDIRECT_INDEX_BASE - MIRROR_INDEX_BASE) / 2 - 1;

export const redirect = (ifindex: number): ActionSpec => ({ kind: 'mirred', action: 'redirect', ifindex, index: REDIRECT_INDEX_BASE + ifindex });

/** A mirror to `ifindex`: the chunk's last continues classification (UNSPEC), the others pipe to the next action. */
export function mirrorTo(ifindex: number, last: boolean): ActionSpec {
  const index = ifindex <= MAX_SHARED_MIRROR_IFINDEX ? { index: MIRROR_INDEX_BASE + 2 * ifindex + (last ? 1 : 0) } : {};
  return last ? { kind: 'mirred', action: 'mirror', ifindex, verdict: TC_ACT.UNSPEC, ...index } : { kind: 'mirred', action: 'mirror', ifindex, ...index };
}

export interface HostView {
  ip: string;
  mac: string;
  eth0: number;
  lo: number;
  /** The host's IPv6 addresses containers share (--ipv6); none: IPv6 off. */
  ip6?: readonly string[];
}

/** The host's IPv6 addresses containers share (none when IPv6 is off). */
export const ip6Of = (host: HostView): readonly string[] => host.ip6 ?? [];

/** What a planned u32 filter has besides where it hangs. */
export interface U32Parts {
  handle?: number;
  divisor?: number;
  matches?: U32Match[];
  terminal?: boolean;
  actions?: ActionSpec[];
  classid?: number;
  link?: number;
  hashkey?: { mask: number; at: number };
  /** With `link`: move the offset on (tc `offset plus N eat`), for IPv6 into the IPv4 tables. */
  offset?: { plus: number; eat: true };
}

type Protocol = 'ip' | 'arp' | 'all' | 'ipv6';

/**
 * Every planned u32 filter is built here, by assignment. (Not by spreading one spec into another:
 * V8 copies an object holding a heap number, such as the parent ffff:0, on a slow path that left
 * the specs slow to read too; ~5 µs a filter.) A node with a handle in one of our tables also
 * names its table and bucket (`ht`), as tc's `ht` does.
 */
export function u32(ifindex: number, parent: number, priority: number, protocol: Protocol, parts: U32Parts): U32FilterSpec {
  const s: U32FilterSpec = { kind: 'u32', ifindex, parent, priority, protocol };
  if (parts.handle !== undefined) {
    s.handle = parts.handle;
    if (parts.divisor !== undefined) s.divisor = parts.divisor;
    else s.ht = htOf(parts.handle);
  }
  if (parts.matches) s.matches = parts.matches;
  if (parts.terminal) s.terminal = true;
  if (parts.actions) s.actions = parts.actions;
  if (parts.classid !== undefined) s.classid = parts.classid;
  if (parts.link !== undefined) s.link = parts.link;
  if (parts.hashkey) s.hashkey = parts.hashkey;
  if (parts.offset) s.offset = parts.offset;
  return s;
}

/** A u32 filter node with a handle of ours. */
export function u32Node(
  ifindex: number,
  parent: number,
  priority: number,
  protocol: 'ip' | 'arp' | 'ipv6',
  handle: number,
  parts: U32Parts,
): U32FilterSpec & { handle: number } {
  parts.handle = handle;
  return u32(ifindex, parent, priority, protocol, parts) as U32FilterSpec & { handle: number };
}

export const ingressFilter = (ifindex: number, priority: number, protocol: 'ip' | 'arp' | 'ipv6', parts: U32Parts): U32FilterSpec =>
  u32(ifindex, INGRESS_HANDLE, priority, protocol, parts);
