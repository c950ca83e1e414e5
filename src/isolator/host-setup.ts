/**
 * Host-wide setup (Mesos §2.5), done once per host and recorded in host.json so that `cleanup`
 * can undo it: lo's MAC and MTU set to eth0's, ingress qdiscs on eth0 and lo, the sysctls that
 * make hairpinned host-IP traffic acceptable, and the shared tc layout (port hash tables on eth0
 * and lo, ARP and ICMP mirror tables on eth0).
 */
import type { NetlinkSession, Request } from '../netlink/index.js';
import { NetlinkError, Netns } from '../netlink/index.js';
import { linkRequests, readSysctl, writeSysctl } from '../rtnl/index.js';
import { Tc, filterRequest, formatTcHandle, parseU32Handle, qdiscRequest } from '../tc/index.js';
import type { FilterRef, U32FilterSpec } from '../tc/index.js';
import type { HostFacts } from './host.js';
import type { HostView, TcContext } from './plan.js';
import type { PortRange } from './plan.js';
import {
  DROP_FILTER_HANDLE,
  PRIO,
  flowSharedPlan,
  icmpTablePlan,
  ip6SharedLayout,
  mirrorTablePlan,
  portTablePlan,
  tcObjectRequest,
  unheldPortsDropPlan,
} from './plan.js';
import type { HostRecord } from './state.js';
import { hostPairRemovals } from './host-pairs.js';

/** The shared layout this version builds (recorded in host.json; see plan.ts for the port tables). */
export const SHARED_LAYOUT = 'data-path-v2: two-level port tables, ICMP error tables, reply-only mirrors, drops';

export const hostView = (h: HostFacts): HostView => ({
  ip: h.ip,
  mac: h.eth0.address,
  eth0: h.eth0.index,
  lo: h.lo.index,
  ...(h.ipv6 ? { ip6: h.ipv6.addresses.map((a) => a.address) } : {}),
});

/** The layout of this host as recorded in host.json: this version's, and the IPv6 addresses its links name. */
export const sharedLayoutKey = (h: HostFacts): string =>
  h.ipv6 ? `${SHARED_LAYOUT}; ipv6 ${h.ipv6.addresses.map((a) => a.address).join(',')}` : SHARED_LAYOUT;

/** Sysctls the isolator sets on the host, with the value it sets (Mesos §2.5 step 6–7). */
export function hostSysctls(h: HostFacts): Array<[string[], string]> {
  const lo = h.lo.name;
  return [
    [['net', 'ipv4', 'conf', lo, 'route_localnet'], '1'],
    [['net', 'ipv4', 'conf', 'all', 'rp_filter'], '0'],
    [['net', 'ipv4', 'conf', lo, 'rp_filter'], '0'],
    [['net', 'ipv4', 'conf', 'all', 'send_redirects'], '0'],
    [['net', 'ipv4', 'conf', lo, 'send_redirects'], '0'],
    [['net', 'ipv4', 'conf', lo, 'accept_local'], '1'],
  ];
}

/** The shared tc objects of the host (all u32 filters), in creation order. */
export function sharedLayout(h: HostFacts): U32FilterSpec[] {
  const v = hostView(h);
  return [
    ...portTablePlan(v, 'eth0'),
    ...portTablePlan(v, 'lo'),
    ...mirrorTablePlan(v, 'arp'),
    ...icmpTablePlan(v, 'eth0'),
    ...icmpTablePlan(v, 'lo'),
    ...ip6SharedLayout(v),
  ];
}

/**
 * The drop of packets to managed ports no container holds, on eth0 (after the port tables). Put
 * (replaced) by each process that first creates a container, since it depends on the managed
 * ports of its configuration, and by recover; a kernel without the bpf classifier is told early.
 */
