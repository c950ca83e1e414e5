/**
 * The isolator engine: create (Mesos prepare + isolate), update, destroy (cleanup), usage,
 * recover and a full cleanup, over the netlink SDK, with the state checkpointed in the work_dir.
 *
 * Crash safety: a container's record is written (phase 'creating') before any kernel object
 * exists, and kernel objects carry handles chosen in advance and recorded, so `recover` can find
 * and remove everything a crash left at any point. Each change of state happens under the
 * work_dir lock, shared with other CLI invocations, the agent and the CNI plugin.
 *
 * This is the façade; the work is done in create.ts (with build.ts), update.ts, teardown.ts,
 * recovery.ts, cleanup.ts and warm-pool.ts, over what engine-core.ts shares.
 */
import { Netns } from '../netlink/index.js';
import { Rtnl } from '../rtnl/index.js';
import type { Psched } from '../tc/rate.js';
import { systemPsched } from '../tc/rate.js';
import { cleanup } from './cleanup.js';
import type { IsolatorConfig, IsolatorFlags } from './config.js';
import { parseConfig } from './config.js';
import { createContainer } from './create.js';
import type { PerCpuRates } from './engine-core.js';
import { EngineCore } from './engine-core.js';
import { ConfigError, InvalidPortsError, UnknownContainerError } from './errors.js';
import type { HostFacts } from './host.js';
import { discoverHost } from './host.js';
import { PortSet } from './port-set.js';
import { toInfo } from './records.js';
import { checkHostLocked, recoverLocked, syncAndRepair } from './recovery.js';
import type { ContainerRecord } from './state.js';
import { DEFAULT_WORK_DIR, StateStore, checkContainerId } from './state.js';
import type { MesosStatistics, StatisticsContext } from './statistics.js';
import { putGatewayEverywhere, watchGatewayNeighbour } from './gateway.js';
import { ECHO_FANOUT_VIEW } from './plan.js';
import { containerStatistics, hostLinkStats, hostQdiscStats, ingressDrops, shaperClassStats } from './statistics.js';
import { destroyContainer } from './teardown.js';
import type { Timings } from './timing.js';
import { Stopwatch } from './timing.js';
import { updateContainer } from './update.js';
import type { DrainReport } from './warm-pool.js';

export { UnknownContainerError } from './errors.js';
export { dumpFilters } from './filter-dump.js';
export type { DumpedFilter } from './filter-dump.js';
export { VETH_INDEX_BASE, VETH_PREFIX, toInfo } from './records.js';
export type { Timings } from './timing.js';
export type { DrainReport } from './warm-pool.js';

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
  /**
   * Called as each phase of a create or update ends, with the phase's name (the keys of
   * `lastTimings`). Tests kill the process here to leave what a crash at that point leaves.
   */
  onPhase?: (phase: string) => void;
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
  /** The host's IPv6 addresses it shares, with prefix lengths (--ipv6); absent when IPv6 is off in it. */
  ipv6_addresses?: string[];
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

/** A container's ports as given: Mesos range syntax or a PortSet. */
function parsePorts(id: string, ports: string | PortSet): PortSet {
  try {
    return typeof ports === 'string' ? PortSet.parse(ports) : ports;
  } catch (e) {
    throw new InvalidPortsError(id, (e as Error).message);
  }
}

/** The host's network namespace, when one is named (else the caller's). */
function openHostNetns(netns: string | undefined): Netns | undefined {
  if (netns === undefined) return undefined;
  try {
    const ns = Netns.parse(netns);
    void ns.inode;
    return ns;
  } catch (e) {
    throw new ConfigError('netns', `cannot open network namespace ${JSON.stringify(netns)}: ${(e as Error).message}`);
  }
}

/** The per-CPU rate limits, 'auto' worked out from the link speed and the agent's cpus. */
function perCpuRates(config: IsolatorConfig, host: HostFacts): PerCpuRates {
  const perCpu: PerCpuRates = {};
  for (const dir of ['egress', 'ingress'] as const) {
    const p = config[dir].perCpu;
    if (p === 'auto') {
      const speed = config.linkSpeedBytesPerSec;
      if (speed === undefined)
        throw new ConfigError(
          `${dir}_rate_per_cpu`,
          `Failed to determine per CPU ${dir} rate limit: the link speed of ${host.eth0.name} is unknown here; pass --network_link_speed`,
        );
      perCpu[dir] = Math.floor(speed / Math.floor(config.agentCpus!));
    } else if (p !== undefined) perCpu[dir] = p;
  }
  return perCpu;
}

/** Refuse a work_dir that another network namespace's isolator uses. */
function checkWorkDirNetns(store: StateStore, ns: Netns | undefined): void {
  const recorded = store.readHost();
  const inode = (ns ?? Netns.current()).inode;
  if (recorded && recorded.netnsInode !== inode) {
    throw new ConfigError(
      'netns',
      `the work_dir ${store.workDir} belongs to another network namespace (inode ${recorded.netnsInode}, this one is ${inode}): pass the --netns it was used with, or another --work_dir`,
    );
  }
}

