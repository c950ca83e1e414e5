/**
 * The isolator engine: create (Mesos prepare + isolate), update, destroy (cleanup), usage,
 * recover and a full cleanup, over the netlink SDK, with the state checkpointed in the work_dir.
 *
 * Crash safety: a container's record is written (phase 'creating') before any kernel object
 * exists, and kernel objects carry handles chosen in advance and recorded, so `recover` can find
 * and remove everything a crash left at any point. Each change of state happens under the
 * work_dir lock, shared with other CLI invocations, the agent and the CNI plugin.
 */
import { join } from 'node:path';
import { readdirSync, statSync } from 'node:fs';
import type { BatchResult, NetlinkSession, Request } from '../netlink/index.js';
import { NetlinkError, NetlinkSession as Session, Netns, createNetns, pinNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES, Rtnl, SysctlDir, SysctlFile, addressRequests, linkRequests } from '../rtnl/index.js';
import type { Psched } from '../tc/rate.js';
import { systemPsched } from '../tc/rate.js';
import { EphemeralPortsAllocator } from './allocator.js';
import type { IsolatorConfig, IsolatorFlags } from './config.js';
import { parseConfig } from './config.js';
import { ContainerProc } from './container-proc.js';
import { adoptedContainerRequests, containerRequests, spareContainerRequests, writeContainerSysctlsHere } from './container-setup.js';
import { ConfigError, IsolatorError } from './errors.js';
import type { HostFacts } from './host.js';
import { discoverHost } from './host.js';
import { SHARED_LAYOUT, hostView, repairSharedLayout, setUpHost, tearDownHost } from './host-setup.js';
import type { ContainerView, HostFilterRole, NodeUse, U32FilterPlan } from './plan.js';
import { FLOW, MIRRORS_PER_FILTER, MIRROR_TABLE_HTID, TC_H_ROOT, flowQdiscHandle, hostPortFilters, portFilterPlan, htOf, isPortFilterHandle, mirrorChunk, shapingPlan, u32HandleOf, vethBaseFilters, vethFilters, vethPortFilters } from './plan.js';
import type { PortBlock } from './port-blocks.js';
import { blockFromBeginEnd, portBlocks } from './port-blocks.js';
import { PortSet } from './port-set.js';
import type { HtbConfig } from './rates.js';
import { htbConfig } from './rates.js';
import type { ContainerRecord, HostRecord, SpareRecord } from './state.js';
import { DEFAULT_WORK_DIR, StateStore, checkContainerId } from './state.js';
import type { TcRequestContext } from './tc-requests.js';
import { tcRequest } from './tc-requests.js';
import { probeQdisc } from './probe.js';
import { dumpFilters } from './filter-dump.js';
import type { HostDamage } from './host-check.js';
import { describeDamage, inspectHost } from './host-check.js';
import type { ProtectedNamespace } from './target-netns.js';
import { checkTargetContents, openTargetNamespace } from './target-netns.js';
import { formatU32Handle, parseTcHandle } from '../tc/handle.js';
import type { MesosStatistics } from './statistics.js';
import { containerStatistics } from './statistics.js';
import { containerFilters, containerPortFilters, keyDport, keySport } from './plan.js';
import type { TcPlan, U32Key } from './plan.js';

export interface IsolatorOptions {
  flags?: IsolatorFlags;
  /** The host to act on: NAME (/run/netns/NAME) or a path; default the caller's namespace. */
  netns?: string;
  workDir?: string;
  /** HTB clock parameters (tests inject them); default /proc/net/psched. */
  psched?: Psched;
  /** Where warnings go (once each). */
  onWarning?: (message: string) => void;
  /**
   * Spares to keep ready (0–64, default 0; the CLI's agent keeps 4): network namespaces with
   * their veth pair and everything of a container that does not depend on its ports, made in the
   * background after creates and destroys. A create without `pid`/`netnsPath` takes one and only
   * adds its ports' filters, shaping and ephemeral block; its `netns` is the spare's pin.
   */
  warmPool?: number;
}

export interface CreateSpec {
  id: string;
  /** Non-ephemeral ports: Mesos range syntax or a PortSet. */
  ports?: string | PortSet;
  /** Isolate this process's namespace instead of creating one. */
  pid?: number;
  /** Isolate the namespace pinned at this path (a runtime's, e.g. CNI_NETNS). */
  netnsPath?: string;
  /** The container's interface name (default: the host's public interface name). */
  ifname?: string;
  /** The container's cpus, for per-CPU rate limits. */
  cpus?: number;
}

/** What `create` prints (DESIGN.md §4). */
export interface ContainerInfo {
  id: string;
  netns: string;
  veth: string;
  ephemeral_ports: { begin: number; end: number };
  ports: Array<[number, number]>;
}

export interface RecoverReport {
  recovered: string[];
  cleaned: Array<{ id: string; reason: string }>;
  /** Objects and files no record names, removed: host veths, namespace pins, port filters, temporary and unreadable state files. */
  orphans: { veths: string[]; netns: string[]; filters: string[]; files: string[] };
  /** Host objects found missing and put back (see checkHost). */
  repaired: string[];
  errors: string[];
}

export interface CleanupReport {
  destroyed: string[];
  errors: string[];
}

function pinExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Pins in the work_dir: containers' (by id, or a spare's `.spare-N` a container took), spares',
 * and scratch probes of processes that died.
 */
function listPins(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => {
      const probe = /^\.(?:probe|doctor)-(\d+)$/.exec(n);
      if (!probe) return !n.startsWith('.') || /^\.spare-\d+$/.test(n);
      try {
        process.kill(Number(probe[1]), 0);
        return false; // its process is alive
      } catch {
        return true;
      }
    });
  } catch {
    return [];
  }
}

/** Asked about a container that does not exist (HTTP 404, CLI exit 1). */
export class UnknownContainerError extends IsolatorError {
  override readonly name = 'UnknownContainerError';
  constructor(readonly id: string) {
    super(`Unknown container ${id}`);
  }
}

const sameKey = (a: U32Key, b: U32Key) => a.off === b.off && a.mask >>> 0 === b.mask >>> 0 && (a.val & a.mask) >>> 0 === (b.val & b.mask) >>> 0;

export { dumpFilters } from './filter-dump.js';
export type { DumpedFilter } from './filter-dump.js';

/** What a warm-pool spare holds besides its links (SpareRecord.contents). */
const SPARE_CONTENTS = 'links+tc-v1';

/** What this process keeps open for a spare it made, so the create that takes it switches no namespace. */
interface SpareHandles {
  record: SpareRecord;
  ns: Netns;
  /** A netlink socket inside the spare's namespace. */
  session: NetlinkSession;
  /** Its net.ipv4.ip_local_port_range, open for writing. */
  portRange: SysctlFile;
}

function closeSpareHandles(h: { ns?: Netns; session?: NetlinkSession; portRange?: SysctlFile }): void {
  h.session?.close();
  h.portRange?.close();
  h.ns?.close();
}

/** Interface indexes of host veths are chosen by us: VETH_INDEX_BASE + a per-host sequence number. */
/** How long cleanup lets go of the work_dir lock between two containers, for waiting requests to get in. */
const CLEANUP_PAUSE_MS = 2;

export const VETH_INDEX_BASE = 1_000_000;
export const VETH_PREFIX = 'pmi';
/** The name a destroyed container's end of the veth takes in a namespace that outlives it, until the pair is gone. */
const retiredName = (rec: { vethIndex: number }): string => `${VETH_PREFIX}x${rec.vethIndex - VETH_INDEX_BASE}`;

export function toInfo(r: ContainerRecord): ContainerInfo {
  return { id: r.id, netns: r.netns, veth: r.veth, ephemeral_ports: { ...r.ephemeralPorts }, ports: r.ports.map(([b, e]) => [b, e]) };
}

const blocksOf = (r: Pick<ContainerRecord, 'ephemeralPorts' | 'ports'>): PortBlock[] => [
  ...portBlocks(PortSet.ofRanges([[r.ephemeralPorts.begin, r.ephemeralPorts.end]])),
  ...portBlocks(PortSet.ofRanges(r.ports)),
];

function firstFailure(results: BatchResult[], ignore: string[] = []): Error | undefined {
  for (const r of results) {
    if (!r.ok && !(r.error instanceof NetlinkError && ignore.includes(r.error.code))) return r.error;
  }
  return undefined;
}