export async function putUnheldPortsDrop(session: NetlinkSession, h: HostFacts, managed: readonly PortRange[]): Promise<void> {
  try {
    await session.request(filterRequest('replace', unheldPortsDropPlan(hostView(h), managed)));
  } catch (e) {
    if (e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'EOPNOTSUPP'))
      throw new Error(`this kernel has no bpf classifier (CONFIG_NET_CLS_BPF), which the data path's drops need: ${e.message}`);
    throw e;
  }
}

/** Which filters of a device's parent and priority: all of them (deleting them all removes the tables too). */
const wholePriority = (s: U32FilterSpec): FilterRef => ({
  kind: 'u32',
  ifindex: s.ifindex,
  parent: s.parent,
  priority: s.priority,
  protocol: s.protocol ?? 'ip',
});

async function ensureIngress(session: NetlinkSession, index: number, ctx: TcContext): Promise<boolean> {
  try {
    await session.request(qdiscRequest('add', { kind: 'ingress', ifindex: index }, ctx));
    return true;
  } catch (e) {
    if (e instanceof NetlinkError && e.code === 'EEXIST') return false;
    throw e;
  }
}

/**
 * An ingress qdisc on eth0 or lo, recorded as ours *before* it is made when none is there, so that
 * a crash right after the kernel made it leaves a record `cleanup` undoes (deleting one that was
 * never made is a no-op). One found there stays unrecorded: it is not ours to remove.
 */
async function ensureIngressRecorded(
  session: NetlinkSession,
  h: HostFacts,
  dev: 'eth0' | 'lo',
  rec: HostRecord,
  ctx: TcContext,
  save: (rec: HostRecord) => void,
): Promise<void> {
  const index = h[dev].index;
  if (await new Tc(session).getQdisc({ ifindex: index, parent: 'ingress' })) return;
  const wasRecorded = rec.createdIngress.includes(dev);
  if (!wasRecorded) {
    rec.createdIngress.push(dev);
    save(rec);
  }
  if (!(await ensureIngress(session, index, ctx)) && !wasRecorded) {
    // Another tool made one in between: it is theirs.
    rec.createdIngress = rec.createdIngress.filter((d) => d !== dev);
    save(rec);
  }
}

/**
 * Apply the host-wide setup and return its record. What the host looked like is recorded (by
 * `save`) before anything changes, and each change is recorded as it is made, so a crash in the
 * middle leaves a record `cleanup` can undo. A `previous` unfinished record keeps its captured
 * "before" values (the host may already show our changes). On failure, undo and rethrow.
 */
export async function setUpHost(
  session: NetlinkSession,
  h: HostFacts,
  ctx: TcContext,
  flows: { parent: number; qdisc: number } | undefined,
  save: (rec: HostRecord) => void,
  previous?: HostRecord,
): Promise<HostRecord> {
  const ns = h.netns ?? Netns.current();
  const rec: HostRecord = {
    netnsInode: ns.inode,
    complete: false,
    createdIngress: [...(previous?.createdIngress ?? [])],
    sysctls: { ...(previous?.sysctls ?? {}) },
    lo: previous?.lo ?? { address: h.lo.address, mtu: h.lo.mtu },
    shared: {},
    ...(previous?.flows ? { flows: previous.flows } : {}),
  };
  for (const [key] of hostSysctls(h)) rec.sysctls[key.join('/')] ??= readSysctl(ns, key);
  save(rec);
  try {
    if (h.lo.address !== h.eth0.address || h.lo.mtu !== h.eth0.mtu) {
      await session.request(linkRequests.set(h.lo.index, { address: h.eth0.address, mtu: h.eth0.mtu }));
    }
    for (const dev of ['eth0', 'lo'] as const) await ensureIngressRecorded(session, h, dev, rec, ctx, save);
    for (const [key, value] of hostSysctls(h)) if (readSysctl(ns, key) !== value) writeSysctl(ns, key, value);
    const results = await session.batch(sharedLayout(h).map((s) => filterRequest('add', s)));
    // Already there (a host record lost while the objects stayed) is fine.
    const failed = results.find((r) => !r.ok && !(r.error instanceof NetlinkError && r.error.code === 'EEXIST'));
    if (failed && !failed.ok) throw failed.error;
    rec.shared = { layout: sharedLayoutKey(h) };
    if (h.ipv6) rec.ipv6 = { addresses: h.ipv6.addresses, ...(h.ipv6.gateway ? { gateway: h.ipv6.gateway } : {}) };
    if (flows) await setUpFlows(session, h, ctx, flows, rec, save);
    rec.complete = true;
    save(rec);
    return rec;
  } catch (e) {
    await tearDownHost(session, h, rec, ctx).catch(() => undefined);
    throw e;
  }
}