function checkWarmPool(warmPool: number | undefined): number {
  const n = warmPool ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > 64) throw new ConfigError('warm_pool', `must be an integer in 0..64, got ${String(warmPool)}`);
  return n;
}

export class Isolator {
  readonly config: IsolatorConfig;
  readonly host: HostFacts;
  readonly store: StateStore;
  /** Phase timings of the last create/destroy/update. */
  lastTimings: Timings = {};

  private constructor(
    private readonly core: EngineCore,
    private readonly onPhase: ((phase: string) => void) | undefined,
  ) {
    this.config = core.config;
    this.host = core.host;
    this.store = core.store;
  }

  /**
   * Validate the flags, find the host's interfaces, addresses and gateway, and check the
   * ephemeral pool against the host. Throws ConfigError (bad flags or host mismatch).
   */
  static async open(opts: IsolatorOptions = {}): Promise<Isolator> {
    const config = parseConfig(opts.flags ?? {});
    const ns = openHostNetns(opts.netns);
    const rtnl = Rtnl.open(ns);
    try {
      const host = await discoverHost(rtnl, config);
      const perCpu = perCpuRates(config, host);
      const store = new StateStore(opts.workDir ?? DEFAULT_WORK_DIR);
      store.init();
      const ctx = { psched: opts.psched ?? systemPsched() };
      checkWorkDirNetns(store, ns);
      const warmPool = checkWarmPool(opts.warmPool);
      const core = new EngineCore(config, host, store, rtnl, ctx, opts.onWarning ?? ((m) => process.emitWarning(m)), perCpu, warmPool);
      if (config.egressUniqueFlowPerContainer && !(await core.probeFqCodel())) {
        throw new ConfigError(
          'egress_unique_flow_per_container',
          'this kernel has no fq_codel qdisc, which unique egress flows need (sch_fq_codel); drop the flag or use a kernel with fq_codel',
        );
      }
      return new Isolator(core, opts.onPhase);
    } catch (e) {
      rtnl.close();
      throw e;
    }
  }

  /** A stopwatch for a new create or update, whose timings become lastTimings. */
  private stopwatch(): Stopwatch {
    const sw = new Stopwatch(this.onPhase);
    this.lastTimings = sw.timings;
    return sw;
  }

  /** Create a container: its namespace (unless given), veth, filters and shaping. */
  async create(spec: CreateSpec): Promise<ContainerInfo> {
    const id = checkContainerId(spec.id);
    const ports = spec.ports === undefined ? PortSet.EMPTY : parsePorts(id, spec.ports);
    const ifname = spec.ifname ?? this.host.eth0.name;
    const sw = this.stopwatch();
    this.core.pool.resume();
    try {
      return await this.store.withLock(async () => {
        sw.lap('lock');
        await syncAndRepair(this.core);
        return createContainer(this.core, id, ports, ifname, spec, sw);
      });
    } finally {
      this.core.pool.refill();
    }
  }

  /** Destroy a container; false if it does not exist (idempotent). */
  async destroy(id: string): Promise<boolean> {
    checkContainerId(id);
    return this.store
      .withLock(async () => {
        await syncAndRepair(this.core);
        return destroyContainer(this.core, id);
      })
      .finally(() => this.core.pool.refill());
  }

  /** The containers, as `create` prints them. */
  async list(): Promise<ContainerInfo[]> {
    return this.store.withLock(async () => {
      this.core.sync();
      return [...this.core.registry.records.values()].filter((r) => r.phase !== 'destroying').map(toInfo);
    });
  }

  /** Ports and blocks in use and free, for monitoring. */
  async capacity(): Promise<{ containers: number; portsInUse: number; portsFree: number; ephemeralBlocksFree: number }> {
    return this.store.withLock(async () => {
      this.core.sync();
      const registry = this.core.registry;
      const inUse = registry.portsInUse();
      return {
        containers: registry.records.size,
        portsInUse: inUse.size,
        portsFree: this.config.ports.subtract(inUse).size,
        ephemeralBlocksFree: registry.allocator.freeBlocks,
      };
    });
  }

  /** A container's record (undefined if unknown). */
  async get(id: string): Promise<ContainerRecord | undefined> {
    return this.store.withLock(async () => {
      this.core.sync();
      return this.core.registry.records.get(id);
    });
  }

  /**
   * Change a running container's non-ephemeral ports. New filters are added before old ones are
   * removed, so traffic on ports kept never stops; if adding fails, what was added is removed
   * and the container (kernel and record) is as before.
   */
  async update(id: string, portsText: string | PortSet): Promise<ContainerInfo> {
    checkContainerId(id);
    const ports = parsePorts(id, portsText);
    const sw = this.stopwatch();
    return this.store.withLock(async () => {
      await syncAndRepair(this.core);
      return updateContainer(this.core, id, ports, sw);
    });
  }

