import { existsSync, mkdirSync, readSync, readdirSync, writeSync } from 'node:fs';
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import { InvalidContainerIdError, IsolatorError } from './errors.js';
import type { HtbConfig } from './rates.js';
import type { FlockCalls } from './work-dir-lock.js';
import { WorkDirLock } from './work-dir-lock.js';
import { changesSince, logChange, readJson, sweepLeftovers, unlinkQuiet, writeJson, writeRecordInPlace } from './record-files.js';

export { LockTimeoutError } from './errors.js';

/**
 * The isolator's checkpoint in its work_dir, shared by every CLI invocation, the agent and the
 * CNI plugin on one host:
 *
 *   <work_dir>/lock                 flock(2)-held while state and kernel objects change; holds
 *                                   the generation (bumped by every change) and the veth counter
 *   <work_dir>/changes.log          `<generation> <container id>` per change (`*`: anything else),
 *                                   so a long-running process re-reads only what others changed
 *   <work_dir>/host.json            what the isolator did to the host (to undo it in `cleanup`)
 *   <work_dir>/containers/<id>.json one record per container, written before kernel objects exist
 *   <work_dir>/netns/<id>           pinned network namespaces of containers we created (or
 *                                   netns/.spare-<n>: the pin of the spare a container took)
 *   <work_dir>/spares/<n>.json      the warm pool's spares (pins netns/.spare-<n>)
 *
 * A crash of the process leaves the old or the new record, never half of one: records of up to a
 * page are rewritten in place by one write (see writeRecordInPlace in record-files.ts), longer ones and host.json are
 * replaced by write and rename. They are not fsync'd: what they describe (namespaces, links,
 * filters) does not survive a reboot either.
 */

export const DEFAULT_WORK_DIR = '/var/run/portmap-isolator';

/** A container's lifecycle phase, as checkpointed. Anything but 'ready' after a crash means: clean up. */
export type ContainerPhase = 'creating' | 'ready' | 'updating' | 'destroying';

export interface ContainerRecord {
  id: string;
  phase: ContainerPhase;
  /** The container's network namespace (a pin we made, or /proc/<pid>/ns/net). */
  netns: string;
  /** Whether we created and pinned the namespace (and so remove it). */
  ownsNetns: boolean;
  /** A process's namespace that we pinned at `netns` (unpinned on destroy; the process keeps it). */
  pinned?: boolean;
  pid?: number;
  /** Host end of the veth pair. */
  veth: string;
  /** The container's ephemeral block, inclusive. */
  ephemeralPorts: { begin: number; end: number };
  /** The host's IPv6 addresses (with prefix lengths) it was given (--ipv6); absent: IPv6 off in it. */
  ipv6?: string[];
  /** Non-ephemeral ports, inclusive ranges. */
  ports: Array<[number, number]>;
  /** Ports being moved to by an update in progress (phase 'updating'). */
  pendingPorts?: Array<[number, number]>;
  /** Host filters that update adds (checkpointed before they exist). */
  pendingFilters?: HostFilterRecord[];
  /** The update's new filters all exist: a crash now is finished forward, not rolled back. */
  removing?: boolean;
  egress?: HtbConfig;
  ingress?: HtbConfig;
  flowId?: number;
  /** Its egress limit is enforced on the host's shaper (egress_shaping_placement=host), in class 1:<shaperClassOf(mirrorSlot)>. */
  egressOnHost?: boolean;
  /** u32 handles of this container's filters on the host eth0 and lo, for exact removal. */
  hostFilters: HostFilterRecord[];
  /** Its place in the ARP/ICMP mirror filters (chunk = slot / 32). */
  mirrorSlot: number;
  /** Interface index of the host veth (and of the container's eth0, in its namespace). */
  vethIndex: number;
  /** The container's eth0 name (the host's public interface name, or CNI_IFNAME). */
  ifname: string;
  cpus?: number;
  createdAt: string;
  /**
   * 'rules': what it sends to itself is steered by routing rules in its namespace (plan-self.ts).
   * Absent: made by an earlier version, with u32 filters on its lo's ingress instead; updates
   * leave those alone (traffic to its new ports then goes round through the host), and a
   * namespace that outlives it loses lo's ingress qdisc.
   */
  selfRouting?: 'rules';
}

/** One of a container's filters in the host's port tables: which device, handle and port block. */
export interface HostFilterRecord {
  /** eth0 or lo ingress (port tables; ICMP error tables: eth0Icmp, loIcmp), eth0 egress (unique-flow classifiers), or the shaper's HTB. */
  dev: 'eth0' | 'lo' | 'egress' | 'eth0Icmp' | 'loIcmp' | 'shaper';
  handle: number;
  prio: number;
  /** The port block it steers, inclusive. */
  block: [number, number];
}

