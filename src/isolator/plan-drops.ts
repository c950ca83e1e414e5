/**
 * The data path's drops (data path v2), as classic-BPF `bpf` filters in direct-action mode: u32
 * cannot say "not", and this kernel family may lack gact, so a filter whose program returns
 * TC_ACT_SHOT is the drop, and the ingress qdisc it hangs on counts it (`drops` in its
 * statistics). Each is the last filter of its device (PRIO.DROP), after every steering filter.
 * Programs read the frame from the Ethernet header (cls_bpf at ingress pushes it back).
 */
import { TC_ACT, assemble, ipv6Words, ja, jeq, jge, jgt, jset, ldAbs, ret } from '../tc/index.js';
import type { BpfFilterSpec, CbpfInsn, CbpfItem } from '../tc/index.js';
import type { HostView } from './plan-objects.js';
import { IP6_HEADER_BYTES, IP6_PORT_NEXT_HEADERS, INGRESS_HANDLE, PRIO, ip6Of, ipv4Number } from './plan-objects.js';

/** The handle of the one drop filter of a device (a cls_bpf handle is a plain number). */
export const DROP_FILTER_HANDLE = 1;

/** IP protocols with 16-bit ports at the start of their header: TCP, UDP, DCCP, SCTP, UDP-Lite. */
const PORT_PROTOCOLS = [6, 17, 33, 132, 136] as const;

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;
// Offsets in the frame: Ethernet header (14), then the IPv4 header with no options.
const ETHERTYPE_AT = 12;
const IP_AT = 14;
const IP_VERSION_IHL_AT = IP_AT;
const IP_FRAG_AT = IP_AT + 6;
const IP_PROTO_AT = IP_AT + 9;
const IP_DST_AT = IP_AT + 16;
const DST_PORT_AT = IP_AT + 20 + 2;
const IP6_NEXT_HEADER_AT = IP_AT + 6;
const IP6_DST_AT = IP_AT + 24;
const IP6_DST_PORT_AT = IP_AT + IP6_HEADER_BYTES + 2;
/** TC_ACT_UNSPEC as a program's return value: not ours, go on with the next filter. */
const CONTINUE = TC_ACT.UNSPEC >>> 0;

const drop = (ifindex: number, program: CbpfInsn[]): BpfFilterSpec => ({
  kind: 'bpf',
  ifindex,
  parent: INGRESS_HANDLE,
  priority: PRIO.DROP,
  protocol: 'all',
  handle: DROP_FILTER_HANDLE,
  directAction: true,
  program,
});

/**
 * A container's host veth: drop whatever the steering filters before it did not take — a source
 * port the container does not own, a source address not the host's, anything neither IPv4 nor ARP.
 */
export const dropAllPlan = (veth: number): BpfFilterSpec => drop(veth, [ret(TC_ACT.SHOT)]);

/** An inclusive port range. */
export interface PortRange {
  begin: number;
  end: number;
}

/** At most this many managed ranges: every jump of the program must reach its end (255 instructions). */
export const MAX_DROP_RANGES = 100;

/** Whether the protocol byte in A is one of `protocols`: on to `ports`, else to `out`. */
const portProtocol = (protocols: readonly number[], ports: string, out: string): CbpfItem[] =>
  protocols.map((p, i) => (i + 1 < protocols.length ? jeq(p, ports, 0) : jeq(p, 0, out)));

/**
 * The host's eth0: drop IPv4 and IPv6 to the host (its MAC and an address of its) on a managed
 * port (`managed`, the containers' ports and the ephemeral pool) that no container holds — the
 * held ones were steered by the port tables before this filter is reached. Fragments other than
 * the first (no ports in them), IPv4 packets with options and IPv6 packets with extension headers
 * (which the port tables do not read either) go to the host.
 */
export function unheldPortsDropPlan(host: HostView, managed: readonly PortRange[]): BpfFilterSpec {
  if (managed.length > MAX_DROP_RANGES) throw new RangeError(`at most ${MAX_DROP_RANGES} managed port ranges, got ${managed.length}`);
  const mac = host.mac.split(':').map((x) => parseInt(x, 16));
  const mac0to3 = ((mac[0]! << 24) | (mac[1]! << 16) | (mac[2]! << 8) | mac[3]!) >>> 0;
  const mac4to5 = (mac[4]! << 8) | mac[5]!;
  const v6 = ip6Of(host);
  // Each address: its four words, the last one matching on to the next header, a mismatch on to the next address.
  const ipv6Checks: CbpfItem[] = v6.flatMap((a, i) => {
    const next = i + 1 < v6.length ? `addr6_${i + 1}` : 'out';
    return [
      ...(i ? [{ label: `addr6_${i}` }] : []),
      ...ipv6Words(a).flatMap((w, k) => [ldAbs('w', IP6_DST_AT + 4 * k), jeq(w, k === 3 ? 'nexthdr6' : 0, next)]),
    ];
  });
  const program = assemble([
    ldAbs('w', 0),
    jeq(mac0to3, 0, 'out'),
    ldAbs('h', 4),
    jeq(mac4to5, 0, 'out'),
    ldAbs('h', ETHERTYPE_AT),
    jeq(ETH_P_IP, 'ip4', 0),
    jeq(ETH_P_IPV6, v6.length ? 'ip6' : 'out', 'out'),
    { label: 'ip4' },
    ldAbs('w', IP_DST_AT),
    jeq(ipv4Number(host.ip), 0, 'out'),
    ldAbs('b', IP_VERSION_IHL_AT),
    jeq(0x45, 0, 'out'),
    ldAbs('h', IP_FRAG_AT),
    jset(0x1fff, 'out', 0),
    ldAbs('b', IP_PROTO_AT),
    ...portProtocol(PORT_PROTOCOLS, 'ports4', 'out'),
    { label: 'ports4' },
    ldAbs('h', DST_PORT_AT),
    ja('ranges'),
    ...(v6.length
      ? [
          { label: 'ip6' },
          ...ipv6Checks,
          { label: 'nexthdr6' },
          ldAbs('b', IP6_NEXT_HEADER_AT),
          // (IPv6 steers TCP and UDP only: the rest to a held port is the host's, not dropped as unheld.)
          ...portProtocol(IP6_PORT_NEXT_HEADERS, 'ports6', 'out'),
          { label: 'ports6' },
          ldAbs('h', IP6_DST_PORT_AT),
          ja('ranges'),
        ]
      : []),
    // (Here, not at the end: a conditional jump reaches at most 255 instructions, and the ranges may take 200.)
    { label: 'out' },
    ret(CONTINUE),
    { label: 'ranges' },
    ...managed.flatMap((r, i) => {
      const next = i + 1 < managed.length ? `range${i + 1}` : 'pass';
      return [...(i ? [{ label: `range${i}` }] : []), jge(r.begin, 0, next), jgt(r.end, next, 'drop')];
    }),
    { label: 'pass' },
    ret(CONTINUE),
    { label: 'drop' },
    ret(TC_ACT.SHOT),
  ]);
  return drop(host.eth0, program);
}
