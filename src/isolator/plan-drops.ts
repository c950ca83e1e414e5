/**
 * The data path's drops (data path v2), as classic-BPF `bpf` filters in direct-action mode: u32
 * cannot say "not", and this kernel family may lack gact, so a filter whose program returns
 * TC_ACT_SHOT is the drop, and the ingress qdisc it hangs on counts it (`drops` in its
 * statistics). Each is the last filter of its device (PRIO.DROP), after every steering filter.
 * Programs read the frame from the Ethernet header (cls_bpf at ingress pushes it back).
 */
import { TC_ACT, assemble, jeq, jge, jgt, jset, ldAbs, ret } from '../tc/index.js';
import type { BpfFilterSpec, CbpfInsn } from '../tc/index.js';
import type { HostView } from './plan-objects.js';
import { INGRESS_HANDLE, PRIO, ipv4Number } from './plan-objects.js';

/** The handle of the one drop filter of a device (a cls_bpf handle is a plain number). */
export const DROP_FILTER_HANDLE = 1;

/** IP protocols with 16-bit ports at the start of their header: TCP, UDP, DCCP, SCTP, UDP-Lite. */
const PORT_PROTOCOLS = [6, 17, 33, 132, 136] as const;

const ETH_P_IP = 0x0800;
// Offsets in the frame: Ethernet header (14), then the IPv4 header with no options.
const ETHERTYPE_AT = 12;
const IP_AT = 14;
const IP_VERSION_IHL_AT = IP_AT;
const IP_FRAG_AT = IP_AT + 6;
const IP_PROTO_AT = IP_AT + 9;
const IP_DST_AT = IP_AT + 16;
const DST_PORT_AT = IP_AT + 20 + 2;
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

/**
 * The host's eth0: drop IPv4 to the host (its MAC and address) on a managed port (`managed`, the
 * containers' ports and the ephemeral pool) that no container holds — the held ones were steered
 * by the port tables before this filter is reached. Fragments other than the first (no ports in
 * them) and packets with IP options (which the port tables do not read either) go to the host.
 */
export function unheldPortsDropPlan(host: HostView, managed: readonly PortRange[]): BpfFilterSpec {
  if (managed.length > MAX_DROP_RANGES) throw new RangeError(`at most ${MAX_DROP_RANGES} managed port ranges, got ${managed.length}`);
  const mac = host.mac.split(':').map((x) => parseInt(x, 16));
  const mac0to3 = ((mac[0]! << 24) | (mac[1]! << 16) | (mac[2]! << 8) | mac[3]!) >>> 0;
  const mac4to5 = (mac[4]! << 8) | mac[5]!;
  const program = assemble([
    ldAbs('h', ETHERTYPE_AT),
    jeq(ETH_P_IP, 0, 'pass'),
    ldAbs('w', IP_DST_AT),
    jeq(ipv4Number(host.ip), 0, 'pass'),
    ldAbs('w', 0),
    jeq(mac0to3, 0, 'pass'),
    ldAbs('h', 4),
    jeq(mac4to5, 0, 'pass'),
    ldAbs('b', IP_VERSION_IHL_AT),
    jeq(0x45, 0, 'pass'),
    ldAbs('h', IP_FRAG_AT),
    jset(0x1fff, 'pass', 0),
    ldAbs('b', IP_PROTO_AT),
    ...PORT_PROTOCOLS.map((p, i) => (i + 1 < PORT_PROTOCOLS.length ? jeq(p, 'ports', 0) : jeq(p, 0, 'pass'))),
    { label: 'ports' },
    ldAbs('h', DST_PORT_AT),
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
