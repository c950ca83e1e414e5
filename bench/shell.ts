/**
 * The shell baseline of container_setup: the topology the engine builds, as a shell script of
 * `ip`/`tc`/`sysctl` commands, one process per command, as Mesos' helper scripts and most
 * hand-rolled setups do. The commands are generated from the engine's own pure planner
 * (src/isolator/plan.ts), so both build the same objects: the veth pair (peer in the container's
 * namespace, host MAC and MTU, our interface indexes), the veth's ingress qdisc and filters, the
 * host eth0/lo port-table filters (same handles), the ARP/ICMP mirror chunk, the container's
 * lo/eth0/address/route, its routing rules and their routes, and the sysctls. The benchmark checks the
 * equivalence on one container by comparing kernel dumps of both (see container-setup.ts).
 *
 * Where tc has no syntax for what the engine sends: a u32 filter that ends classification
 * without an action (TC_U32_TERMINAL alone) is written with `classid 1:1`, which sets the same
 * flag (the class is meaningless under an ingress qdisc). The data path's drops are `bpf
 * bytecode '…' da` filters; the echo fan-out is made in the host setup (not timed).
 */
import { EphemeralPortsAllocator } from '../src/isolator/allocator.js';
import type { ContainerView, HostView, TcObject } from '../src/isolator/plan.js';
import {
  ECHO_FANOUT_NAMES,
  ECHO_FANOUT_VIEW,
  MIRRORS_PER_FILTER,
  echoFanoutPlan,
  icmpTablePlan,
  unheldPortsDropPlan,
  hostNodes,
  hostPortFilters,
  mirrorChunk,
  mirrorChunkRef,
  mirrorTablePlan,
  portTablePlan,
  selfPortRules,
  selfRoutingBase,
  vethFilters,
} from '../src/isolator/plan.js';
import { portSetBlocks } from '../src/isolator/port-blocks.js';
import { PortSet } from '../src/isolator/port-set.js';
import { TC_ACT, formatBytecode, formatTcHandle, formatU32Handle, packMatches, parseTcHandle, parseU32Handle } from '../src/tc/index.js';
import type { ActionSpec, PortBlock, U32FilterSpec } from '../src/tc/index.js';
import type { RouteSpec, RuleSpec } from '../src/rtnl/index.js';

export interface ShellHostFacts {
  /** Lab namespace of the host. */
  ns: string;
  eth0: { name: string; index: number; address: string; mtu: number };
  lo: { name: string; index: number };
  ip: string;
  prefixlen: number;
  gateway: string;
  /** The host's MAC for the gateway, when it has one: containers get it as a permanent neighbour. */
  gatewayMac?: string;
  /** The managed ports (for the drop of unheld ones on eth0), inclusive. */
  managed: Array<{ begin: number; end: number }>;
}

