/**
 * Egress shaping on the host's side (data path v2, --egress_shaping_placement=host, the default).
 * Mesos shaped a container's egress with HTB on the container's own eth0, where root in the
 * container removes it with one `tc qdisc del`. Here the container's veth filters send its
 * port-checked IPv4 to the *shaper*, a veth pair of the host's own namespace: on `pmi-shape`'s
 * egress an HTB holds one class per limited container (classified by source port, as unique flows
 * are), and what comes out at the other end, `pmi-shape-rx`, is sent on by destination — the
 * host's address and 127/8 to lo, everything else to eth0 — as the veth filters would have sent
 * it. Nothing of this is inside the container's namespace. (An ifb cannot stand in for the pair:
 * it hands a packet back to the device it came from, the veth, past that device's filters.)
 *
 * ICMP and ARP from a container are not shaped (they carry no ports to classify by), nor traffic
 * to the container (that is --ingress_rate_limit_per_container's HTB on the veth's egress).
 */
import { TC_H, tcHandle, u32Handle } from '../tc/index.js';
import type { HtbClassSpec, PortBlock, U32Match } from '../tc/index.js';
import type { HostPortFilter } from './plan.js';
import type { HostView, TcObject } from './plan-objects.js';
import {
  HTB_HANDLE,
  INGRESS_HANDLE,
  IP6_PORTS_WORD_OFFSET,
  IP6_PORT_NEXT_HEADERS,
  PORTS_WORD_OFFSET,
  PORT_TABLE_DIVISOR,
  PRIO,
  filterObject,
  ihl5,
  ipDst,
  ip6Dst,
  ip6Of,
  matchAll,
  nextHeader,
  redirect,
  srcPort,
  u32,
  u32Node,
} from './plan-objects.js';
import type { HtbConfig } from './rates.js';

/** The shaper's two ends, in the host's namespace. */
export const SHAPER_NAMES = Object.freeze({ tx: 'pmi-shape', rx: 'pmi-shape-rx' } as const);

/** The shaper's interface indexes. */
export interface ShaperView {
  tx: number;
  rx: number;
}

/**
 * Its interface indexes, chosen by us (as the veths' are, from VETH_INDEX_BASE = 1 000 000 up): any
 * process knows them without asking the kernel.
 */
export const SHAPER_VIEW: ShaperView = Object.freeze({ tx: 999_998, rx: 999_999 });

/** The table of per-container classifiers on the shaper's HTB, keyed on the source port's high byte. */
export const SHAPER_TABLE_HTID = 0x103;
/** The link into that table: node 800 of the root table. */
export const SHAPER_LINK_HANDLE = u32Handle({ htid: 0x800, node: 0x800 });
/** A container's class minor: its mirror slot (unique among live containers) plus this. */
export const SHAPER_CLASS_BASE = 2;
export const MAX_SHAPER_CLASS = 0xffff;

/** The HTB class of a container on the shaper (1:<minor>). */
export function shaperClassOf(mirrorSlot: number): number {
  const minor = mirrorSlot + SHAPER_CLASS_BASE;
  if (minor > MAX_SHAPER_CLASS) throw new RangeError(`the shaper has room for ${MAX_SHAPER_CLASS - SHAPER_CLASS_BASE + 1} shaped containers`);
  return minor;
}

/**
 * The shaper's shared objects, created with the first container shaped on the host: HTB at the
 * root of `pmi-shape` (default class 0: a packet no container's class takes is sent unshaped),
 * its source-port table, and on `pmi-shape-rx`'s ingress the split by destination.
 */