/** Host-wide changes made by the isolator, recorded so that `cleanup` can undo them. */
export interface HostRecord {
  /** Namespace identity (inode) the record belongs to. */
  netnsInode: number;
  /** False while the setup is under way (a crash leaves it false: the next setup resumes). */
  complete?: boolean;
  /** Ingress qdiscs we created (not pre-existing ones). */
  createdIngress: Array<'eth0' | 'lo'>;
  /** Sysctl values before we changed them: key → old value. */
  sysctls: Record<string, string>;
  /** lo's MAC and MTU before we changed them. */
  lo?: { address: string; mtu: number };
  /** Objects of the shared layout: hash tables, link filters, ARP/ICMP mirrors. */
  shared: Record<string, unknown>;
  /** The gateway's MAC containers were given as a permanent neighbour (gateway.ts). */
  gatewayMac?: string;
  /** The same for the IPv6 gateway (--ipv6). */
  gateway6Mac?: string;
  /** The host's IPv6 addressing the shared layout was set up for (--ipv6): what containers are built with while any exists. */
  ipv6?: { addresses: Array<{ address: string; prefixlen: number }>; gateway?: string };
  /** The egress shaper (plan-shaper.ts): recorded before it is made; cleanup removes it. */
  shaper?: { created: boolean };
  /** The echo fan-out (plan-host.ts, echoFanoutPlan): recorded before it is made; cleanup removes it. */
  echoFanout?: { created: boolean };
  /** Unique egress flows: the fq_codel on eth0 (its parent and handle), and whether we created it. */
  flows?: { parent: number; qdisc: number; created: boolean };
}

/**
 * A spare: a network namespace pinned in the work_dir with its veth pair and the container-side
 * setup that does not depend on the container (lo, eth0 up with the host IP and default route, IPv6
 * off), made ahead of time so a create can skip that work (see Isolator's warm pool).
 */
export interface SpareRecord {
  seq: number;
  /** 'making' until every object exists; recover() removes a spare found 'making'. */
  phase: 'making' | 'ready';
  netns: string;
  veth: string;
  vethIndex: number;
  /** The container-side interface name, MAC and MTU it was made with (the host's, then). */
  ifname: string;
  address: string;
  mtu: number;
  /**
   * What it holds besides its links ('links+tc+rules-v4': also the tc objects and routing rules
   * that do not depend on a container's ports) and the host facts it was made for (see Isolator): a spare that does not
   * match both is never taken, and recover() removes it.
   */
  contents?: string;
  hostKey?: string;
  createdAt: string;
}

export class StateStore {
  private lockFd: number | undefined;
  /** The counters as read when the lock was taken (only this holder changes them meanwhile). */
  private counters: { gen: number; veth: number } | undefined;
  /** The call chain holding the lock in this process. */
  private readonly holder = new AsyncLocalStorage<StateStore>();
  /** Calls of this process waiting for the lock, in order. */
  private queue: Promise<void> = Promise.resolve();
  private readonly lock: WorkDirLock;

  constructor(
    readonly workDir: string,
    /** flock and flockAsync (default: the native shim's). */
    shim?: FlockCalls,
  ) {
    this.lock = new WorkDirLock(workDir, shim);
  }

  get containersDir(): string {
    return join(this.workDir, 'containers');
  }
  get sparesDir(): string {
    return join(this.workDir, 'spares');
  }
  get netnsDir(): string {
    return join(this.workDir, 'netns');
  }
  netnsPath(id: string): string {
    return join(this.netnsDir, id);
  }

  init(): void {
    mkdirSync(this.containersDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.netnsDir, { recursive: true, mode: 0o700 });
    mkdirSync(this.sparesDir, { recursive: true, mode: 0o700 });
  }