/** The unique-flows fq_codel on eth0 and its classifiers (--egress_unique_flow_per_container), recorded as they are made. */
async function setUpFlows(
  session: NetlinkSession,
  h: HostFacts,
  ctx: TcContext,
  flows: { parent: number; qdisc: number },
  rec: HostRecord,
  save: (rec: HostRecord) => void,
): Promise<void> {
  // An fq_codel already at that parent is reused (Mesos does the same); anything else there is an error.
  const [qdisc, ...classifiers] = flowSharedPlan(hostView(h), flows.parent, flows.qdisc);
  let created = rec.flows?.created ?? false;
  try {
    // Recorded as ours before it is made (as the ingress qdiscs are), unless one is there.
    if (!created && !(await new Tc(session).getQdisc({ ifindex: h.eth0.index, parent: flows.parent }))) {
      rec.flows = { ...flows, created: true };
      save(rec);
    }
    await session.request(tcObjectRequest(qdisc!, 'add', ctx));
    created = true;
  } catch (e) {
    if (!(e instanceof NetlinkError && e.code === 'EEXIST')) throw e;
    rec.flows = { ...flows, created }; // (not ours after all: someone made one in between)
    // Reuse only an fq_codel with our handle there: never hang classifiers on another qdisc.
    const there = await new Tc(session).getQdisc({ ifindex: h.eth0.index, parent: flows.parent });
    if (there?.kind !== 'fq_codel' || there.handle !== flows.qdisc) {
      const what = there ? `${there.kind} ${formatTcHandle(there.handle)}` : e.message;
      throw new Error(
        `Egress qdisc already exists on ${h.eth0.name} at ${formatTcHandle(flows.parent)} (${what}), and unique flows need fq_codel ${formatTcHandle(flows.qdisc)} there`,
      );
    }
  }
  rec.flows = { ...flows, created };
  save(rec);
  const r = await session.batch(classifiers.map((o) => tcObjectRequest(o, 'add', ctx)));
  const bad = r.find((x) => !x.ok && !(x.error instanceof NetlinkError && x.error.code === 'EEXIST'));
  if (bad && !bad.ok) throw new Error(`Egress qdisc already exists on ${h.eth0.name}, or its flow classifiers cannot be added: ${bad.error.message}`);
}

/**
 * Put back what is missing of the shared layout (after something outside the isolator removed an
 * ingress qdisc or a table) without touching what is there: the ingress qdiscs (recorded as ours
 * when made now, so that `cleanup` removes them) and every shared table and link. Unlike
 * setUpHost, a failure undoes nothing: the containers' filters hang on these objects.
 */
export async function repairSharedLayout(
  session: NetlinkSession,
  h: HostFacts,
  rec: HostRecord,
  ctx: TcContext,
  save: (rec: HostRecord) => void,
  /** The hash tables found on each device: a link into one of them is there too (the kernel refuses to delete a table still linked to). */
  tablesThere: Record<'eth0' | 'lo', Set<number>>,
): Promise<Error[]> {
  const errors: Error[] = [];
  for (const dev of ['eth0', 'lo'] as const) await ensureIngressRecorded(session, h, dev, rec, ctx, save).catch((e: Error) => errors.push(e));
  // A link without a fixed handle would be added twice; the others answer EEXIST when present.
  const missing = sharedLayout(h).filter(
    (s) => !(s.handle === undefined && s.link !== undefined && tablesThere[s.ifindex === h.eth0.index ? 'eth0' : 'lo'].has(parseU32Handle(s.link))),
  );
  for (const r of await session.batch(missing.map((s) => filterRequest('add', s)))) {
    if (!r.ok && !(r.error instanceof NetlinkError && r.error.code === 'EEXIST')) errors.push(r.error);
  }
  return errors;
}

