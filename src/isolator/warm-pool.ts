/**
 * The warm pool: spares made ahead of time — a network namespace with its veth pair and
 * everything of a container that does not depend on its ports — so that a create only adds its
 * ports' filters, shaping and ephemeral block. Spares are recorded in the work_dir (see
 * SpareRecord); the process that made one also keeps its namespace, a netlink socket there and its
 * ip_local_port_range open, so the create that takes it switches no namespace.
 */
import type { NetlinkSession } from '../netlink/index.js';
import { NetlinkError, NetlinkSession as Session, Netns, createNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES, SysctlFile, linkRequests } from '../rtnl/index.js';
import { firstFailure } from './batch.js';
import { spareContainerRequests, writeContainerSysctlsHere } from './container-setup.js';
import type { EngineCore } from './engine-core.js';
import { hostView } from './host-setup.js';
import { tcObjectRequest, vethBaseFilters } from './plan.js';
import { VETH_INDEX_BASE, VETH_PREFIX } from './records.js';
import type { SpareRecord } from './state.js';

/** What a warm-pool spare holds besides its links (SpareRecord.contents). */
// v2: data path v2's veth filters (source address checked, the drop) and the gateway neighbour.
const SPARE_CONTENTS = 'links+tc+rules-v4';

/** What this process keeps open for a spare it made, so the create that takes it switches no namespace. */
export interface SpareHandles {
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

/** What drain() did: the spares removed and left (by host veth name), and what went wrong. */
export interface DrainReport {
  removed: string[];
  left: string[];
  errors: string[];
}

export class WarmPool {
  /** What stays open for the spares this process made, in the order they were made. */
  private readonly handles = new Map<number, SpareHandles>();
  /** The refill, while it runs. */
  private refilling: Promise<void> | undefined;
  private closing = false;
  /** Set by cleanup(): no spare is made again until the next create. */
  private paused = false;

  constructor(
    private readonly core: EngineCore,
    /** Spares to keep ready (IsolatorOptions.warmPool). */
    private readonly size: number,
  ) {}

  /** What a spare must have been made for: the host's addressing and the devices its filters point at. */
  private hostKey(): string {
    const h = this.core.host;
    const v6 = h.ipv6 ? ` ipv6 ${h.ipv6.addresses.map((a) => `${a.address}/${a.prefixlen}`).join(',')} via ${h.ipv6.gateway ?? '-'}` : '';
    return `${h.ip}/${h.prefixlen} via ${h.gateway ?? '-'} eth0 ${h.eth0.index} lo ${h.lo.index}${v6}`;
  }

  fits(s: SpareRecord, ifname: string): boolean {
    const h = this.core.host;
    return (
      s.phase === 'ready' &&
      s.contents === SPARE_CONTENTS &&
      s.hostKey === this.hostKey() &&
      s.ifname === ifname &&
      s.address === h.eth0.address &&
      s.mtu === h.eth0.mtu
    );
  }

  /** A ready spare that fits the host as it is now: one this process made first, else one on disk. */
  ready(ifname: string): SpareRecord | undefined {
    if (!this.size) return undefined;
    // Another process with a pool on this work_dir may have taken one: its record is gone then.
    this.pruneHandles();
    for (const held of this.handles.values()) if (this.fits(held.record, ifname)) return held.record;
    return this.core.store.findSpare((s) => this.fits(s, ifname));
  }

  /** Forget a spare (the container's record owns its objects from now on); its open handles, if this process made it. */
  take(spare: SpareRecord): SpareHandles | undefined {
    this.core.store.deleteSpare(spare.seq);
    const held = this.handles.get(spare.seq);
    this.handles.delete(spare.seq);
    return held;
  }

  /** Let go of what this process holds for spares another process took or removed (their namespaces live on while held). */
  pruneHandles(): void {
    for (const [seq, held] of this.handles) {
      if (this.core.store.hasSpare(seq)) continue;
      this.handles.delete(seq);
      closeSpareHandles(held);
    }
  }

  /**
   * Remove a spare entirely: its veth pair, its pin, its record. The record stays when the veth
   * could not be deleted (e.g. the session was closed under a timed-out drain): it names the
   * veth for the next recover() to remove.
   */
  async drop(spare: SpareRecord, taken?: SpareHandles): Promise<Error[]> {
    const errors: Error[] = [];
    const held = taken ?? this.handles.get(spare.seq);
    this.handles.delete(spare.seq);
    if (held) closeSpareHandles(held);
    let vethLeft = false;
    try {
      await this.core.session.request(linkRequests.delete(spare.vethIndex), { offload: true });
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) errors.push(e as Error);
      vethLeft = !(e instanceof NetlinkError && e.code === 'ENODEV');
    }
    try {
      removeNetns(spare.netns);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') errors.push(e as Error);
    }
    if (!vethLeft) this.core.store.deleteSpare(spare.seq);
    return errors;
  }

  /**
   * Make one spare (under the lock): recorded 'making' before anything exists, so recover()
   * removes a half-made one; 'ready' once everything a container has that does not depend on its
   * ports exists — the namespace, the veth pair (both ends up, the host end's IPv6 off) with the
   * veth's ingress qdisc and ICMP/ARP filters, the container's lo, eth0, address, default route,
   * IPv6 off, and the "to itself" routing rules that do not name a port (plan-self.ts). Its
   * namespace, a netlink socket there and its ip_local_port_range stay open for the create that
   * takes it.
   */
  private async make(): Promise<void> {
    const sp = this.newRecord();
    this.core.store.writeSpare(sp);
    const open: Partial<Omit<SpareHandles, 'record'>> = {};
    try {
      open.ns = createNetns(sp.netns);
      await this.makeHostSide(sp, open.ns);
      await this.makeContainerSide(sp, open.ns, open);
      sp.phase = 'ready';
      this.core.store.writeSpare(sp);
      this.handles.set(sp.seq, { record: sp, ns: open.ns, session: open.session!, portRange: open.portRange! });
    } catch (e) {
      closeSpareHandles(open);
      await this.drop(sp);
      throw e;
    }
  }