export interface ShellContainer {
  id: string;
  /** `ip netns` name of its namespace. */
  ns: string;
  veth: string;
  vethIndex: number;
  ephemeral: { begin: number; end: number };
  blocks: PortBlock[];
  /** Host eth0/lo port-table filters (with their handles). */
  hostFilters: ReturnType<typeof hostPortFilters>;
  mirrorSlot: number;
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;
/** A table (and bucket) as tc reads it: '100:' or '100:4e:'. */
const table = (h: number) => `${(h >>> 20).toString(16)}:${(h >>> 12) & 0xff ? ((h >>> 12) & 0xff).toString(16) : ''}${(h >>> 12) & 0xff ? ':' : ''}`;

function actionText(a: ActionSpec, dev: (ifindex: number) => string): string {
  if ('bindIndex' in a) throw new Error('shell baseline: no bound actions in the benchmark topology');
  if (a.action === 'redirect') return `action mirred egress redirect dev ${dev(a.ifindex)}`;
  return `action mirred egress mirror dev ${dev(a.ifindex)} ${a.verdict === TC_ACT.UNSPEC ? 'continue' : 'pipe'}`;
}

const filter = (spec: U32FilterSpec): TcObject => ({ type: 'filter', spec });

/** `tc` arguments (after `tc -n NS`) for one planned object (its u32 keys packed by src/tc, as the engine sends them). */
export function tcArgs(o: TcObject, verb: 'add' | 'replace' | 'del', dev: (ifindex: number) => string): string {
  if (o.type === 'qdisc') {
    const q = o.spec;
    if (q.kind === 'tbf') return `qdisc ${verb} dev ${dev(q.ifindex)} root tbf rate ${q.rateBytesPerSec}bps burst ${q.burstBytes} limit ${q.limitBytes}`;
    if (q.kind !== 'ingress') throw new Error(`shell baseline: no ${q.kind} shaping in the benchmark topology`);
    return `qdisc ${verb} dev ${dev(q.ifindex)} ingress`;
  }
  if (o.type === 'bpf') {
    const b = o.spec;
    const head = `filter ${verb} dev ${dev(b.ifindex)} parent ${formatTcHandle(parseTcHandle(b.parent))} prio ${b.priority} protocol ${b.protocol} handle ${b.handle} bpf`;
    return verb === 'del' ? head : `${head} bytecode '${formatBytecode(b.program)}'${b.directAction ? ' da' : ''}`;
  }
  if (o.type !== 'filter') throw new Error('shell baseline: HTB classes are not part of the benchmark topology');
  const p = o.spec;
  const head = `filter ${verb} dev ${dev(p.ifindex)} parent ${formatTcHandle(parseTcHandle(p.parent))} prio ${p.priority} protocol ${p.protocol}`;
  const h = p.handle === undefined ? undefined : parseU32Handle(p.handle);
  const handle = h === undefined ? '' : p.divisor !== undefined ? ` handle ${table(h)}` : ` handle ${formatU32Handle(h)}`;
  if (verb === 'del') return `${head}${handle} u32`;
  if (p.divisor !== undefined) return `${head}${handle} u32 divisor ${p.divisor}`;
  const parts = [`${head}${handle} u32`];
  if (p.ht !== undefined) parts.push(`ht ${table(parseU32Handle(p.ht))}`);
  if (p.link !== undefined) parts.push(`link ${table(parseU32Handle(p.link))}${p.hashkey ? ` hashkey mask ${hex(p.hashkey.mask)} at ${p.hashkey.at}` : ''}`);
  for (const k of packMatches(p.matches ?? [])) parts.push(`match u32 ${hex(k.val)} ${hex(k.mask)} at ${k.off}`);
  if (p.classid !== undefined) parts.push(`classid ${formatTcHandle(parseTcHandle(p.classid))}`);
  else if (p.terminal && !p.actions?.length) parts.push('classid 1:1');
  for (const a of p.actions ?? []) parts.push(actionText(a, dev));
  return parts.join(' ');
}

/** `ip` arguments (after `ip -n NS`) for one planned routing rule. */
export function ipRuleArgs(r: RuleSpec, verb: 'add' | 'del'): string {
  const parts = [`${r.family === 'inet6' ? '-6 ' : ''}rule ${verb}`];
  if (r.priority !== undefined) parts.push(`pref ${r.priority}`);
  if (r.iif !== undefined) parts.push(`iif ${r.iif}`);
  if (r.dst !== undefined) parts.push(`to ${r.dst}`);
  if (r.ipProto !== undefined) parts.push(`ipproto ${r.ipProto}`);
  if (r.dport !== undefined) parts.push(`dport ${r.dport.begin}-${r.dport.end}`);
  parts.push(`lookup ${r.table ?? 'main'}`);
  return parts.join(' ');
}

/** `ip` arguments (after `ip -n NS`) for adding one planned route. */
export function ipRouteArgs(r: RouteSpec, dev: (ifindex: number) => string): string {
  const parts = [`route add ${r.dst}`];
  if (r.gateway !== undefined) parts.push(`via ${r.gateway}`);
  if (r.oif !== undefined) parts.push(`dev ${dev(r.oif)}`);
  if (r.prefsrc !== undefined) parts.push(`src ${r.prefsrc}`);
  if (r.table !== undefined) parts.push(`table ${r.table}`);
  return parts.join(' ');
}

/**
 * The isolator's bookkeeping (ephemeral blocks, port-table nodes, mirror slots) for scripts, so
 * that the shell builds exactly what the engine would for the same sequence of containers.
 */
export class ShellIsolator {
  private readonly allocator: EphemeralPortsAllocator;
  /** Port-table nodes in use per host device role (the planner's bookkeeping type). */
  private readonly nodes = hostNodes();
  private readonly containers = new Map<string, ShellContainer>();
  private readonly view: HostView;
  private nextSeq: number;

  constructor(
    readonly host: ShellHostFacts,
    pool: PortSet,
    perContainer: number,
    firstSeq = 1,
  ) {
    this.allocator = new EphemeralPortsAllocator(pool, perContainer);
    this.view = { ip: host.ip, mac: host.eth0.address, eth0: host.eth0.index, lo: host.lo.index };
    this.nextSeq = firstSeq;
  }

  private hostDev = (ifindex: number): string => {
    if (ifindex === this.host.eth0.index) return this.host.eth0.name;
    if (ifindex === this.host.lo.index) return this.host.lo.name;
    if (ifindex === ECHO_FANOUT_VIEW.tx) return ECHO_FANOUT_NAMES.tx;
    if (ifindex === ECHO_FANOUT_VIEW.rx) return ECHO_FANOUT_NAMES.rx;
    for (const c of this.containers.values()) if (c.vethIndex === ifindex) return c.veth;
    throw new Error(`shell baseline: unknown host device ${ifindex}`);
  };