/** Append to `out` the overlaps of two lists of inclusive port ranges. */
function overlaps(held: ReadonlyArray<readonly [number, number]>, wanted: ReadonlyArray<readonly [number, number]>, out: Array<[number, number]>): void {
  for (let i = 0; i < held.length; i++) {
    const b = held[i]![0];
    const e = held[i]![1];
    for (let j = 0; j < wanted.length; j++) {
      const c = wanted[j]![0];
      const d = wanted[j]![1];
      if (b <= d && c <= e) out.push([Math.max(b, c), Math.min(e, d)]);
    }
  }
}

/** In-memory view of every record, rebuilt when another process changed the state. */
class Registry {
  records = new Map<string, ContainerRecord>();
  allocator!: EphemeralPortsAllocator;
  nodes: Record<HostFilterRole, NodeUse> = { eth0: new Map(), lo: new Map(), egress: new Map() };
  generation = '';

  constructor(private readonly config: IsolatorConfig) {
    this.reset([]);
  }

  reset(records: ContainerRecord[]): void {
    this.records = new Map(records.map((r) => [r.id, r]));
    this.allocator = new EphemeralPortsAllocator(this.config.ephemeralPorts, this.config.ephemeralPortsPerContainer);
    this.nodes = { eth0: new Map(), lo: new Map(), egress: new Map() };
    for (const r of records) this.index(r);
  }

  /** Re-read the given records (another process wrote or removed them). */
  reload(ids: Iterable<string>, read: (id: string) => ContainerRecord | undefined): void {
    for (const id of new Set(ids)) {
      const old = this.records.get(id);
      if (old) {
        this.unindex(old);
        this.records.delete(id);
      }
      const rec = read(id);
      if (rec) {
        this.records.set(id, rec);
        this.index(rec);
      }
    }
  }

  index(r: ContainerRecord): void {
    this.allocator.reserve(r.ephemeralPorts.begin, r.ephemeralPorts.end);
    for (const f of [...r.hostFilters, ...(r.pendingFilters ?? [])]) this.useNode(f.dev, f.handle, true);
  }
  unindex(r: ContainerRecord): void {
    this.allocator.release(r.ephemeralPorts.begin, r.ephemeralPorts.end);
    for (const f of [...r.hostFilters, ...(r.pendingFilters ?? [])]) this.useNode(f.dev, f.handle, false);
  }
  private useNode(dev: HostFilterRole, handle: number, used: boolean): void {
    const ht = htOf(handle);
    let set = this.nodes[dev].get(ht);
    if (!set) this.nodes[dev].set(ht, (set = new Set()));
    if (used) set.add(handle & 0xfff);
    else set.delete(handle & 0xfff);
  }

  /**
   * The ports of `ports` that other containers hold: plain range comparisons per record (taking
   * the union of every record first costs O(N²) at a thousand containers; a PortSet per record
   * costs ~50 µs at a hundred).
   */
  clashes(ports: PortSet, except?: string): PortSet {
    if (ports.isEmpty) return PortSet.EMPTY;
    const wanted = ports.ranges;
    const hit: Array<[number, number]> = [];
    for (const r of this.records.values()) {
      if (r.id === except) continue;
      overlaps(r.ports, wanted, hit);
      if (r.pendingPorts) overlaps(r.pendingPorts, wanted, hit);
    }
    return hit.length ? PortSet.ofRanges(hit) : PortSet.EMPTY;
  }

  portsInUse(except?: string): PortSet {
    let s = PortSet.EMPTY;
    for (const r of this.records.values()) if (r.id !== except) s = s.union(PortSet.ofRanges(r.pendingPorts ? [...r.ports, ...r.pendingPorts] : r.ports));
    return s;
  }
  freeMirrorSlot(): number {
    // N records use at most N slots, so one of 0..N is free.
    const used = new Uint8Array(this.records.size + 1);
    for (const r of this.records.values()) if (r.mirrorSlot <= this.records.size) used[r.mirrorSlot] = 1;
    return used.indexOf(0);
  }
  /** Host veth indexes of the containers in one mirror chunk, in slot order. */
  chunkVeths(chunk: number, without?: string, include?: string): number[] {
    return [...this.records.values()]
      .filter((r) => Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER) === chunk && r.id !== without && (r.phase === 'ready' || r.phase === 'updating' || r.id === include))
      .sort((a, b) => a.mirrorSlot - b.mirrorSlot)
      .map((r) => r.vethIndex);
  }
}

/** Where the time of the last operation went, phase by phase (milliseconds), for benchmarks and metrics. */
export type Timings = Record<string, number>;

/** Test hook: PORTMAP_ISOLATOR_CRASH_AT=<phase> kills the process right after that phase. */
const CRASH_AT = process.env.PORTMAP_ISOLATOR_CRASH_AT;

class Stopwatch {
  readonly timings: Timings = {};
  private last = performance.now();
  lap(phase: string): void {
    if (CRASH_AT === phase) process.kill(process.pid, 'SIGKILL');
    const now = performance.now();
    this.timings[phase] = (this.timings[phase] ?? 0) + (now - this.last);
    this.last = now;
  }
}

export class Isolator {
  private readonly registry: Registry;
  /** Phase timings of the last create/destroy/update. */
  lastTimings: Timings = {};
  private fqCodel: boolean | undefined;
  /** The host's /proc/sys/net/ipv6/conf, held open (see SysctlDir): each veth's disable_ipv6 is written through it. */
  private hostIpv6Conf: SysctlDir | undefined;
  private readonly containerProc: ContainerProc;
  private readonly warned = new Set<string>();
  private readonly background = new Set<Promise<unknown>>();
  /** The warm pool's refill, while it runs. */
  private refilling: Promise<void> | undefined;
  private closing = false;
  /** Set by cleanup(): no spare is made again until the next create. */
  private poolPaused = false;
  /** What stays open for the spares this process made, in the order they were made. */
  private readonly spareHandles = new Map<number, SpareHandles>();
  /** host.json as last read or written (reset when another process changes the state). */
  private hostRecord: HostRecord | undefined;

  private constructor(
    readonly config: IsolatorConfig,
    readonly host: HostFacts,
    readonly store: StateStore,
    private readonly rtnl: Rtnl,
    private readonly ctx: TcRequestContext,
    private readonly onWarning: (message: string) => void,
    private readonly perCpu: { egress?: number; ingress?: number },
    private readonly warmPool = 0,
  ) {
    this.registry = new Registry(config);
    this.containerProc = new ContainerProc(join(store.workDir, 'proc'), (m) => this.warnOnce(m));
  }

  /**
   * Validate the flags, find the host's interfaces, addresses and gateway, and check the
   * ephemeral pool against the host. Throws ConfigError (bad flags or host mismatch).
   */
  static async open(opts: IsolatorOptions = {}): Promise<Isolator> {
    const config = parseConfig(opts.flags ?? {});
    let ns: Netns | undefined;
    if (opts.netns !== undefined) {
      try {
        ns = Netns.parse(opts.netns);
        void ns.inode;
      } catch (e) {
        throw new ConfigError('netns', `cannot open network namespace ${JSON.stringify(opts.netns)}: ${(e as Error).message}`);
      }
    }
    const rtnl = Rtnl.open(ns);
    try {
      const host = await discoverHost(rtnl, config);
      const perCpu: { egress?: number; ingress?: number } = {};
      for (const dir of ['egress', 'ingress'] as const) {
        const p = config[dir].perCpu;
        if (p === 'auto') {
          const speed = config.linkSpeedBytesPerSec;
          if (speed === undefined) throw new ConfigError(`${dir}_rate_per_cpu`, `Failed to determine per CPU ${dir} rate limit: the link speed of ${host.eth0.name} is unknown here; pass --network_link_speed`);
          perCpu[dir] = Math.floor(speed / Math.floor(config.agentCpus!));
        } else if (p !== undefined) perCpu[dir] = p;
      }
      const store = new StateStore(opts.workDir ?? DEFAULT_WORK_DIR);
      store.init();
      const ctx: TcRequestContext = { psched: opts.psched ?? systemPsched(), mtu: host.eth0.mtu };
      const recorded = store.readHost();
      const inode = (ns ?? Netns.current()).inode;
      if (recorded && recorded.netnsInode !== inode) {
        throw new ConfigError('netns', `the work_dir ${store.workDir} belongs to another network namespace (inode ${recorded.netnsInode}, this one is ${inode}): pass the --netns it was used with, or another --work_dir`);
      }
      const warmPool = opts.warmPool ?? 0;
      if (!Number.isInteger(warmPool) || warmPool < 0 || warmPool > 64) throw new ConfigError('warm_pool', `must be an integer in 0..64, got ${String(opts.warmPool)}`);
      const iso = new Isolator(config, host, store, rtnl, ctx, opts.onWarning ?? ((m) => process.emitWarning(m)), perCpu, warmPool);
      if (config.egressUniqueFlowPerContainer && !(await iso.probeFqCodel())) {
        throw new ConfigError('egress_unique_flow_per_container', 'this kernel has no fq_codel qdisc, which unique egress flows need (sch_fq_codel); drop the flag or use a kernel with fq_codel');
      }
      return iso;
    } catch (e) {
      rtnl.close();
      throw e;
    }
  }