  /** Mesos /monitor/statistics entries for one container or all. */
  async stats(id?: string): Promise<MesosStatistics[]> {
    const core = this.core;
    const records = await this.store.withLock(async () => {
      core.sync();
      return [...core.registry.records.values()].filter((r) => r.phase === 'ready' && (id === undefined || r.id === id));
    });
    if (id !== undefined && records.length === 0) throw new UnknownContainerError(id);
    const linkStats = await hostLinkStats(core.session, records.length);
    const qdiscs = await hostQdiscStats(core.session);
    const shaperClasses = records.some((r) => r.egressOnHost) ? await shaperClassStats(core.session) : undefined;
    const ctx: StatisticsContext = {
      host: core.session,
      config: this.config,
      fqCodel: core.fqCodel ?? false,
      linkStats,
      qdiscs,
      ...(shaperClasses ? { shaperClasses } : {}),
    };
    const out: MesosStatistics[] = [];
    for (const r of records) {
      try {
        out.push(await containerStatistics(r, ctx));
      } catch (e) {
        // Destroyed meanwhile by another process, or its namespace died: one container's problem.
        if (id !== undefined) throw e;
        core.warnOnce(`statistics of ${r.id} are unavailable: ${(e as Error).message}`);
      }
    }
    return out;
  }

  /**
   * Keep every container's permanent neighbour entry for the gateway in step with the host's
   * (a running agent does this): the host's neighbour events are watched, and a new MAC is given
   * to every container and spare under the lock. Returns the function that stops watching.
   */
  watchGateway(): () => void {
    const core = this.core;
    let running = Promise.resolve();
    return watchGatewayNeighbour(
      core,
      (mac, family) => {
        running = running
          .then(() =>
            this.store.withLock(async () => {
              core.sync();
              if (mac === (family === 'inet' ? core.host.gatewayMac : core.host.ipv6?.gatewayMac)) return;
              for (const f of await putGatewayEverywhere(core, mac, family)) core.warnOnce(`the gateway's new MAC could not be given to ${f}`);
            }),
          )
          .catch((e: Error) => core.warnOnce(`following the gateway's MAC: ${e.message}`));
        core.track(running);
      },
      (e) => core.warnOnce(`watching the gateway's neighbour entry: ${e.message}`),
    );
  }

  /**
   * Host-wide counters of the data path: packets to the host's address on a managed port that no
   * container holds, dropped on eth0 (its ingress qdisc's drops: with an ingress qdisc that was
   * there before the isolator, other tools' drops count too); and echo replies to the host not
   * copied to the containers because they came faster than the echo fan-out's rate limit.
   */
  async hostCounters(): Promise<{ unheldPortDroppedPackets: number; echoReplyFanoutDroppedPackets: number }> {
    const qdiscs = await hostQdiscStats(this.core.session);
    // Echo replies the fan-out's rate limit kept from the containers (its tbf's drops; the host had each).
    const fanout = qdiscs.get(ECHO_FANOUT_VIEW.tx)?.find((q) => q.kind === 'tbf')?.stats?.drops ?? 0;
    return { unheldPortDroppedPackets: ingressDrops(qdiscs.get(this.core.host.eth0.index)), echoReplyFanoutDroppedPackets: fanout };
  }

  /**
   * Rebuild from the checkpoint, cross-checked with the kernel: containers whose creation,
   * update or destruction was interrupted are finished (removed), containers whose veth vanished
   * are cleaned up, and objects nobody owns (veths named pmi<N>, namespace pins, port-table
   * filters) are removed. Never aborts on inconsistent state: every problem is reported.
   */
  async recover(): Promise<RecoverReport> {
    return this.store.withLock(() => recoverLocked(this.core)).finally(() => this.core.pool.refill()); // (an agent's pool fills right after its recover)
  }

  /** Problems with the host's shared objects and the containers' port filters, one line each (none: all in place). */
  async checkHost(): Promise<string[]> {
    return this.store.withLock(() => checkHostLocked(this.core));
  }

  /**
   * Destroy every container and undo everything the isolator did to the host: its filters and
   * tables, the ingress qdiscs it created, lo's MAC and MTU, and the sysctls it changed.
   * Continues past errors and reports them all. The lock is let go between containers: a
   * container another request creates meanwhile is kept, and so is the host's setup it needs.
   */
  async cleanup(): Promise<CleanupReport> {
    return cleanup(this.core);
  }

  /** Resolves once background work (the warm pool's refill, veth deletions) has finished. */
  async idle(): Promise<void> {
    while (this.core.background.size) await Promise.allSettled([...this.core.background]);
  }

  /**
   * Remove the warm pool's spares (an agent shutting down), giving up at `timeoutMs`; containers
   * are untouched. Then close() as usual. One-shot commands keep no spares and need not call it.
   */
  async drainPool(timeoutMs = 5000): Promise<DrainReport> {
    return this.core.pool.drain(Date.now() + timeoutMs);
  }

  /** Wait for background work (veth deletions) and close the netlink sockets. */
  async close(): Promise<void> {
    this.core.pool.stop(); // the warm pool's refill stops after the spare it is making
    await Promise.all([...this.core.background]);
    this.core.pool.closeHandles(); // the spares stay, for the next process
    this.core.close();
  }
}