  private newRecord(): SpareRecord {
    const h = this.core.host;
    const seq = this.core.store.nextVethNumber();
    return {
      seq,
      phase: 'making',
      netns: this.core.store.netnsPath(`.spare-${seq}`),
      veth: `${VETH_PREFIX}${seq}`,
      vethIndex: VETH_INDEX_BASE + seq,
      ifname: h.eth0.name,
      address: h.eth0.address,
      mtu: h.eth0.mtu,
      contents: SPARE_CONTENTS,
      hostKey: this.hostKey(),
      createdAt: new Date().toISOString(),
    };
  }

  /** The veth pair, up, with the veth's filters that name no port; the host end's IPv6 off. */
  private async makeHostSide(sp: SpareRecord, ns: Netns): Promise<void> {
    const core = this.core;
    const hostReqs = [
      core.vethRequest(sp, ns),
      ...vethBaseFilters(hostView(core.host), { veth: sp.vethIndex }).map((o) => tcObjectRequest(o, 'add', core.ctx)),
      linkRequests.set(sp.vethIndex, { up: true }),
    ];
    const hostErr = firstFailure(await core.session.batch(hostReqs));
    if (hostErr) throw hostErr;
    core.disableHostVethIpv6(sp.veth);
  }

  /** In the spare's namespace: its sysctls, then the container-side objects that name no port; the handles it keeps go to `open`. */
  private async makeContainerSide(sp: SpareRecord, ns: Netns, open: Partial<Omit<SpareHandles, 'record'>>): Promise<void> {
    const core = this.core;
    const procRoot = core.containerProc.rootFor(core.registry.records.size + this.handles.size);
    ns.run(() => {
      writeContainerSysctlsHere(undefined, procRoot, core.containerIpv6(sp.ifname));
      open.portRange = SysctlFile.openHere(['net', 'ipv4', 'ip_local_port_range'], procRoot);
      open.session = Session.open({ typeNames: RTM_NAMES });
    });
    const err = firstFailure(await open.session!.batch(spareContainerRequests(core.host, { cLo: 1, cEth0: sp.vethIndex })));
    if (err) throw err;
  }

  /** A create is under way: the pool may fill again (after a cleanup paused it). */
  resume(): void {
    this.paused = false;
  }
  /** Make no spare until the next create (cleanup). */
  pause(): void {
    this.paused = true;
  }

  /** Bring the pool back to its size in the background, one spare per turn of the lock. */
  refill(): void {
    if (!this.size || this.refilling || this.closing || this.paused) return;
    // (Never scheduled from inside a locked operation — cleanup runs recoverLocked, not recover —
    // where its withLock would pass as re-entrant.)
    const p = (async () => {
      // Start on a later turn of the event loop: whoever awaited the create or destroy that
      // scheduled us gets its answer first (and a create it issues at once, the lock).
      await new Promise((r) => setImmediate(r));
      try {
        while (!this.closing && !this.paused) {
          const made = await this.core.store.withLock(async () => {
            this.pruneHandles();
            if (this.closing || this.paused || this.core.store.listSpares().length >= this.size) return false;
            await this.make();
            return true;
          });
          if (!made) break;
          await new Promise((r) => setImmediate(r)); // a create waiting for the lock goes first
        }
      } catch (e) {
        this.core.warnOnce(`warm pool: making a spare failed: ${(e as Error).message}`);
      }
    })();
    this.refilling = p;
    this.core.background.add(p);
    void p.finally(() => {
      this.core.background.delete(p);
      this.refilling = undefined;
    });
  }

  /** The process is closing: the refill stops after the spare it is making. */
  stop(): void {
    this.closing = true;
  }

  /**
   * Remove every spare of the work_dir (an agent shutting down): the refill stops, then, under the
   * lock, spares are removed one by one until `deadlineMs` (a Date.now() time). What could not be
   * removed in time is reported as left; the next recover() or cleanup() removes it.
   */
  async drain(deadlineMs: number): Promise<DrainReport> {
    this.closing = true;
    const report: DrainReport = { removed: [], left: [], errors: [] };
    const remaining = () => Math.max(0, deadlineMs - Date.now());
    const work = (async () => {
      if (this.refilling) await this.refilling; // the spare it is making, then it stops
      await this.core.store.withLock(async () => {
        for (const sp of this.core.store.listSpares()) {
          if (!remaining()) break;
          const errors = await this.drop(sp);
          if (errors.length) report.errors.push(...errors.map((e) => `${sp.veth}: ${e.message}`));
          else report.removed.push(sp.veth);
        }
      }, remaining() || 1);
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<string>((r) => (timer = setTimeout(() => r(`not done in time`), remaining())));
    const outcome = await Promise.race([
      work.then(
        () => undefined,
        (e: Error) => e.message,
      ),
      timedOut,
    ]);
    clearTimeout(timer);
    if (outcome !== undefined) report.errors.push(outcome);
    // (A drop still running past the deadline goes on; whatever it leaves is reported below.)
    report.left = this.core.store.listSpares().map((s) => s.veth);
    return report;
  }

  /** Close what this process holds for its spares (the spares stay, for the next process). */
  closeHandles(): void {
    for (const held of this.handles.values()) closeSpareHandles(held);
    this.handles.clear();
  }
}
