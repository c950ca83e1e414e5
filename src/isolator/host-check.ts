/**
 * The host's shared objects checked against the records: the ingress qdiscs on eth0 and lo, the
 * port and mirror tables on them, and every container's port filters in those tables. Anything
 * outside the isolator that deletes lo's ingress qdisc (`tc qdisc del dev lo ingress`, or the
 * rollback of an older version given a host pid) takes every container's loopback steering with
 * it; `doctor` reports such damage and `recover` repairs it.
 */
import type { NetlinkSession } from '../netlink/index.js';
import { parseU32Handle } from '../tc/index.js';
import type { HostFacts } from './host.js';
import { sharedLayout } from './host-setup.js';
import type { U32Dump } from './filter-dump.js';
import { dumpU32 } from './filter-dump.js';
import { INGRESS_HANDLE, isIngressRole, roleDevice } from './plan.js';
import type { ContainerRecord, HostFilterRecord } from './state.js';

type PortTableDev = 'eth0' | 'lo';

export interface HostDamage {
  /** Per device, how many of the shared tables and link filters with a fixed handle are missing, of how many. */
  shared: Record<PortTableDev, { missing: number; of: number }>;
  /** Containers' port filters missing from the tables. */
  filters: Array<{ id: string; vethIndex: number; filter: HostFilterRecord & { dev: 'eth0' | 'lo' | 'eth0Icmp' | 'loIcmp' } }>;
  /** What was read (reused for the orphan sweep). */
  dumps: Record<PortTableDev, U32Dump>;
}

/** Read eth0's and lo's ingress filters and compare them with the shared layout and the records. */
export async function inspectHost(session: NetlinkSession, h: HostFacts, records: Iterable<ContainerRecord>): Promise<HostDamage> {
  const dumps = { eth0: await dumpU32(session, h.eth0.index, INGRESS_HANDLE), lo: await dumpU32(session, h.lo.index, INGRESS_HANDLE) };
  const handles = { eth0: new Set(dumps.eth0.filters.map((f) => f.handle)), lo: new Set(dumps.lo.filters.map((f) => f.handle)) };
  const shared = { eth0: { missing: 0, of: 0 }, lo: { missing: 0, of: 0 } };
  for (const s of sharedLayout(h)) {
    // (The links into the top tables get kernel-chosen handles: the tables they lead to stand for them.)
    if (s.handle === undefined) continue;
    const dev: PortTableDev = s.ifindex === h.eth0.index ? 'eth0' : 'lo';
    const handle = parseU32Handle(s.handle);
    const present = s.divisor !== undefined ? dumps[dev].tables.has(handle) : handles[dev].has(handle);
    shared[dev].of++;
    if (!present) shared[dev].missing++;
  }
  const filters: HostDamage['filters'] = [];
  for (const r of records) {
    if (r.phase !== 'ready') continue; // the others are being finished or undone
    for (const f of r.hostFilters) {
      const dev = f.dev;
      if (isIngressRole(dev) && !handles[roleDevice(dev)].has(f.handle)) filters.push({ id: r.id, vethIndex: r.vethIndex, filter: { ...f, dev } });
    }
  }
  return { shared, filters, dumps };
}

/** One line per problem, for doctor and recover's report. */
export function describeDamage(d: HostDamage, h: HostFacts): string[] {
  const out: string[] = [];
  for (const dev of ['eth0', 'lo'] as const) {
    const s = d.shared[dev];
    if (s.missing)
      out.push(
        `${h[dev].name}: ${s.missing} of the ${s.of} shared tables and filters are missing${s.missing === s.of ? ' (its ingress qdisc was removed?)' : ''}`,
      );
  }
  const byContainer = new Map<string, number>();
  for (const f of d.filters) byContainer.set(f.id, (byContainer.get(f.id) ?? 0) + 1);
  for (const [id, n] of byContainer) out.push(`container ${id}: ${n} of its host port filters are missing`);
  return out;
}