  private tc(ns: string, p: TcObject, verb: 'add' | 'replace' | 'del', dev: (ifindex: number) => string): string {
    return `tc -n ${ns} ${tcArgs(p, verb, dev)}`;
  }

  /** The host-wide setup (done once, not timed): lo like eth0, ingress qdiscs, sysctls, tables. */
  hostSetup(): string[] {
    const h = this.host;
    const ns = h.ns;
    const lines = [
      `ip -n ${ns} link set ${h.lo.name} address ${h.eth0.address} mtu ${h.eth0.mtu}`,
      `tc -n ${ns} qdisc add dev ${h.eth0.name} ingress`,
      `tc -n ${ns} qdisc add dev ${h.lo.name} ingress`,
      `ip netns exec ${ns} sysctl -qw net.ipv4.conf.${h.lo.name}.route_localnet=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.${h.lo.name}.rp_filter=0 ` +
        `net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.${h.lo.name}.send_redirects=0 net.ipv4.conf.${h.lo.name}.accept_local=1`,
    ];
    const shared = [
      ...portTablePlan(this.view, 'eth0'),
      ...portTablePlan(this.view, 'lo'),
      ...mirrorTablePlan(this.view, 'arp'),
      ...icmpTablePlan(this.view, 'eth0'),
      ...icmpTablePlan(this.view, 'lo'),
    ];
    for (const p of shared) lines.push(this.tc(ns, filter(p), 'add', this.hostDev));
    // The echo fan-out's pair (host-pairs.ts) and its objects, then the drop of unheld managed ports.
    const { tx, rx } = ECHO_FANOUT_NAMES;
    lines.push(
      `ip -n ${ns} link add ${tx} index ${ECHO_FANOUT_VIEW.tx} address ${h.eth0.address} mtu ${h.eth0.mtu} type veth ` +
        `peer name ${rx} index ${ECHO_FANOUT_VIEW.rx} address ${h.eth0.address} mtu ${h.eth0.mtu}`,
      `ip netns exec ${ns} sysctl -qw net.ipv6.conf.${tx}.disable_ipv6=1 net.ipv6.conf.${rx}.disable_ipv6=1`,
    );
    for (const o of echoFanoutPlan(this.view)) lines.push(this.tc(ns, o, 'add', this.hostDev));
    lines.push(`ip -n ${ns} link set ${tx} up`, `ip -n ${ns} link set ${rx} up`);
    lines.push(this.tc(ns, { type: 'bpf', spec: unheldPortsDropPlan(this.view, h.managed) }, 'add', this.hostDev));
    return lines;
  }

  private mirrorLines(chunk: number): string[] {
    const veths = [...this.containers.values()]
      .filter((c) => Math.floor(c.mirrorSlot / MIRRORS_PER_FILTER) === chunk)
      .sort((a, b) => a.mirrorSlot - b.mirrorSlot)
      .map((c) => c.vethIndex);
    return (['arp', 'icmp'] as const).map((what) =>
      veths.length
        ? this.tc(this.host.ns, filter(mirrorChunk(this.view, what, chunk, veths)), 'replace', this.hostDev)
        : this.tc(this.host.ns, filter(mirrorChunkRef(this.view, what, chunk)), 'del', this.hostDev),
    );
  }

