/**
 * The in-memory view of every container record: the ports each holds, the ephemeral blocks, the
 * u32 nodes of the host's port tables, mirror slots and egress flow ids. Rebuilt from the state
 * store when another process changed it.
 */
import { EphemeralPortsAllocator } from './allocator.js';
import type { IsolatorConfig } from './config.js';
import { NoFreeFlowError } from './errors.js';
import type { HostFilterRole, HostNodes } from './plan.js';
import { FLOW, MIRRORS_PER_FILTER, hostNodes } from './plan.js';
import { PortSet } from './port-set.js';
import type { ContainerRecord } from './state.js';

type PortRanges = ReadonlyArray<readonly [number, number]>;

/** How many of `ranges` (inclusive) hold `port`. */
function holding(ranges: PortRanges | undefined, port: number): number {
  let n = 0;
  if (ranges) for (const [b, e] of ranges) if (b <= port && port <= e) n++;
  return n;
}

/** In-memory view of every record, rebuilt when another process changed the state. */
export class Registry {
  records = new Map<string, ContainerRecord>();
  allocator!: EphemeralPortsAllocator;
  /** The u32 nodes the records use in the host's tables. */
  nodes: HostNodes = hostNodes();
  /** The record ids of each mirror chunk (a chunk's rewrite lists its veths without a walk over every record). */
  private chunks = new Map<number, Set<string>>();
  /** How many records hold each port (as ports or pending ports): clashes() without a walk over every record. */
  private holders = new Uint16Array(65536);
  generation = '';

  constructor(private readonly config: IsolatorConfig) {
    this.reset([]);
  }

  reset(records: ContainerRecord[]): void {
    this.records = new Map(records.map((r) => [r.id, r]));
    this.allocator = new EphemeralPortsAllocator(this.config.ephemeralPorts, this.config.ephemeralPortsPerContainer);
    this.nodes = hostNodes();
    this.chunks = new Map();
    this.holders.fill(0);
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

  /** A new record and what it uses. */
  add(r: ContainerRecord): void {
    this.records.set(r.id, r);
    this.index(r);
  }
  /** A record gone, and what it used given back. */
  remove(r: ContainerRecord): void {
    this.unindex(r);
    this.records.delete(r.id);
  }

  index(r: ContainerRecord): void {
    const chunk = Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER);
    let members = this.chunks.get(chunk);
    if (!members) this.chunks.set(chunk, (members = new Set()));
    members.add(r.id);
    this.countPorts(r, 1);
    this.allocator.reserve(r.ephemeralPorts.begin, r.ephemeralPorts.end);
    for (const f of [...r.hostFilters, ...(r.pendingFilters ?? [])]) this.useNode(f.dev, f.handle, true);
  }
  unindex(r: ContainerRecord): void {
    const chunk = Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER);
    const members = this.chunks.get(chunk);
    members?.delete(r.id);
    if (members?.size === 0) this.chunks.delete(chunk);
    this.countPorts(r, -1);
    this.allocator.release(r.ephemeralPorts.begin, r.ephemeralPorts.end);
    for (const f of [...r.hostFilters, ...(r.pendingFilters ?? [])]) this.useNode(f.dev, f.handle, false);
  }
  private countPorts(r: ContainerRecord, delta: 1 | -1): void {
    for (const list of [r.ports, r.pendingPorts ?? []]) for (const [b, e] of list) for (let p = b; p <= e; p++) this.holders[p]! += delta;
  }
  /** Give a record (in the registry) new ports and pending ports (update), keeping the index of who holds which port right. */
  setPorts(r: ContainerRecord, ports: Array<[number, number]>, pending: Array<[number, number]> | undefined): void {
    const indexed = this.records.get(r.id) === r;
    if (indexed) this.countPorts(r, -1);
    r.ports = ports;
    if (pending) r.pendingPorts = pending;
    else delete r.pendingPorts;
    if (indexed) this.countPorts(r, 1);
  }
  private useNode(dev: HostFilterRole, handle: number, used: boolean): void {
    if (used) this.nodes[dev].reserve({ ht: handle }, handle);
    else this.nodes[dev].release({ ht: handle }, handle);
  }
  /** A filter's u32 node is free again (its filter was removed). */
  releaseNode(f: { dev: HostFilterRole; handle: number }): void {
    this.useNode(f.dev, f.handle, false);
  }

  /**
   * The ports of `ports` that other containers hold (as ports or pending ports), looked up port by
   * port in the index: the cost does not grow with the number of containers (a walk over every
   * record took 0.1 ms at a thousand).
   */
  clashes(ports: PortSet, except?: string): PortSet {
    if (ports.isEmpty) return PortSet.EMPTY;
    const own = except === undefined ? undefined : this.records.get(except);
    const hit: Array<[number, number]> = [];
    for (const [b, e] of ports.ranges) {
      for (let p = b; p <= e; p++) {
        let n = this.holders[p]!;
        if (n && own) n -= holding(own.ports, p) + holding(own.pendingPorts, p);
        if (n <= 0) continue;
        const last = hit[hit.length - 1];
        if (last && last[1] === p - 1) last[1] = p;
        else hit.push([p, p]);
      }
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
    return [...(this.chunks.get(chunk) ?? [])]
      .map((id) => this.records.get(id))
      .filter(
        (r): r is ContainerRecord =>
          r !== undefined &&
          Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER) === chunk &&
          r.id !== without &&
          (r.phase === 'ready' || r.phase === 'updating' || r.id === include),
      )
      .sort((a, b) => a.mirrorSlot - b.mirrorSlot)
      .map((r) => r.vethIndex);
  }

  /** The lowest free fq_codel flow for a new container (Mesos §5.4), or an error when none is left. */
  freeFlowId(): number {
    const used = new Set([...this.records.values()].map((r) => r.flowId));
    for (let id = FLOW.MIN_CONTAINER; id <= FLOW.MAX_CONTAINER; id++) if (!used.has(id)) return id;
    throw new NoFreeFlowError(FLOW.MIN_CONTAINER, FLOW.MAX_CONTAINER);
  }
}
