/**
 * What the pieces of the engine share: the configuration, the host, the state store and the
 * in-memory registry, the netlink sockets, the warm pool, and the small steps several operations
 * take (checkpointing a record, the mirror requests, a socket inside a container...).
 * Internal: the public face is Isolator (engine.ts).
 */
import { join } from 'node:path';
import type { NetlinkSession, Request } from '../netlink/index.js';
import { NetlinkSession as Session, Netns } from '../netlink/index.js';
import { RTM_NAMES, SysctlDir, linkRequests } from '../rtnl/index.js';
import type { Rtnl } from '../rtnl/index.js';
import { TC_H, filterRequest, parseTcHandle } from '../tc/index.js';
import type { IsolatorConfig } from './config.js';
import { ContainerProc } from './container-proc.js';
import { writeContainerSysctlsHere } from './container-setup.js';
import type { ContainerIpv6 } from './container-setup.js';
import { PortsHeldError, PortsNotManagedError } from './errors.js';
import type { HostFacts } from './host.js';
import { hostView } from './host-setup.js';
import type { ContainerView, EgressFlow, HostPortFilter, PortPlan, TcContext } from './plan.js';
import type { ContainerShaper, PortRange } from './plan.js';
import { SHAPER_VIEW, shaperClassOf, flowQdiscHandle, hostPortFilterAt, mirrorChunk, mirrorChunkRef, portPlan } from './plan.js';
import { blockFromBeginEnd } from './port-blocks.js';
import type { PortSet } from './port-set.js';
import { probeQdisc } from './probe.js';
import type { HtbConfig } from './rates.js';
import { htbConfig } from './rates.js';
import { blocksOf } from './records.js';
import { Registry } from './registry.js';
import type { ContainerRecord, HostFilterRecord, HostRecord, StateStore } from './state.js';
import { WarmPool } from './warm-pool.js';

/** Per-CPU rate limits in bytes/s, as resolved at open ('auto' made concrete from the link speed). */
export interface PerCpuRates {
  egress?: number;
  ingress?: number;
}

export class EngineCore {
  readonly registry: Registry;
  readonly pool: WarmPool;
  readonly containerProc: ContainerProc;
  /** Whether this process has put the drop of unheld managed ports on eth0 (once per process: it depends on the configuration). */
  unheldDropPut = false;
  /** The host's pairs (host-pairs.ts) this process has made sure of. */
  readonly hostPairsReady = new Set<string>();
  /** Whether the kernel has fq_codel (undefined: not probed yet). */
  fqCodel: boolean | undefined;
  /** The host's /proc/sys/net/ipv6/conf, held open (see SysctlDir): each veth's disable_ipv6 is written through it. */
  private hostIpv6Conf: SysctlDir | undefined;
  private readonly warned = new Set<string>();
  /** Background work (the warm pool's refill, veth deletions) that idle() and close() wait for. */
  readonly background = new Set<Promise<unknown>>();
  /** host.json as last read or written (reset when another process changes the state). */
  hostRecord: HostRecord | undefined;

  constructor(
    readonly config: IsolatorConfig,
    readonly host: HostFacts,
    readonly store: StateStore,
    readonly rtnl: Rtnl,
    readonly ctx: TcContext,
    private readonly onWarning: (message: string) => void,
    private readonly perCpu: PerCpuRates,
    warmPool: number,
  ) {
    this.registry = new Registry(config);
    this.containerProc = new ContainerProc(join(store.workDir, 'proc'), (m) => this.warnOnce(m));
    this.pool = new WarmPool(this, warmPool);
  }

  get session(): NetlinkSession {
    return this.rtnl.session;
  }

  warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.onWarning(message);
  }

  /** Keep a background promise for idle() and close() to wait for, until it settles. */
  track(p: Promise<unknown>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  // ---- the state, in memory and on disk ----------------------------------------------------

  /**
   * Re-read what another process changed since we last looked (under the lock): only the records
   * the change log names when it covers every generation since ours, else everything.
   */
  sync(): void {
    const g = this.store.readGeneration();
    if (g === this.registry.generation) return;
    const changed = this.store.changesSince(this.registry.generation, g);
    if (changed) {
      this.registry.reload(changed, (id) => this.store.readContainer(id));
    } else {
      this.registry.reset(this.store.listContainers());
      this.hostRecord = undefined;
      this.unheldDropPut = false;
      this.hostPairsReady.clear();
    }
    this.registry.generation = g;
    this.pool.pruneHandles();
    this.pinIpv6();
  }

  /** What discovery found of the host's IPv6 (host.ipv6 may be the recorded set instead: pinIpv6). */
  private discoveredIpv6: HostFacts['ipv6'] | null = null;

  /**
   * While containers exist, they are planned with the IPv6 addresses the host's layout was set up
   * for (host.json), whatever eth0 has now: their filters, update's and recover's plans and the
   * next container must agree with what is in the kernel. A change is warned about (and reported
   * by doctor: ipv6Drift); the first create with no container left rebuilds the layout for the new
   * set. Run by sync() and by each create (whose own destroys sync() does not see).
   */
  pinIpv6(): void {
    if (this.discoveredIpv6 === null) this.discoveredIpv6 = this.host.ipv6;
    // (This process's copy while it has one: sync() drops it when another process changed the host.)
    const rec = this.hostRecord ?? this.store.readHost();
    const found = this.discoveredIpv6;
    let next: HostFacts['ipv6'];
    if (!rec || rec.complete === false || !this.registry.records.size) next = found;
    else if (rec.ipv6) {
      const built = rec.ipv6;
      const mac = built.gateway === found?.gateway ? found?.gatewayMac : rec.gateway6Mac;
      next = { addresses: built.addresses, ...(built.gateway ? { gateway: built.gateway } : {}), ...(mac ? { gatewayMac: mac } : {}) };
    }
    const key = (v: HostFacts['ipv6']) => JSON.stringify(v?.addresses ?? null);
    if (key(next) !== key(this.host.ipv6)) {
      if (next) this.host.ipv6 = next;
      else delete this.host.ipv6;
      // What depends on the addresses is looked at again: the host's layout (the next create
      // rebuilds it when no container is left), the unheld-ports drop, the echo fan-out.
      this.hostRecord = undefined;
      this.unheldDropPut = false;
      this.hostPairsReady.clear();
    }
    const drift = this.ipv6Drift();
    if (drift) this.warnOnce(drift);
  }

  /** The host's IPv6 addresses differ from the ones its containers were built with: a line saying so, else undefined. */
  ipv6Drift(): string | undefined {
    const list = (v: HostFacts['ipv6'] | null | undefined) => (v ? v.addresses.map((a) => `${a.address}/${a.prefixlen}`).join(', ') : 'none');
    const planned = list(this.host.ipv6);
    const found = list(this.discoveredIpv6);
    if (planned === found) return undefined;
    return `the IPv6 addresses to share changed (--ipv6, ${this.host.eth0.name}'s global addresses): its containers have ${planned}, now ${found}; destroy them all (or run cleanup) to take the new ones`;
  }
  saveRecord(r: ContainerRecord): void {
    // Bump first: a crash in between leaves a generation other processes reload on, never a
    // record their caches miss.
    this.registry.generation = this.store.bumpGeneration(r.id);
    this.store.writeContainer(r);
  }
  dropRecord(id: string): void {
    this.registry.generation = this.store.bumpGeneration(id);
    this.store.deleteContainer(id);
  }
  /** A container is gone: out of the registry, its record deleted. */
  forgetContainer(rec: ContainerRecord): void {
    this.registry.remove(rec);
    this.dropRecord(rec.id);
  }

  /** Refuse ports the isolator does not manage, or that another container holds. */
  checkPorts(ports: PortSet, except?: string): void {
    if (!this.config.ports.contains(ports)) {
      throw new PortsNotManagedError(ports.toString(), this.config.ports.toString());
    }
    const clash = this.registry.clashes(ports, except);
    if (!clash.isEmpty) throw new PortsHeldError(clash.toString());
  }

  // ---- what create, update and teardown plan with -------------------------------------------

  /** The managed ports (the containers' ports and the ephemeral pool), as inclusive ranges. */
  managedPortRanges(): PortRange[] {
    return this.config.ports.union(this.config.ephemeralPorts).ranges.map(([begin, end]) => ({ begin, end }));
  }

  hostNetnsInode(): number {
    return (this.host.netns ?? Netns.current()).inode;
  }

  shapingFor(dir: 'egress' | 'ingress', cpus: number | undefined): HtbConfig | undefined {
    const c = this.config[dir];
    const perCpu = this.perCpu[dir];
    return htbConfig({ ...c, ...(perCpu !== undefined ? { perCpuBytesPerSec: perCpu } : {}) }, cpus);
  }

  /** Whether the kernel has fq_codel: probed once, in a scratch namespace, when shaping is first needed. */
  async probeFqCodel(): Promise<boolean> {
    if (this.fqCodel === undefined) {
      this.fqCodel = await probeQdisc(this.store.netnsPath(`.probe-${process.pid}`), 'fq_codel', this.ctx);
      if (!this.fqCodel) this.warnOnce('this kernel has no fq_codel: shaping uses HTB alone and bloat_reduction statistics are left out');
    }
    return this.fqCodel;
  }

  /** Where a container's egress is shaped on the host (undefined: in its namespace, or not at all). */
  shaperOf(r: { egressOnHost?: boolean; mirrorSlot: number }): ContainerShaper | undefined {
    return r.egressOnHost ? { view: SHAPER_VIEW, minor: shaperClassOf(r.mirrorSlot) } : undefined;
  }

  view(r: ContainerRecord, blocks = blocksOf(r)): ContainerView {
    const shaper = this.shaperOf(r);
    return {
      ...(shaper ? { shaper } : {}),
      veth: r.vethIndex,
      cEth0: r.vethIndex,
      cLo: 1,
      blocks,
      ...(r.egress ? { egress: r.egress } : {}),
      ...(r.ingress ? { ingress: r.ingress } : {}),
      fqCodel: this.fqCodel ?? false,
      mtu: this.host.eth0.mtu,
      selfRouting: r.selfRouting === 'rules',
    };
  }

  /** The unique egress flow a container's classifiers send to (undefined without unique flows). */
  flowOf(r: { flowId?: number }): EgressFlow | undefined {
    return r.flowId === undefined ? undefined : { qdisc: this.hostRecord?.flows?.qdisc ?? this.flowQdisc, flowId: r.flowId };
  }

  /** Host port filters a record names (its hostFilters, or others such as its pendingFilters), planned again. */
  recordedHostPorts(r: ContainerRecord, filters: HostFilterRecord[] = r.hostFilters): HostPortFilter[] {
    const hv = hostView(this.host);
    const flow = this.flowOf(r);
    const shaper = this.shaperOf(r);
    return filters.map((f) => hostPortFilterAt(hv, r.vethIndex, f.dev, blockFromBeginEnd(f.block[0], f.block[1]), f.handle, flow, shaper));
  }

  /** A container's port plan as its record has it: its ports' blocks, and its host filters with their recorded handles. */
  portPlan(r: ContainerRecord): PortPlan {
    return portPlan(hostView(this.host), this.view(r), this.recordedHostPorts(r));
  }

  /** The fq_codel handle unique flows use on eth0 (from --egress_flow_classifier_parent). */
  get flowQdisc(): number {
    return flowQdiscHandle(this.flowParent);
  }
  get flowParent(): number {
    const p = this.config.egressFlowClassifierParent;
    return p === 'root' ? TC_H.ROOT : parseTcHandle(p);
  }

  // ---- requests several operations send ----------------------------------------------------

  mirrorRequests(chunk: number, without?: string, include?: string): Request[] {
    const reqs: Request[] = [];
    const veths = this.registry.chunkVeths(chunk, without, include);
    const hv = hostView(this.host);
    for (const what of ['arp', 'icmp'] as const) {
      reqs.push(veths.length ? filterRequest('replace', mirrorChunk(hv, what, chunk, veths)) : filterRequest('delete', mirrorChunkRef(hv, what, chunk)));
    }
    return reqs;
  }

  /** The veth pair: the peer created inside the container's namespace, both ends with the host's MAC and MTU and our interface index. */
  vethRequest(r: { veth: string; vethIndex: number; ifname: string }, ns: Netns): Request {
    const h = this.host;
    // One queue pair per end from the start: cutting the default (one per CPU) down to the one
    // in use makes the kernel wait for an RCU grace period per end, under the rtnl lock.
    const queues = { numTxQueues: 1, numRxQueues: 1 };
    return linkRequests.addVeth({
      name: r.veth,
      index: r.vethIndex,
      address: h.eth0.address,
      mtu: h.eth0.mtu,
      ...queues,
      peer: { name: r.ifname, index: r.vethIndex, address: h.eth0.address, mtu: h.eth0.mtu, ...queues, netns: ns },
    });
  }

  /** IPv6 in a container whose interface is `ifname`: on when the host shares an IPv6 address (--ipv6). */
  containerIpv6(ifname: string): ContainerIpv6 {
    return this.host.ipv6 ? { off: false, ifname } : { off: true };
  }

  /** IPv6 off on a host veth (through the held-open /proc/sys/net/ipv6/conf). */
  disableHostVethIpv6(veth: string): void {
    try {
      (this.host.netns ?? Netns.current()).run(() => {
        this.hostIpv6Conf ??= SysctlDir.openHere(['net', 'ipv6', 'conf']);
        this.hostIpv6Conf.write([veth, 'disable_ipv6'], '1');
      });
    } catch {
      /* no IPv6 in this kernel */
    }
  }

  // ---- inside a container's namespace ------------------------------------------------------

  /** Write the container's sysctls and open a socket there, in one namespace switch. */
  containerSession(ns: Netns, ephemeral: { begin: number; end: number } | undefined, ipv6: ContainerIpv6 | undefined): NetlinkSession {
    let cs!: NetlinkSession;
    const procRoot = this.containerProc.rootFor(this.registry.records.size);
    ns.run(() => {
      writeContainerSysctlsHere(ephemeral, procRoot, ipv6);
      cs = Session.open({ typeNames: RTM_NAMES });
    });
    return cs;
  }

  async inContainer<T>(ns: Netns, fn: (s: NetlinkSession) => Promise<T>): Promise<T> {
    const cs = Session.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      return await fn(cs);
    } finally {
      cs.close();
    }
  }

  /** Close what stays open (the spares' handles and background work are the caller's): IPv6 sysctls, the container /proc, the sockets. */
  close(): void {
    this.hostIpv6Conf?.close();
    this.hostIpv6Conf = undefined;
    try {
      this.containerProc.close();
    } catch (e) {
      this.warnOnce(`${this.containerProc.dir}: ${(e as Error).message}`);
    }
    this.rtnl.close();
    this.host.netns?.close();
  }
}