  private get session(): NetlinkSession {
    return this.rtnl.session;
  }

  private warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.onWarning(message);
  }

  /**
   * Re-read what another process changed since we last looked (under the lock): only the records
   * the change log names when it covers every generation since ours, else everything.
   */
  private sync(): void {
    const g = this.store.readGeneration();
    if (g === this.registry.generation) return;
    const changed = this.store.changesSince(this.registry.generation, g);
    if (changed) {
      this.registry.reload(changed, (id) => this.store.readContainer(id));
    } else {
      this.registry.reset(this.store.listContainers());
      this.hostRecord = undefined;
    }
    this.registry.generation = g;
    this.pruneSpareHandles();
  }
  private saveRecord(r: ContainerRecord): void {
    // Bump first: a crash in between leaves a generation other processes reload on, never a
    // record their caches miss.
    this.registry.generation = this.store.bumpGeneration(r.id);
    this.store.writeContainer(r);
  }
  private dropRecord(id: string): void {
    this.registry.generation = this.store.bumpGeneration(id);
    this.store.deleteContainer(id);
  }

  private hostNetnsInode(): number {
    return (this.host.netns ?? Netns.current()).inode;
  }

  /** The host-wide setup, done at the first container (and recorded). */
  private async ensureHost(): Promise<HostRecord> {
    if (this.hostRecord) return this.hostRecord;
    const existing = this.store.readHost();
    const inode = this.hostNetnsInode();
    if (existing && existing.netnsInode === inode && existing.complete !== false) {
      if (existing.shared.layout === SHARED_LAYOUT) return (this.hostRecord = existing);
      // Set up by an earlier version: rebuild the shared layout when no container relies on it.
      if (this.registry.records.size) {
        throw new IsolatorError(`the host was set up by an earlier portmap-isolator (shared layout ${JSON.stringify(existing.shared.layout ?? 'unknown')}); destroy its containers, or run cleanup, before creating new ones`);
      }
      const errors = await tearDownHost(this.session, this.host, existing, this.ctx);
      if (errors.length) throw new IsolatorError(`rebuilding the host's shared layout: ${errors.map((e) => e.message).join('; ')}`);
      this.store.deleteHost();
      return this.ensureHost();
    }
    const flows = this.config.egressUniqueFlowPerContainer ? { parent: this.flowParent, qdisc: this.flowQdisc } : undefined;
    const save = (r: HostRecord) => this.store.writeHost(r);
    let rec: HostRecord;
    try {
      rec = await setUpHost(this.session, this.host, this.ctx, flows, save, existing?.netnsInode === inode ? existing : undefined);
    } catch (e) {
      this.store.deleteHost(); // setUpHost undid its changes
      throw e;
    }
    this.registry.generation = this.store.bumpGeneration();
    return (this.hostRecord = rec);
  }

  private shapingFor(dir: 'egress' | 'ingress', cpus: number | undefined): HtbConfig | undefined {
    const c = this.config[dir];
    const perCpu = this.perCpu[dir];
    return htbConfig({ ...c, ...(perCpu !== undefined ? { perCpuBytesPerSec: perCpu } : {}) }, cpus);
  }

  /** Whether the kernel has fq_codel: probed once, in a scratch namespace, when shaping is first needed. */
  private async probeFqCodel(): Promise<boolean> {
    if (this.fqCodel === undefined) {
      this.fqCodel = await probeQdisc(this.store.netnsPath(`.probe-${process.pid}`), 'fq_codel', this.ctx);
      if (!this.fqCodel) this.warnOnce('this kernel has no fq_codel: shaping uses HTB alone and bloat_reduction statistics are left out');
    }
    return this.fqCodel;
  }

  private view(r: ContainerRecord, blocks = blocksOf(r)): ContainerView {
    return { veth: r.vethIndex, cEth0: r.vethIndex, cLo: 1, blocks, ...(r.egress ? { egress: r.egress } : {}), ...(r.ingress ? { ingress: r.ingress } : {}), fqCodel: this.fqCodel ?? false };
  }

  private mirrorRequests(chunk: number, without?: string, include?: string): Request[] {
    const reqs: Request[] = [];
    const veths = this.registry.chunkVeths(chunk, without, include);
    for (const what of ['arp', 'icmp'] as const) {
      const handle = u32HandleOf(MIRROR_TABLE_HTID[what], 0, 1 + chunk);
      if (veths.length) reqs.push(tcRequest(mirrorChunk(hostView(this.host), what, chunk, veths), 'set', this.ctx));
      else reqs.push(tcRequest({ ...mirrorChunk(hostView(this.host), what, chunk, [0]), handle }, 'delete', this.ctx));
    }
    return reqs;
  }

  /** Create a container: its namespace (unless given), veth, filters and shaping. */
  async create(spec: CreateSpec): Promise<ContainerInfo> {
    const id = checkContainerId(spec.id);
    let ports: PortSet;
    try {
      ports = spec.ports === undefined ? PortSet.EMPTY : typeof spec.ports === 'string' ? PortSet.parse(spec.ports) : spec.ports;
    } catch (e) {
      throw new IsolatorError(`invalid ports for container ${id}: ${(e as Error).message}`);
    }
    const ifname = spec.ifname ?? this.host.eth0.name;
    const sw = new Stopwatch();
    this.lastTimings = sw.timings;
    this.poolPaused = false;
    try {
      return await this.createLocked(id, ports, ifname, spec, sw);
    } finally {
      this.refillPool();
    }
  }

  private createLocked(id: string, ports: PortSet, ifname: string, spec: CreateSpec, sw: Stopwatch): Promise<ContainerInfo> {
    return this.store.withLock(async () => {
      sw.lap('lock');
      await this.syncAndRepair();
      if (this.registry.records.has(id)) throw new IsolatorError(`container ${id} already exists`);
      if (!this.config.ports.contains(ports)) {
        throw new IsolatorError(`Some non-ephemeral ports specified in ${ports.toString()} are not managed by the isolator (managed: ${this.config.ports.toString()})`);
      }
      const clash = this.registry.clashes(ports);
      if (!clash.isEmpty) throw new IsolatorError(`ports ${clash.toString()} are already held by another container`);
      // A namespace we are given is checked, and held open, before anything is built.
      const target = spec.pid !== undefined || spec.netnsPath !== undefined ? openTargetNamespace(spec, this.protectedNamespaces()) : undefined;
      try {
        if (target) await checkTargetContents(target, ifname);
        return await this.createChecked(id, ports, ifname, spec, sw, target);
      } finally {
        target?.close();
      }
    });
  }

  /** The namespaces no container may be given: the host's, our own, init's, every container's and spare's. */
  private *protectedNamespaces(): Iterable<ProtectedNamespace> {
    yield { path: this.host.netns?.path ?? '/proc/thread-self/ns/net', owner: "the host's (the one the isolator acts on)" };
    yield { path: '/proc/self/ns/net', owner: "this process's own" };
    yield { path: '/proc/1/ns/net', owner: "the init process's" };
    for (const r of this.registry.records.values()) yield { path: r.netns, owner: `container ${r.id}'s` };
    for (const sp of this.store.listSpares()) yield { path: sp.netns, owner: "a warm-pool spare's" };
  }

  private async createChecked(id: string, ports: PortSet, ifname: string, spec: CreateSpec, sw: Stopwatch, target: Netns | undefined): Promise<ContainerInfo> {
    await this.ensureHost();
    sw.lap('state');
    const egress = this.shapingFor('egress', spec.cpus);
    const ingress = this.shapingFor('ingress', spec.cpus);
    if (egress || ingress) await this.probeFqCodel();
    const flowId = this.config.egressUniqueFlowPerContainer ? this.freeFlowId() : undefined;
    const block = this.registry.allocator.allocate();
    if (!block) {
      throw new IsolatorError(
        `Failed to allocate ephemeral ports: no free block of ${this.config.ephemeralPortsPerContainer} ports is left in ${this.config.ephemeralPorts.toString()} (${this.registry.records.size} containers)`,
      );
    }
    let rec: ContainerRecord;
    let portFilters: ReturnType<typeof hostPortFilters>;
    const spare = spec.netnsPath === undefined && spec.pid === undefined ? this.readySpare(ifname) : undefined;
    try {
      const seq = spare ? spare.seq : this.store.nextVethNumber();
      rec = {
        id,
        phase: 'creating',
        // A process's namespace is pinned in the work_dir too: a reused pid can never point elsewhere.
        // A spare's pin becomes the container's (moving a pin costs a mount and an unmount).
        netns: spare ? spare.netns : (spec.netnsPath ?? this.store.netnsPath(id)),
        ownsNetns: spec.netnsPath === undefined && spec.pid === undefined,
        ...(spec.pid !== undefined ? { pid: spec.pid, pinned: true } : {}),
        veth: `${VETH_PREFIX}${seq}`,
        vethIndex: VETH_INDEX_BASE + seq,
        ifname,
        ephemeralPorts: block,
        ports: ports.ranges,
        hostFilters: [],
        mirrorSlot: this.registry.freeMirrorSlot(),
        createdAt: new Date().toISOString(),
        ...(spec.cpus !== undefined ? { cpus: spec.cpus } : {}),
        ...(egress ? { egress } : {}),
        ...(ingress ? { ingress } : {}),
        ...(flowId !== undefined ? { flowId } : {}),
      };
      const blocks = blocksOf(rec);
      const flow = flowId !== undefined ? { qdisc: this.flowQdisc, flowId } : undefined;
      portFilters = hostPortFilters(hostView(this.host), this.view(rec, blocks), blocks, this.registry.nodes, flow);
      rec.hostFilters = portFilters.map((f) => ({ dev: f.devRole, handle: f.handle!, prio: f.prio, block: [f.block.begin, f.block.end] }));
    } catch (e) {
      this.registry.reset([...this.registry.records.values()]); // give back the block and any handles
      throw e;
    }
    // The spare is the container's from now on: its record goes first, so a crash in between
    // leaves objects no record names (recover() removes them as orphans), never two records.
    const handles = spare ? this.takeSpare(spare) : undefined;
    // Checkpoint first: from here on, recover() can find and remove whatever exists.
    this.registry.records.set(id, rec);
    this.registry.index(rec);
    try {
      this.saveRecord(rec);
    } catch (e) {
      this.registry.unindex(rec);
      this.registry.records.delete(id);
      if (spare) await this.dropSpare(spare, handles); // nothing names its objects any more
      throw e;
    }
    sw.lap('plan+checkpoint');
    try {
      await this.build(rec, portFilters, sw, spare, handles, target);
      rec.phase = 'ready';
      this.saveRecord(rec);
      sw.lap('checkpoint');
      return toInfo(rec);
    } catch (e) {
      const undo = await this.teardown(rec, { wait: true });
      this.registry.unindex(rec);
      this.registry.records.delete(id);
      this.dropRecord(id);
      const cause = e instanceof Error ? e.message : String(e);
      throw new IsolatorError(`Failed to create container ${id}: ${cause}${undo.length ? ` (and cleaning up: ${undo.map((u) => u.message).join(', ')})` : ''}`, [e as Error, ...undo]);
    }
  }

  private async build(rec: ContainerRecord, portFilters: U32FilterPlan[], sw: Stopwatch, spare?: SpareRecord, held?: SpareHandles, target?: Netns): Promise<void> {
    const h = this.host;
    // A process's namespace is pinned from the handle that was checked (the pid may have moved on).
    const ns = held
      ? held.ns
      : spare
        ? Netns.fromPath(rec.netns)
        : rec.ownsNetns
          ? createNetns(rec.netns)
          : rec.pinned
            ? pinNetns(target ? `/proc/self/fd/${target.fd}` : `/proc/${rec.pid}/ns/net`, rec.netns)
            : Netns.fromPath(rec.netns);
    if (target && ns.inode !== target.inode) {
      ns.close();
      throw new IsolatorError(`${rec.netns} is no longer the namespace that was checked`);
    }
    sw.lap('netns');
    const view = this.view(rec);
    let cs = held?.session;
    try {
      // Host side, one batch: the veth pair (peer created inside the container's namespace, both
      // ends with the host's MAC and MTU, our interface indexes), then the veth's filters before
      // the eth0/lo port filters that point at it (Mesos §7.8), the mirrors, ingress shaping, up.
      // (A spare has its veth pair, up, and the veth filters that do not depend on ports.)
      const hostReqs: Request[] = [
        ...(spare ? [] : [this.vethRequest(rec, ns)]),
        ...(spare ? vethPortFilters(hostView(h), view) : vethFilters(hostView(h), view)).map((p) => tcRequest(p, 'add', this.ctx)),
        ...portFilters.map((p) => tcRequest(p, 'add', this.ctx)),
        ...this.mirrorRequests(Math.floor(rec.mirrorSlot / MIRRORS_PER_FILTER), undefined, rec.id),
        ...(rec.ingress ? shapingPlan({ ns: 'host', index: rec.vethIndex }, rec.ingress, view.fqCodel).map((p) => tcRequest(p, 'add', this.ctx)) : []),
        ...(spare ? [] : [linkRequests.set(rec.vethIndex, { up: true })]),
      ];
      const hostErr = firstFailure(await this.session.batch(hostReqs));
      if (hostErr) throw hostErr;
      sw.lap('host batch');
      if (!spare) this.disableHostVethIpv6(rec.veth);
      sw.lap('host sysctl');
      // Container side, in one namespace switch: its sysctls first (IPv6 off while lo and eth0
      // are still down, so no IPv6 address is made only to be removed), and a socket opened there;
      // then one batch over that socket. A spare this process made has both open already.
      if (held) held.portRange.write(`${rec.ephemeralPorts.begin} ${rec.ephemeralPorts.end}`);
      else cs = this.containerSession(ns, rec.ephemeralPorts, !spare);
      sw.lap('container sysctls+socket');
      const reqs = spare ? adoptedContainerRequests(view, this.ctx) : containerRequests(h, view, hostView(h), this.ctx);
      const err = firstFailure(await cs!.batch(reqs));
      if (err) throw err;
      sw.lap('container batch');
    } finally {
      cs?.close();
      held?.portRange.close();
      ns.close();
    }
  }

  /** The veth pair: the peer created inside the container's namespace, both ends with the host's MAC and MTU and our interface index. */
  private vethRequest(r: { veth: string; vethIndex: number; ifname: string }, ns: Netns): Request {
    const h = this.host;
    return linkRequests.addVeth({
      name: r.veth,
      index: r.vethIndex,
      address: h.eth0.address,
      mtu: h.eth0.mtu,
      peer: { name: r.ifname, index: r.vethIndex, address: h.eth0.address, mtu: h.eth0.mtu, netns: ns },
    });
  }

  /** IPv6 off on a host veth (through the held-open /proc/sys/net/ipv6/conf). */
  private disableHostVethIpv6(veth: string): void {
    try {
      (this.host.netns ?? Netns.current()).run(() => {
        this.hostIpv6Conf ??= SysctlDir.openHere(['net', 'ipv6', 'conf']);
        this.hostIpv6Conf.write([veth, 'disable_ipv6'], '1');
      });
    } catch {
      /* no IPv6 in this kernel */
    }
  }

  /** Write the container's sysctls and open a socket there, in one namespace switch. */
  private containerSession(ns: Netns, ephemeral: { begin: number; end: number } | undefined, ipv6Off: boolean): NetlinkSession {
    let cs!: NetlinkSession;
    const procRoot = this.containerProc.rootFor(this.registry.records.size);
    ns.run(() => {
      writeContainerSysctlsHere(ephemeral, procRoot, ipv6Off);
      cs = Session.open({ typeNames: RTM_NAMES });
    });
    return cs;
  }

  // ---- the warm pool ----------------------------------------------------------------------

  /** What a spare must have been made for: the host's addressing and the devices its filters point at. */
  private spareHostKey(): string {
    const h = this.host;
    return `${h.ip}/${h.prefixlen} via ${h.gateway ?? '-'} eth0 ${h.eth0.index} lo ${h.lo.index}`;
  }

  private spareFits(s: SpareRecord, ifname: string): boolean {
    const h = this.host;
    return s.phase === 'ready' && s.contents === SPARE_CONTENTS && s.hostKey === this.spareHostKey() && s.ifname === ifname && s.address === h.eth0.address && s.mtu === h.eth0.mtu;
  }

  /** A ready spare that fits the host as it is now: one this process made first, else one on disk. */
  private readySpare(ifname: string): SpareRecord | undefined {
    if (!this.warmPool) return undefined;
    // Another process with a pool on this work_dir may have taken one: its record is gone then.
    this.pruneSpareHandles();
    for (const held of this.spareHandles.values()) if (this.spareFits(held.record, ifname)) return held.record;
    return this.store.findSpare((s) => this.spareFits(s, ifname));
  }

  /** Forget a spare (the container's record owns its objects from now on); its open handles, if this process made it. */
  private takeSpare(spare: SpareRecord): SpareHandles | undefined {
    this.store.deleteSpare(spare.seq);
    const held = this.spareHandles.get(spare.seq);
    this.spareHandles.delete(spare.seq);
    return held;
  }

  /** Let go of what this process holds for spares another process took or removed (their namespaces live on while held). */
  private pruneSpareHandles(): void {
    for (const [seq, held] of this.spareHandles) {
      if (this.store.hasSpare(seq)) continue;
      this.spareHandles.delete(seq);
      closeSpareHandles(held);
    }
  }

  /** Remove a spare entirely: its veth pair, its pin, its record. */
  private async dropSpare(spare: SpareRecord, taken?: SpareHandles): Promise<Error[]> {
    const errors: Error[] = [];
    const held = taken ?? this.spareHandles.get(spare.seq);
    this.spareHandles.delete(spare.seq);
    if (held) closeSpareHandles(held);
    try {
      await this.session.request(linkRequests.delete(spare.vethIndex), { offload: true });
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) errors.push(e as Error);
    }
    try {
      removeNetns(spare.netns);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') errors.push(e as Error);
    }
    this.store.deleteSpare(spare.seq);
    return errors;
  }

  /**
   * Make one spare (under the lock): recorded 'making' before anything exists, so recover()
   * removes a half-made one; 'ready' once everything a container has that does not depend on its
   * ports exists — the namespace, the veth pair (both ends up, the host end's IPv6 off) with the
   * veth's ingress qdisc and ICMP/ARP filters, the container's lo, eth0, address, default route,
   * IPv6 off, and its lo/eth0 ingress qdiscs with the filters that do not name a port. Its
   * namespace, a netlink socket there and its ip_local_port_range stay open for the create that
   * takes it.
   */
  private async makeSpare(): Promise<void> {
    const h = this.host;
    const seq = this.store.nextVethNumber();
    const sp: SpareRecord = {
      seq,
      phase: 'making',
      netns: this.store.netnsPath(`.spare-${seq}`),
      veth: `${VETH_PREFIX}${seq}`,
      vethIndex: VETH_INDEX_BASE + seq,
      ifname: h.eth0.name,
      address: h.eth0.address,
      mtu: h.eth0.mtu,
      contents: SPARE_CONTENTS,
      hostKey: this.spareHostKey(),
      createdAt: new Date().toISOString(),
    };
    this.store.writeSpare(sp);
    let ns: Netns | undefined;
    let cs: NetlinkSession | undefined;
    let portRange: SysctlFile | undefined;
    try {
      ns = createNetns(sp.netns);
      const hostReqs = [
        this.vethRequest(sp, ns),
        ...vethBaseFilters(hostView(h), { veth: sp.vethIndex }).map((p) => tcRequest(p, 'add', this.ctx)),
        linkRequests.set(sp.vethIndex, { up: true }),
      ];
      const hostErr = firstFailure(await this.session.batch(hostReqs));
      if (hostErr) throw hostErr;
      this.disableHostVethIpv6(sp.veth);
      const procRoot = this.containerProc.rootFor(this.registry.records.size + this.spareHandles.size);
      ns.run(() => {
        writeContainerSysctlsHere(undefined, procRoot, true);
        portRange = SysctlFile.openHere(['net', 'ipv4', 'ip_local_port_range'], procRoot);
        cs = Session.open({ typeNames: RTM_NAMES });
      });
      const err = firstFailure(await cs!.batch(spareContainerRequests(h, { cLo: 1, cEth0: sp.vethIndex }, hostView(h), this.ctx)));
      if (err) throw err;
      sp.phase = 'ready';
      this.store.writeSpare(sp);
      this.spareHandles.set(seq, { record: sp, ns, session: cs!, portRange: portRange! });
    } catch (e) {
      closeSpareHandles({ ns, session: cs, portRange });
      await this.dropSpare(sp);
      throw e;
    }
  }

  /** Bring the pool back to its size in the background, one spare per turn of the lock. */
  private refillPool(): void {
    if (!this.warmPool || this.refilling || this.closing || this.poolPaused) return;
    // (Never scheduled from inside a locked operation — cleanup runs recoverLocked, not recover —
    // where its withLock would pass as re-entrant.)
    const p = (async () => {
      // Start on a later turn of the event loop: whoever awaited the create or destroy that
      // scheduled us gets its answer first (and a create it issues at once, the lock).
      await new Promise((r) => setImmediate(r));
      try {
        while (!this.closing && !this.poolPaused) {
          const made = await this.store.withLock(async () => {
            this.pruneSpareHandles();
            if (this.closing || this.poolPaused || this.store.listSpares().length >= this.warmPool) return false;
            await this.makeSpare();
            return true;
          });
          if (!made) break;
          await new Promise((r) => setImmediate(r)); // a create waiting for the lock goes first
        }
      } catch (e) {
        this.warnOnce(`warm pool: making a spare failed: ${(e as Error).message}`);
      }
    })();
    this.refilling = p;
    this.background.add(p);
    void p.finally(() => {
      this.background.delete(p);
      this.refilling = undefined;
    });
  }

  /**
   * Remove a container's objects: host port filters by handle, its mirror slot, the veth (which
   * takes the container side with it) and the namespace pin. Continues past errors, returns them.
   * With `wait: false` the veth deletion (slow in the kernel: it waits for RCU) finishes in the
   * background after the veth is down and every filter pointing at it is gone.
   */
  private async teardown(rec: ContainerRecord, opts: { wait: boolean }): Promise<Error[]> {
    const errors: Error[] = [];
    const reqs: Request[] = [];
    for (const f of rec.hostFilters) reqs.push(this.portFilterDelete(f));
    reqs.push(...this.mirrorRequests(Math.floor(rec.mirrorSlot / MIRRORS_PER_FILTER), rec.id));
    reqs.push(linkRequests.set(rec.vethIndex, { up: false }));
    const gone = ['ENOENT', 'ENODEV', 'EINVAL'];
    for (const r of await this.session.batch(reqs)) if (!r.ok && !(r.error instanceof NetlinkError && gone.includes(r.error.code))) errors.push(r.error);
    // Whether the container's end no longer holds its interface name (see below).
    let nameFreed = false;
    if (!rec.ownsNetns) {
      // The namespace outlives us: take our loopback filters out of it, and free its eth0's name
      // and address at once (down, address removed, renamed to a name of ours), so the namespace
      // can get a new interface of that name while the veth pair is deleted in the background.
      try {
        const ns = Netns.fromPath(rec.netns);
        try {
          // Never the host's own lo (a record of an older version could name the host's namespace).
          if (ns.inode === this.hostNetnsInode()) throw new IsolatorError(`container ${rec.id}'s namespace ${rec.netns} is the host's: left as it is`);
          await this.inContainer(ns, async (cs) => {
            const r = await cs.batch([
              tcRequest({ type: 'qdisc', dev: { ns: 'container', index: 1 }, kind: 'ingress', parent: 0xfffffff1, handle: 0xffff0000 }, 'delete', this.ctx),
              linkRequests.set(rec.vethIndex, { up: false }),
              addressRequests.delete({ ifindex: rec.vethIndex, address: `${this.host.ip}/${this.host.prefixlen}` }),
              linkRequests.set(rec.vethIndex, { name: retiredName(rec) }),
            ]);
            const e = firstFailure(r.slice(0, 1), gone);
            if (e) errors.push(e);
            nameFreed = r.slice(1).every((x) => x.ok || (x.error instanceof NetlinkError && x.error.code === 'EADDRNOTAVAIL'));
          });
        } finally {
          ns.close();
        }
      } catch (e) {
        if (!/ENOENT/.test((e as Error).message)) errors.push(e as Error);
      }
    }
    if (rec.ownsNetns || rec.pinned) {
      try {
        removeNetns(rec.netns);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    const del = this.session.request(linkRequests.delete(rec.vethIndex), { offload: true }).then(
      () => undefined,
      (e) => (e instanceof NetlinkError && e.code === 'ENODEV' ? undefined : e),
    );
    // A namespace that outlives us may get a new interface of the same name right away: wait,
    // unless that name was freed above.
    if (opts.wait || (!rec.ownsNetns && !nameFreed)) {
      const e = await del;
      if (e) errors.push(e as Error);
    } else {
      const p = del.then((e) => e && this.warnOnce(`deleting ${rec.veth} failed: ${(e as Error).message}`));
      this.background.add(p);
      void p.finally(() => this.background.delete(p));
    }
    return errors;
  }

  /** Destroy a container; false if it does not exist (idempotent). */
  async destroy(id: string): Promise<boolean> {
    checkContainerId(id);
    return this.store.withLock(async () => {
      await this.syncAndRepair();
      const rec = this.registry.records.get(id);
      if (!rec) return false;
      rec.phase = 'destroying';
      this.saveRecord(rec);
      const errors = await this.teardown(rec, { wait: false });
      this.registry.unindex(rec);
      this.registry.records.delete(id);
      this.dropRecord(id);
      if (errors.length) throw new IsolatorError(`destroyed container ${id}, but: ${errors.map((e) => e.message).join(', ')}`, errors);
      return true;
    }).finally(() => this.refillPool());
  }

  /** The containers, as `create` prints them. */
  async list(): Promise<ContainerInfo[]> {
    return this.store.withLock(async () => {
      this.sync();
      return [...this.registry.records.values()].filter((r) => r.phase !== 'destroying').map(toInfo);
    });
  }

  /** Ports and blocks in use and free, for monitoring. */
  async capacity(): Promise<{ containers: number; portsInUse: number; portsFree: number; ephemeralBlocksFree: number }> {
    return this.store.withLock(async () => {
      this.sync();
      const inUse = this.registry.portsInUse();
      return {
        containers: this.registry.records.size,
        portsInUse: inUse.size,
        portsFree: this.config.ports.subtract(inUse).size,
        ephemeralBlocksFree: this.registry.allocator.freeBlocks,
      };
    });
  }

  /** A container's record (undefined if unknown). */
  async get(id: string): Promise<ContainerRecord | undefined> {
    return this.store.withLock(async () => {
      this.sync();
      return this.registry.records.get(id);
    });
  }

  /**
   * Change a running container's non-ephemeral ports. New filters are added before old ones are
   * removed, so traffic on ports kept never stops; if adding fails, what was added is removed
   * and the container (kernel and record) is as before.
   */
  async update(id: string, portsText: string | PortSet): Promise<ContainerInfo> {
    checkContainerId(id);
    let ports: PortSet;
    try {
      ports = typeof portsText === 'string' ? PortSet.parse(portsText) : portsText;
    } catch (e) {
      throw new IsolatorError(`invalid ports for container ${id}: ${(e as Error).message}`);
    }
    const sw = new Stopwatch();
    this.lastTimings = sw.timings;
    return this.store.withLock(async () => {
      await this.syncAndRepair();
      const rec = this.registry.records.get(id);
      if (!rec || rec.phase !== 'ready') throw new UnknownContainerError(id);
      if (!this.config.ports.contains(ports)) {
        throw new IsolatorError(`Some non-ephemeral ports specified in ${ports.toString()} are not managed by the isolator (managed: ${this.config.ports.toString()})`);
      }
      const clash = this.registry.clashes(ports, id);
      if (!clash.isEmpty) throw new IsolatorError(`ports ${clash.toString()} are already held by another container`);
      const same = (a: PortBlock, b: PortBlock) => a.begin === b.begin && a.end === b.end;
      const oldBlocks = portBlocks(PortSet.ofRanges(rec.ports));
      const newBlocks = portBlocks(ports);
      const toAdd = newBlocks.filter((b) => !oldBlocks.some((o) => same(o, b)));
      const toRemove = oldBlocks.filter((b) => !newBlocks.some((n) => same(n, b)));
      if (!toAdd.length && !toRemove.length) return toInfo(rec);

      const h = hostView(this.host);
      const view = this.view(rec, toAdd);
      const added = hostPortFilters(h, view, toAdd, this.registry.nodes, rec.flowId !== undefined ? { qdisc: this.flowQdisc, flowId: rec.flowId } : undefined);
      const addedHandles = added.map((f) => ({ dev: f.devRole, handle: f.handle!, prio: f.prio, block: [f.block.begin, f.block.end] as [number, number] }));
      // Checkpoint the target and the handles about to exist, so a crash can be rolled back.
      rec.phase = 'updating';
      rec.pendingPorts = ports.ranges;
      rec.pendingFilters = addedHandles;
      this.saveRecord(rec);
      const ns = Netns.fromPath(rec.netns);
      try {
        let err: Error | undefined;
        try {
          // Add: veth filters, then the host port filters pointing at the veth, then the container's.
          err = firstFailure(await this.session.batch([...vethPortFilters(h, view), ...added].map((p) => tcRequest(p, 'add', this.ctx))));
          if (!err) err = await this.inContainer(ns, async (cs) => firstFailure(await cs.batch(containerPortFilters(view).map((p) => tcRequest(p, 'add', this.ctx)))));
        } catch (e) {
          err = e as Error;
        }
        if (err) {
          await this.rollBackUpdate(rec, ns);
          throw new IsolatorError(`Failed to update container ${id}: ${err.message}; its ports are unchanged`, [err]);
        }
        sw.lap('add');
        rec.removing = true;
        this.saveRecord(rec);
        sw.lap('adopt');
        const errors = await this.rollForwardUpdate(rec, ns);
        sw.lap('remove');
        if (errors.length) this.warnOnce(`update of ${id}: some old filters could not be removed: ${errors.map((e) => e.message).join(', ')}`);
        return toInfo(rec);
      } finally {
        ns.close();
      }
    });
  }

  /** Blocks of the ports an update moves to that the current ports do not have (and the reverse). */
  private updateDelta(rec: ContainerRecord): { toAdd: PortBlock[]; toRemove: PortBlock[] } {
    const same = (a: PortBlock, b: PortBlock) => a.begin === b.begin && a.end === b.end;
    const oldBlocks = portBlocks(PortSet.ofRanges(rec.ports));
    const newBlocks = portBlocks(PortSet.ofRanges(rec.pendingPorts ?? rec.ports));
    return { toAdd: newBlocks.filter((b) => !oldBlocks.some((o) => same(o, b))), toRemove: oldBlocks.filter((b) => !newBlocks.some((n) => same(n, b))) };
  }

  /** Undo the adding half of an update: the container keeps its old ports. */
  private async rollBackUpdate(rec: ContainerRecord, ns: Netns): Promise<Error[]> {
    const errors = await this.removeBlocks(rec, ns, this.updateDelta(rec).toAdd, rec.pendingFilters ?? []);
    for (const f of rec.pendingFilters ?? []) this.releaseNode(f);
    this.endUpdate(rec);
    return errors;
  }

  /** The update is over (either way): the record is 'ready' again. */
  private endUpdate(rec: ContainerRecord): void {
    rec.phase = 'ready';
    delete rec.pendingPorts;
    delete rec.pendingFilters;
    delete rec.removing;
    this.saveRecord(rec);
  }

  /** Finish an update whose new filters all exist: remove the old blocks' filters, adopt the new ports. */
  private async rollForwardUpdate(rec: ContainerRecord, ns: Netns): Promise<Error[]> {
    const { toRemove } = this.updateDelta(rec);
    const removed = rec.hostFilters.filter((f) => toRemove.some((b) => f.block[0] === b.begin && f.block[1] === b.end));
    const errors = await this.removeBlocks(rec, ns, toRemove, removed);
    for (const f of removed) this.releaseNode(f);
    rec.hostFilters = [...rec.hostFilters.filter((f) => !removed.includes(f)), ...(rec.pendingFilters ?? [])];
    rec.ports = rec.pendingPorts ?? rec.ports;
    this.endUpdate(rec);
    return errors;
  }

  /**
   * Finish what a dead process left: a create or destroy that did not complete is torn down, an
   * update is rolled back (or forward, once its new filters all existed). Called under the lock,
   * where any record not 'ready' cannot belong to a live operation. Returns what went wrong.
   */
  private async finishInterrupted(links?: Array<{ index: number; name: string }>): Promise<{ cleaned: Array<{ id: string; reason: string }>; errors: string[] }> {
    const out = { cleaned: [] as Array<{ id: string; reason: string }>, errors: [] as string[] };
    for (const rec of [...this.registry.records.values()]) {
      let reason: string | undefined;
      if (rec.phase === 'creating' || rec.phase === 'destroying') reason = `interrupted while ${rec.phase}`;
      else if (links && !links.some((l) => l.index === rec.vethIndex && l.name === rec.veth)) reason = 'its veth is gone';
      else if (links && (rec.ownsNetns || rec.pinned) && !pinExists(rec.netns)) reason = 'its network namespace is gone';
      if (!reason && rec.phase === 'updating') {
        let ns: Netns | undefined;
        try {
          ns = Netns.fromPath(rec.netns);
          const errs = rec.removing ? await this.rollForwardUpdate(rec, ns) : await this.rollBackUpdate(rec, ns);
          out.errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
        } catch (e) {
          out.errors.push(`${rec.id}: ${(e as Error).message}`);
        } finally {
          ns?.close();
        }
      }
      if (reason) {
        const errs = await this.teardown(rec, { wait: true });
        out.errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
        this.registry.unindex(rec);
        this.registry.records.delete(rec.id);
        this.dropRecord(rec.id);
        out.cleaned.push({ id: rec.id, reason });
      }
    }
    return out;
  }

  /** sync() and finish interrupted operations of dead processes: the start of every change. */
  private async syncAndRepair(): Promise<void> {
    this.sync();
    let interrupted = false;
    for (const r of this.registry.records.values()) if (r.phase !== 'ready') interrupted = true;
    if (interrupted) {
      const r = await this.finishInterrupted();
      for (const c of r.cleaned) this.warnOnce(`cleaned up container ${c.id}: ${c.reason}`);
      for (const e of r.errors) this.warnOnce(`while finishing an interrupted operation: ${e}`);
    }
  }

  private releaseNode(f: { dev: HostFilterRole; handle: number }): void {
    this.registry.nodes[f.dev].get(htOf(f.handle))?.delete(f.handle & 0xfff);
  }

  private async inContainer<T>(ns: Netns, fn: (s: NetlinkSession) => Promise<T>): Promise<T> {
    const cs = Session.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      return await fn(cs);
    } finally {
      cs.close();
    }
  }

  /**
   * Remove the filters of some blocks: host port filters by handle, and the veth's and the
   * container's per-block filters, found by their keys (their handles are the kernel's).
   */
  private async removeBlocks(rec: ContainerRecord, ns: Netns, blocks: PortBlock[], handles: ContainerRecord['hostFilters']): Promise<Error[]> {
    const errors: Error[] = [];
    const gone = ['ENOENT', 'ENODEV', 'EINVAL'];
    const collect = (rs: BatchResult[]) => rs.forEach((r) => !r.ok && !(r.error instanceof NetlinkError && gone.includes(r.error.code)) && errors.push(r.error));
    collect(await this.session.batch(handles.map((f) => this.portFilterDelete(f))));
    if (!blocks.length) return errors;
    const wanted = (keys: U32Key[]) => blocks.some((b) => keys.some((k) => k.off === 20 && (sameKey(k, keyDport(b)) || sameKey(k, keySport(b)))));
    const del = async (s: NetlinkSession, ifindex: number) => {
      const found = await dumpFilters(s, ifindex, 0xffff0000);
      collect(await s.batch(found.filter((f) => wanted(f.keys)).map((f) => f.deleteRequest)));
    };
    await this.inContainer(ns, async (cs) => {
      await del(cs, 1);
      await del(cs, rec.vethIndex);
    }).catch((e: Error) => errors.push(e));
    await del(this.session, rec.vethIndex).catch((e: Error) => errors.push(e));
    return errors;
  }

  private portFilterDelete(f: { dev: HostFilterRole; handle: number; prio: number }): Request {
    const parent = f.dev === 'egress' ? (this.hostRecord?.flows?.qdisc ?? this.flowQdisc) : 0xffff0000;
    return tcRequest({ type: 'u32', dev: { ns: 'host', index: f.dev === 'lo' ? this.host.lo.index : this.host.eth0.index }, parent, prio: f.prio, protocol: 'ip', handle: f.handle, keys: [], terminal: false, actions: [] }, 'delete', this.ctx);
  }

  /** The fq_codel handle unique flows use on eth0 (from --egress_flow_classifier_parent). */
  private get flowQdisc(): number {
    return flowQdiscHandle(this.flowParent);
  }
  private get flowParent(): number {
    const p = this.config.egressFlowClassifierParent;
    return p === 'root' ? TC_H_ROOT : parseTcHandle(p);
  }

  /** The lowest free fq_codel flow for a new container (Mesos §5.4), or an error when none is left. */
  private freeFlowId(): number {
    const used = new Set([...this.registry.records.values()].map((r) => r.flowId));
    for (let id = FLOW.MIN_CONTAINER; id <= FLOW.MAX_CONTAINER; id++) if (!used.has(id)) return id;
    throw new IsolatorError(`no free egress flow is left (flows ${FLOW.MIN_CONTAINER}..${FLOW.MAX_CONTAINER} are taken)`);
  }

  /** Mesos /monitor/statistics entries for one container or all. */
  async stats(id?: string): Promise<MesosStatistics[]> {
    const records = await this.store.withLock(async () => {
      this.sync();
      return [...this.registry.records.values()].filter((r) => r.phase === 'ready' && (id === undefined || r.id === id));
    });
    if (id !== undefined && records.length === 0) throw new UnknownContainerError(id);
    const out: MesosStatistics[] = [];
    for (const r of records) {
      try {
        out.push(await containerStatistics(r, { host: this.session, config: this.config, fqCodel: this.fqCodel ?? false }));
      } catch (e) {
        // Destroyed meanwhile by another process, or its namespace died: one container's problem.
        if (id !== undefined) throw e;
        this.warnOnce(`statistics of ${r.id} are unavailable: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Rebuild from the checkpoint, cross-checked with the kernel: containers whose creation,
   * update or destruction was interrupted are finished (removed), containers whose veth vanished
   * are cleaned up, and objects nobody owns (veths named pmi<N>, namespace pins, port-table
   * filters) are removed. Never aborts on inconsistent state: every problem is reported.
   */
  async recover(): Promise<RecoverReport> {
    return this.store.withLock(() => this.recoverLocked()).finally(() => this.refillPool()); // (an agent's pool fills right after its recover)
  }

  private async recoverLocked(): Promise<RecoverReport> {
    const report: RecoverReport = { recovered: [], cleaned: [], orphans: { veths: [], netns: [], filters: [], files: [] }, repaired: [], errors: [] };
    this.pruneSpareHandles();
    this.registry.reset(this.store.listContainers());
    this.registry.generation = this.store.readGeneration();
    const links = await this.rtnl.links.list();
    const hostRec = this.store.readHost();
    const finished = await this.finishInterrupted(links);
    report.cleaned.push(...finished.cleaned);
    report.errors.push(...finished.errors);
    report.recovered.push(...[...this.registry.records.values()].map((r) => r.id));
    // Spares: half-made ones, and ready ones that lost their veth or pin, are removed.
    const spares: SpareRecord[] = [];
    for (const sp of this.store.listSpares()) {
      // (One made by an older version, or for other host facts, would never be taken.)
      const whole = this.spareFits(sp, this.host.eth0.name) && links.some((l) => l.index === sp.vethIndex && l.name === sp.veth) && pinExists(sp.netns);
      if (whole) {
        spares.push(sp);
        continue;
      }
      const errs = await this.dropSpare(sp);
      report.errors.push(...errs.map((e) => `spare ${sp.seq}: ${e.message}`));
    }
    // Orphans: our veths without a record.
    const known = new Set([...[...this.registry.records.values()].map((r) => r.vethIndex), ...spares.map((sp) => sp.vethIndex)]);
    for (const l of links) {
      if (!/^pmi\d+$/.test(l.name) || known.has(l.index)) continue;
      try {
        await this.session.request(linkRequests.delete(l.index), { offload: true });
        report.orphans.veths.push(l.name);
      } catch (e) {
        if (!(e instanceof NetlinkError && e.code === 'ENODEV')) report.errors.push(`${l.name}: ${(e as Error).message}`);
      }
    }
    // Orphans: namespace pins without a record.
    const pins = new Set([...[...this.registry.records.values()].filter((r) => r.ownsNetns).map((r) => r.netns), ...spares.map((sp) => sp.netns)]);
    for (const name of listPins(this.store.netnsDir)) {
      const path = `${this.store.netnsDir}/${name}`;
      if (pins.has(path)) continue;
      try {
        removeNetns(path);
        report.orphans.netns.push(path);
      } catch (e) {
        report.errors.push(`${path}: ${(e as Error).message}`);
      }
    }
    try {
      report.orphans.files.push(...this.store.sweepLeftovers());
    } catch (e) {
      report.errors.push(`state files: ${(e as Error).message}`);
    }
    if (hostRec) {
      // The shared objects and every container's port filters, checked against the records and
      // put back where missing; then port-table filters no record owns are removed.
      let damage: HostDamage | undefined;
      try {
        damage = await inspectHost(this.session, this.host, this.registry.records.values());
        // (A half-done host setup is finished by the next create or undone by cleanup; an older layout is rebuilt, not patched.)
        if (hostRec.complete !== false && hostRec.shared.layout === SHARED_LAYOUT) report.repaired.push(...(await this.repairHost(damage, hostRec, report.errors)));
      } catch (e) {
        report.errors.push(`host filters: ${(e as Error).message}`);
      }
      const owned = new Set([...this.registry.records.values()].flatMap((r) => r.hostFilters.map((f) => `${f.dev}:${f.handle}`)));
      for (const dev of damage ? (['eth0', 'lo'] as const) : []) {
        const stray = damage!.dumps[dev].filters.filter((f) => isPortFilterHandle(f.handle) && !owned.has(`${dev}:${f.handle}`));
        const results = await this.session.batch(stray.map((f) => f.deleteRequest));
        stray.forEach((f, i) => (results[i]!.ok ? report.orphans.filters.push(`${dev} ${formatU32Handle(f.handle)}`) : report.errors.push(`${dev} filter ${formatU32Handle(f.handle)}: ${(results[i] as { error: Error }).error.message}`)));
      }
      const chunks = new Set([...this.registry.records.values()].map((r) => Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER)));
      const maxChunk = Math.max(0, ...chunks);
      const reqs: Request[] = [];
      for (let c = 0; c <= maxChunk + 1; c++) reqs.push(...this.mirrorRequests(c));
      const err = firstFailure(await this.session.batch(reqs), ['ENOENT', 'EINVAL']);
      if (err) report.errors.push(`mirrors: ${err.message}`);
    }
    return report;
  }

  /** Put back missing shared objects and container port filters (recorded handles); what was done, one line each. */
  private async repairHost(damage: HostDamage, hostRec: HostRecord, errors: string[]): Promise<string[]> {
    const done = describeDamage(damage, this.host);
    if (!done.length) return [];
    if (damage.shared.eth0.missing || damage.shared.lo.missing) {
      const tables = { eth0: damage.dumps.eth0.tables, lo: damage.dumps.lo.tables };
      const errs = await repairSharedLayout(this.session, this.host, hostRec, this.ctx, (r) => this.store.writeHost(r), tables);
      errors.push(...errs.map((e) => `repairing the shared port tables: ${e.message}`));
    }
    const hv = hostView(this.host);
    const plans = damage.filters.map(({ vethIndex, filter: f }) => portFilterPlan(hv, f.dev, vethIndex, blockFromBeginEnd(f.block[0], f.block[1]), f.handle));
    const results = await this.session.batch(plans.map((p) => tcRequest(p, 'add', this.ctx)));
    results.forEach((r, i) => !r.ok && errors.push(`container ${damage.filters[i]!.id}: re-adding its ${damage.filters[i]!.filter.dev} filter ${formatU32Handle(plans[i]!.handle!)}: ${r.error.message}`));
    return done.map((d) => `${d}: put back`);
  }

  /** Problems with the host's shared objects and the containers' port filters, one line each (none: all in place). */
  async checkHost(): Promise<string[]> {
    return this.store.withLock(async () => {
      this.sync();
      const hostRec = this.store.readHost();
      if (!hostRec || hostRec.complete === false || hostRec.shared.layout !== SHARED_LAYOUT) return [];
      return describeDamage(await inspectHost(this.session, this.host, this.registry.records.values()), this.host);
    });
  }

  /**
   * Destroy every container and undo everything the isolator did to the host: its filters and
   * tables, the ingress qdiscs it created, lo's MAC and MTU, and the sysctls it changed.
   * Continues past errors and reports them all. The lock is let go between containers: a
   * container another request creates meanwhile is kept, and so is the host's setup it needs.
   */
  async cleanup(): Promise<CleanupReport> {
    this.poolPaused = true;
    const report: CleanupReport = { destroyed: [], errors: [] };
    // Every container there when cleanup starts goes, one per hold of the lock with a pause
    // between, so that other processes' requests interleave with a long cleanup instead of
    // waiting for all of it. One created meanwhile stays, and so does the host's setup it needs.
    const ids = await this.store.withLock(async () => {
      report.errors.push(...(await this.recoverLocked()).errors);
      return [...this.registry.records.keys()];
    });
    for (const id of ids) {
      await this.store.withLock(async () => this.destroyForCleanup(id, report));
      await new Promise((r) => setTimeout(r, CLEANUP_PAUSE_MS));
    }
    return this.store.withLock(async () => {
      await this.syncAndRepair();
      if (this.registry.records.size) return report; // created while it ran: kept, with the host's setup
      // All at once: each veth deletion waits for an RCU grace period in the kernel (~20 ms), and they overlap.
      const spares = this.store.listSpares();
      const dropped = await Promise.allSettled(spares.map((sp) => this.dropSpare(sp)));
      spares.forEach((sp, i) => {
        const d = dropped[i]!;
        const errs = d.status === 'fulfilled' ? d.value : [d.reason as Error];
        report.errors.push(...errs.map((e) => `spare ${sp.seq}: ${e.message}`));
      });
      const hostRec = this.store.readHost();
      if (hostRec) {
        const errs = await tearDownHost(this.session, this.host, hostRec, this.ctx);
        report.errors.push(...errs.map((e) => `host: ${e.message}`));
        this.store.deleteHost();
        this.hostRecord = undefined;
        this.registry.generation = this.store.bumpGeneration();
      }
      try {
        this.containerProc.close(); // also one a crashed process left mounted
      } catch (e) {
        report.errors.push(`${this.containerProc.dir}: ${(e as Error).message}`);
      }
      return report;
    });
  }

  /** Destroy one container for cleanup (under the lock), if it is still there. */
  private async destroyForCleanup(id: string, report: CleanupReport): Promise<void> {
    await this.syncAndRepair();
    const rec = this.registry.records.get(id);
    if (!rec) return;
    const errs = await this.teardown(rec, { wait: true });
    report.errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
    this.registry.unindex(rec);
    this.registry.records.delete(rec.id);
    this.dropRecord(rec.id);
    report.destroyed.push(rec.id);
  }

  /** Resolves once background work (the warm pool's refill, veth deletions) has finished. */
  async idle(): Promise<void> {
    while (this.background.size) await Promise.allSettled([...this.background]);
  }

  /** Wait for background work (veth deletions) and close the netlink sockets. */
  async close(): Promise<void> {
    this.closing = true; // the warm pool's refill stops after the spare it is making
    await Promise.all([...this.background]);
    for (const held of this.spareHandles.values()) closeSpareHandles(held); // the spares stay, for the next process
    this.spareHandles.clear();
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