export function shaperSharedPlan(host: HostView, s: ShaperView): TcObject[] {
  const table = u32Handle({ htid: SHAPER_TABLE_HTID });
  // With handles of ours (see rxHandle) so that adding them again, as each process's first
  // host-shaped create does, is EEXIST, not a second copy.
  const out = (matches: (typeof matchAll)[], to: number, priority: number, handle: number) =>
    filterObject(u32(s.rx, INGRESS_HANDLE, priority, 'ip', { handle, matches, terminal: true, actions: [redirect(to)] }));
  return [
    { type: 'qdisc', spec: { kind: 'htb', ifindex: s.tx, parent: TC_H.ROOT, handle: HTB_HANDLE, defaultClass: 0 } },
    filterObject(u32(s.tx, HTB_HANDLE, PRIO.IP_LOW, 'ip', { handle: table, divisor: PORT_TABLE_DIVISOR })),
    // With a handle of ours (in the root table, 800:, of the qdisc's first priority) so that adding it again is EEXIST, not a second link.
    filterObject(
      u32(s.tx, HTB_HANDLE, PRIO.IP_LOW, 'ip', {
        handle: SHAPER_LINK_HANDLE,
        matches: [ihl5],
        link: table,
        hashkey: { mask: 0xff000000, at: PORTS_WORD_OFFSET },
      }),
    ),
    { type: 'qdisc', spec: { kind: 'ingress', ifindex: s.rx } },
    out([ipDst(host.ip)], host.lo, PRIO.IP, rxHandle(0, 0)),
    out([ipDst('127.0.0.0/8')], host.lo, PRIO.IP, rxHandle(0, 1)),
    out([matchAll], host.eth0, PRIO.IP_LOW, rxHandle(1, 0)),
    ...shaperShared6(host, s),
  ];
}

/**
 * IPv6 on the shaper (--ipv6): TCP and UDP without extension headers into the same source-port
 * table (the link moves the offset on, plan-ipv6.ts), through node 800 of the second root table;
 * at the rx end, the host's IPv6 addresses to lo, the rest to eth0.
 */
function shaperShared6(host: HostView, s: ShaperView): TcObject[] {
  const addresses = ip6Of(host);
  if (!addresses.length) return [];
  const table = u32Handle({ htid: SHAPER_TABLE_HTID });
  const out = (matches: U32Match[], to: number, priority: number, handle: number) =>
    filterObject(u32(s.rx, INGRESS_HANDLE, priority, 'ipv6', { handle, matches, terminal: true, actions: [redirect(to)] }));
  return [
    ...IP6_PORT_NEXT_HEADERS.map((nh, i) =>
      filterObject(
        u32(s.tx, HTB_HANDLE, PRIO.IP6_LOW, 'ipv6', {
          handle: u32Handle({ htid: 0x801, node: 0x800 + i }),
          matches: [nextHeader(nh)],
          link: table,
          hashkey: { mask: 0xff000000, at: IP6_PORTS_WORD_OFFSET },
          offset: { plus: IP6_PORTS_WORD_OFFSET - PORTS_WORD_OFFSET, eat: true },
        }),
      ),
    ),
    ...addresses.map((a, i) => out([ip6Dst(a)], host.lo, PRIO.IP6, rxHandle(2, i))),
    out([matchAll], host.eth0, PRIO.IP6_LOW, rxHandle(3, 0)),
  ];
}

/**
 * Node k of the root table of the rx end's n-th priority: the kernel gives a new qdisc's priorities
 * root tables 800:, 801:, … in the order they are made, which is shaperSharedPlan's (IP, IP_LOW,
 * then IPv6's IP6 and IP6_LOW).
 */
const rxHandle = (n: number, k: number): number => u32Handle({ htid: 0x800 + n, node: 0x800 + k });

/** A container's class on the shaper and, when the kernel has one, its fq_codel leaf. */
export function shaperClassPlan(s: ShaperView, minor: number, config: HtbConfig, fqCodel: boolean, quantum: number): TcObject[] {
  const classid = tcHandle(1, minor);
  const cls: HtbClassSpec = { kind: 'htb', ifindex: s.tx, parent: HTB_HANDLE, classid, rateBytesPerSec: config.rateBytesPerSec, quantumBytes: quantum };
  if (config.ceilBytesPerSec !== undefined) cls.ceilBytesPerSec = config.ceilBytesPerSec;
  if (config.burstBytes !== undefined) cls.burstBytes = config.burstBytes;
  const out: TcObject[] = [{ type: 'class', spec: cls }];
  if (fqCodel) out.push({ type: 'qdisc', spec: { kind: 'fq_codel', ifindex: s.tx, parent: classid } });
  return out;
}

/** One of a container's classifiers in the shaper's table: its block's source ports to its class. */
export function shaperFilterPlan(s: ShaperView, block: PortBlock, handle: number, minor: number): HostPortFilter {
  const spec = u32Node(s.tx, HTB_HANDLE, PRIO.IP_LOW, 'ip', handle, { matches: [srcPort(block)], terminal: true, classid: tcHandle(1, minor) });
  return { role: 'shaper', block, spec };
}