  /**
   * Run `fn` holding the work_dir lock (re-entrant within this process). Waits up to `timeoutMs`
   * for another holder, queued in the kernel (see WorkDirLock); the kernel releases a dead
   * holder's lock.
   */
  async withLock<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    // Re-entrant within one call chain (AsyncLocalStorage), exclusive between concurrent calls of
    // this process (a promise queue) and between processes (flock).
    if (this.holder.getStore() === this) return fn();
    const previous = this.queue;
    let release!: () => void;
    this.queue = new Promise<void>((r) => (release = r));
    try {
      await previous;
      return await this.holder.run(this, () => this.lockFile(fn, timeoutMs));
    } finally {
      release();
    }
  }

  private async lockFile<T>(fn: () => Promise<T>, timeoutMs: number): Promise<T> {
    this.init();
    const fd = await this.lock.acquire(timeoutMs);
    this.lockFd = fd;
    this.counters = undefined;
    try {
      return await fn();
    } finally {
      this.lockFd = undefined;
      this.lock.release(fd);
    }
  }

  /**
   * Counters kept in the lock file itself (read and written in place while the lock is held, one
   * system call each): `gen` changes whenever any process changes the state, so an in-memory copy
   * of the records can be reused while it is unchanged; `veth` numbers host veths (pmi<N>).
   */
  private readCounters(): { gen: number; veth: number } {
    if (this.lockFd === undefined) throw new IsolatorError('state counters need the work_dir lock');
    if (!this.counters) {
      const buf = Buffer.alloc(64);
      const n = readSync(this.lockFd, buf, 0, 64, 0);
      const m = /gen=(\d+) veth=(\d+)/.exec(buf.toString('latin1', 0, n));
      this.counters = m ? { gen: Number(m[1]), veth: Number(m[2]) } : { gen: 0, veth: 1 };
    }
    return { ...this.counters };
  }
  private writeCounters(c: { gen: number; veth: number }): void {
    writeSync(this.lockFd!, `gen=${c.gen} veth=${c.veth}`.padEnd(63) + '\n', 0);
    this.counters = { ...c };
  }

  /** The state's generation (under the lock). */
  readGeneration(): string {
    return String(this.readCounters().gen);
  }
  /**
   * Mark the state changed; returns the new generation. `changedId`: the one container record
   * this change writes or removes (logged, so other processes re-read only it); without it,
   * other processes reload everything.
   */
  bumpGeneration(changedId?: string): string {
    const c = this.readCounters();
    c.gen++;
    this.writeCounters(c);
    this.logChange(c.gen, changedId ?? '*');
    return String(c.gen);
  }

  /**
   * The container records changed after generation `from` up to `to`, from the change log: only
   * when the log holds every generation in between (else undefined: reload everything). The log is
   * an optimisation; a missing, compacted, torn or gapped log only costs a full reload.
   */
  changesSince(from: string, to: string): string[] | undefined {
    return changesSince(this.changeLogPath, from, to);
  }

  private get changeLogPath(): string {
    return join(this.workDir, 'changes.log');
  }

  /** Append `<gen> <id or *>` to the change log (see logChange). */
  private logChange(gen: number, what: string): void {
    logChange(this.changeLogPath, gen, what);
  }
  /** A new host veth number, never handed out before in this work_dir. */
  nextVethNumber(): number {
    const c = this.readCounters();
    const n = c.veth;
    c.veth++;
    this.writeCounters(c);
    return n;
  }

  readHost(): HostRecord | undefined {
    return readJson<HostRecord>(join(this.workDir, 'host.json'));
  }
  writeHost(rec: HostRecord): void {
    writeJson(join(this.workDir, 'host.json'), rec);
  }
  deleteHost(): void {
    unlinkQuiet(join(this.workDir, 'host.json'));
  }

  /** Every readable record of a directory. */
  private listRecords<T>(dir: string): T[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => readJson<T>(join(dir, f)))
      .filter((r): r is T => r !== undefined);
  }

  listContainers(): ContainerRecord[] {
    return this.listRecords<ContainerRecord>(this.containersDir).sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }
  readContainer(id: string): ContainerRecord | undefined {
    return readJson<ContainerRecord>(join(this.containersDir, `${id}.json`));
  }
  writeContainer(rec: ContainerRecord): void {
    writeRecordInPlace(join(this.containersDir, `${rec.id}.json`), rec, rec.phase === 'creating');
  }
  deleteContainer(id: string): void {
    unlinkQuiet(join(this.containersDir, `${id}.json`));
  }

  listSpares(): SpareRecord[] {
    return this.listRecords<SpareRecord>(this.sparesDir).sort((a, b) => a.seq - b.seq);
  }
  /** The first spare (lowest number) that `pred` accepts, reading no more records than needed. */
  findSpare(pred: (s: SpareRecord) => boolean): SpareRecord | undefined {
    if (!existsSync(this.sparesDir)) return undefined;
    const files = readdirSync(this.sparesDir)
      .filter((f) => /^\d+\.json$/.test(f))
      .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));
    for (const f of files) {
      const s = readJson<SpareRecord>(join(this.sparesDir, f));
      if (s && pred(s)) return s;
    }
    return undefined;
  }
  hasSpare(seq: number): boolean {
    return existsSync(join(this.sparesDir, `${seq}.json`));
  }
  writeSpare(rec: SpareRecord): void {
    writeRecordInPlace(join(this.sparesDir, `${rec.seq}.json`), rec, rec.phase === 'making');
  }
  deleteSpare(seq: number): void {
    unlinkQuiet(join(this.sparesDir, `${seq}.json`));
  }

  /**
   * Remove what crashes leave in the work_dir besides records (under the lock, from recover):
   * `*.tmp-<pid>` files of processes that are gone, and records set aside as unreadable
   * (`*.corrupt-<ms>`; recover has removed their objects as orphans by then). Returns the paths.
   */
  sweepLeftovers(): string[] {
    return sweepLeftovers([this.workDir, this.containersDir, this.sparesDir]);
  }
}

/** Container ids: what Mesos, CNI runtimes and people use, and safe as file names. */
export function checkContainerId(id: unknown): string {
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) {
    throw new InvalidContainerIdError(id);
  }
  return id;
}