/**
 * Undo the host-wide setup: remove the shared filters (by priority), the ingress qdiscs we
 * created (which takes every filter with them), restore sysctls and lo. Continues past errors
 * and returns them.
 */
export async function tearDownHost(session: NetlinkSession, h: HostFacts, rec: HostRecord, ctx: TcContext): Promise<Error[]> {
  const errors: Error[] = [];
  const ns = h.netns ?? Netns.current();
  const reqs: Request[] = [];
  // Deleting a whole priority removes its tables and filters. IPv6's priorities go whatever the
  // facts say now (the layout may have been set up for IPv6 that is off or gone since).
  const v6 = ip6SharedLayout({ ...hostView(h), ip6: ['::'] });
  for (const s of [...sharedLayout(h), ...(h.ipv6 ? [] : v6)]) {
    if (s.divisor === undefined) continue;
    if ((s.ifindex === h.eth0.index && rec.createdIngress.includes('eth0')) || (s.ifindex === h.lo.index && rec.createdIngress.includes('lo'))) continue;
    reqs.push(filterRequest('delete', wholePriority(s)));
  }
  if (rec.flows) {
    if (rec.flows.created) {
      reqs.push(qdiscRequest('delete', { kind: 'fq_codel', ifindex: h.eth0.index, parent: rec.flows.parent, handle: rec.flows.qdisc }, ctx));
    } else {
      // Every priority of the classifiers, once (deleting one removes its links and tables too).
      const prios = new Map<string, U32FilterSpec>();
      for (const o of flowSharedPlan({ ...hostView(h), ip6: ['::'] }, rec.flows.parent, rec.flows.qdisc)) {
        if (o.type === 'filter') prios.set(`${o.spec.priority} ${o.spec.protocol}`, o.spec);
      }
      for (const spec of prios.values()) reqs.push(filterRequest('delete', wholePriority(spec)));
    }
  }
  if (!rec.createdIngress.includes('eth0'))
    reqs.push(
      filterRequest('delete', { kind: 'bpf', ifindex: h.eth0.index, parent: 'ffff:', priority: PRIO.DROP, protocol: 'all', handle: DROP_FILTER_HANDLE }),
    );
  for (const dev of rec.createdIngress) reqs.push(qdiscRequest('delete', { kind: 'ingress', ifindex: h[dev].index }, ctx));
  // The host's pairs (deleting one end takes the other, and every object on them).
  reqs.push(...hostPairRemovals(rec));
  for (const r of await session.batch(reqs)) {
    if (!r.ok && !(r.error instanceof NetlinkError && ['ENOENT', 'EINVAL', 'ENODEV'].includes(r.error.code))) errors.push(r.error);
  }
  for (const [key, old] of Object.entries(rec.sysctls)) {
    try {
      writeSysctl(ns, key.split('/'), old);
    } catch (e) {
      errors.push(e as Error);
    }
  }
  if (rec.lo && (rec.lo.address !== h.eth0.address || rec.lo.mtu !== h.eth0.mtu)) {
    // The kernel refuses an all-zero MAC (lo's usual one), so that one stays: it is harmless.
    const zero = /^(00:)*00$/.test(rec.lo.address);
    try {
      await session.request(linkRequests.set(h.lo.index, { ...(zero ? {} : { address: rec.lo.address }), mtu: rec.lo.mtu }));
    } catch (e) {
      errors.push(e as Error);
    }
  }
  return errors;
}