  /**
   * The script creating one container. `createNs`: the script makes the namespace (`ip netns
   * add`), as the engine does when given none. `fixed` pins the choices to an engine container's
   * (for the equivalence check).
   */
  create(
    id: string,
    ports: PortSet,
    opts: { ns: string; createNs: boolean; ifname?: string; fixed?: { seq: number; ephemeral: { begin: number; end: number }; mirrorSlot: number } },
  ): { script: string[]; container: ShellContainer } {
    if (this.containers.has(id)) throw new Error(`shell baseline: container ${id} exists`);
    const h = this.host;
    const seq = opts.fixed?.seq ?? this.nextSeq++;
    let ephemeral = opts.fixed?.ephemeral;
    if (ephemeral) {
      if (!this.allocator.claim(ephemeral.begin, ephemeral.end)) throw new Error('shell baseline: ephemeral block taken');
    } else {
      ephemeral = this.allocator.allocate();
      if (!ephemeral) throw new Error('shell baseline: ephemeral pool exhausted');
    }
    const used = new Set([...this.containers.values()].map((c) => c.mirrorSlot));
    let slot = 0;
    while (used.has(slot)) slot++;
    const mirrorSlot = opts.fixed?.mirrorSlot ?? slot;
    const vethIndex = 1_000_000 + seq;
    const veth = `pmi${seq}`;
    const blocks = [...portSetBlocks(PortSet.ofRanges([[ephemeral.begin, ephemeral.end]])), ...portSetBlocks(ports)];
    const view: ContainerView = { veth: vethIndex, cEth0: vethIndex, cLo: 1, blocks, fqCodel: false, mtu: h.eth0.mtu, selfRouting: true };
    const hostFilters = hostPortFilters(this.view, view, blocks, this.nodes);
    const c: ShellContainer = { id, ns: opts.ns, veth, vethIndex, ephemeral, blocks, hostFilters, mirrorSlot };
    this.containers.set(id, c);
    const ifname = opts.ifname ?? h.eth0.name;
    const cdev = (ifindex: number) => (ifindex === 1 ? 'lo' : ifname);
    const H = h.ns;
    const C = opts.ns;
    const script: string[] = [];
    if (opts.createNs) script.push(`ip netns add ${C}`);
    script.push(
      `ip -n ${H} link add ${veth} index ${vethIndex} address ${h.eth0.address} mtu ${h.eth0.mtu} type veth ` +
        `peer name ${ifname} index ${vethIndex} address ${h.eth0.address} mtu ${h.eth0.mtu} netns ${C}`,
    );
    for (const p of vethFilters(this.view, view)) script.push(this.tc(H, p, 'add', this.hostDev));
    for (const f of hostFilters) script.push(this.tc(H, filter(f.spec), 'add', this.hostDev));
    script.push(...this.mirrorLines(Math.floor(mirrorSlot / MIRRORS_PER_FILTER)));
    script.push(`ip -n ${H} link set ${veth} up`);
    script.push(`ip netns exec ${H} sysctl -qw net.ipv6.conf.${veth}.disable_ipv6=1`);
    script.push(
      `ip -n ${C} link set lo address ${h.eth0.address} mtu ${h.eth0.mtu} up`,
      `ip -n ${C} link set ${ifname} up`,
      `ip -n ${C} addr add ${h.ip}/${h.prefixlen} dev ${ifname}`,
      `ip -n ${C} route add default via ${h.gateway} dev ${ifname}`,
      ...(h.gatewayMac ? [`ip -n ${C} neigh replace ${h.gateway} lladdr ${h.gatewayMac} nud permanent dev ${ifname}`] : []),
    );
    script.push(
      `ip netns exec ${C} sysctl -qw "net.ipv4.ip_local_port_range=${ephemeral.begin} ${ephemeral.end}" net.ipv4.conf.${ifname}.accept_local=1 net.ipv4.conf.${ifname}.route_localnet=1 ` +
        'net.ipv4.conf.lo.accept_local=1 net.ipv4.conf.lo.route_localnet=1 net.ipv6.conf.all.disable_ipv6=1',
    );
    // What it sends to itself: its rules and routes (plan-self.ts), the local table's rule moved.
    const self = selfRoutingBase({ ip: h.ip, mac: h.eth0.address }, vethIndex);
    for (const r of [...self.rules, ...selfPortRules(this.view, blocks)]) script.push(`ip -n ${C} ${ipRuleArgs(r, 'add')}`);
    for (const a of self.neighbours.addresses) script.push(`ip -n ${C} neigh replace ${a} lladdr ${self.neighbours.mac} nud permanent dev ${ifname}`);
    for (const r of self.routes) script.push(`ip -n ${C} ${ipRouteArgs(r, cdev)}`);
    for (const r of self.localRuleMoved) script.push(`ip -n ${C} ${ipRuleArgs(r, 'del')}`);
    return { script, container: c };
  }

  /** The script destroying a container: its port filters, its mirror slot, the veth, the namespace. */
  destroy(id: string, opts: { removeNs: boolean }): string[] {
    const c = this.containers.get(id);
    if (!c) throw new Error(`shell baseline: unknown container ${id}`);
    const H = this.host.ns;
    const script = c.hostFilters.map((f) => this.tc(H, filter(f.spec), 'del', this.hostDev));
    this.containers.delete(id);
    for (const f of c.hostFilters) this.nodes[f.role].release({ ht: f.spec.handle }, f.spec.handle);
    this.allocator.release(c.ephemeral.begin, c.ephemeral.end);
    script.push(...this.mirrorLines(Math.floor(c.mirrorSlot / MIRRORS_PER_FILTER)));
    script.push(`ip -n ${H} link del ${c.veth}`);
    if (opts.removeNs) script.push(`ip netns del ${c.ns}`);
    return script;
  }

  get size(): number {
    return this.containers.size;
  }
}
