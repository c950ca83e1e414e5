/**
 * Per-container statistics in the shape of Mesos' /monitor/statistics (§6), read in-process:
 * link counters of the host veth (swapped: what the host end receives, the container sent; every
 * container's read at once with one RTM_GETSTATS dump of the host namespace, hostLinkStats),
 * the rate limits in force, the ephemeral block, tc statistics of the shaping qdiscs, and the
 * optional socket summary and SNMP counters of the container's namespace.
 */
import { readFileSync } from 'node:fs';
import type { NetlinkSession } from '../netlink/index.js';
import { NetlinkSession as Session, Netns } from '../netlink/index.js';
import { LinkStatistics, RTM_NAMES } from '../rtnl/index.js';
import type { LinkStats64 } from '../rtnl/index.js';
import { TC_H, Tc, tcHandle } from '../tc/index.js';
import type { TcStats } from '../tc/index.js';
import type { IsolatorConfig } from './config.js';
import { HTB_CLASS, HTB_HANDLE, SHAPER_VIEW, shaperClassOf } from './plan.js';
import type { ContainerRecord } from './state.js';

export interface MesosStatistics {
  executor_id: string;
  source: string;
  container_id: string;
  /** The host's IPv6 addresses the container shares (--ipv6), beside Mesos' fields. */
  ipv6_addresses?: string[];
  statistics: Record<string, unknown> & { timestamp: number };
}

/** One `net_traffic_control_statistics` element without its id (Mesos' field names). */
export interface MesosTcStats {
  backlog: number;
  bytes: number;
  drops: number;
  overlimits: number;
  packets: number;
  qlen: number;
  ratebps: number;
  ratepps: number;
  requeues: number;
}

/** The Mesos view of tc statistics (libnl's backlog, bytes, drops, … rate_bps → ratebps). */
export function toMesosStats(s: TcStats): MesosTcStats {
  return {
    backlog: s.backlogBytes,
    bytes: Number(s.bytes),
    drops: s.drops,
    overlimits: s.overlimits,
    packets: Number(s.packets),
    qlen: s.qlen,
    ratebps: Number(s.rateBytesPerSec),
    ratepps: Number(s.ratePacketsPerSec),
    requeues: s.requeues,
  };
}

export type TcStatisticsEntry = { id: string } & MesosTcStats;

/** A qdisc's kind, handle, parent and Mesos-view statistics. */
export interface QdiscStatsRow {
  kind: string;
  handle: number;
  parent: number;
  stats: MesosTcStats | undefined;
}

/** Qdiscs of one device. */
async function qdiscStats(s: NetlinkSession, ifindex: number): Promise<QdiscStatsRow[]> {
  return (await hostQdiscStats(s)).get(ifindex) ?? [];
}

/** Every qdisc of a namespace by device, from one dump (the kernel dumps them all even for one device). */
export async function hostQdiscStats(s: NetlinkSession): Promise<Map<number, QdiscStatsRow[]>> {
  const out = new Map<number, QdiscStatsRow[]>();
  for (const q of await new Tc(s).listQdiscs()) {
    let rows = out.get(q.ifindex);
    if (!rows) out.set(q.ifindex, (rows = []));
    rows.push({ kind: q.kind, handle: q.handle, parent: q.parent, stats: q.stats ? toMesosStats(q.stats) : undefined });
  }
  return out;
}

/** Packets the drop filter on a device's ingress dropped (its ingress qdisc's drops; 0 without one). */
export function ingressDrops(rows: readonly QdiscStatsRow[] | undefined): number {
  return rows?.find((q) => q.kind === 'ingress' && q.parent === TC_H.INGRESS)?.stats?.drops ?? 0;
}

/** The bw_limit / bloat_reduction pair of one shaped device (Mesos §5.5). */
function shapingEntries(qdiscs: Awaited<ReturnType<typeof qdiscStats>>, prefix: '' | 'ingress_'): TcStatisticsEntry[] {
  const out: TcStatisticsEntry[] = [];
  const htb = qdiscs.find((q) => q.kind === 'htb' && q.parent === TC_H.ROOT && q.handle === HTB_HANDLE);
  if (htb?.stats) out.push({ id: `${prefix}bw_limit`, ...htb.stats });
  const fq = qdiscs.find((q) => q.kind === 'fq_codel' && q.parent === HTB_CLASS);
  if (fq?.stats) out.push({ id: `${prefix}bloat_reduction`, ...fq.stats });
  return out;
}

/** `TCP: inuse 3 orphan 0 tw 1 alloc 5 mem 1` → active (in use) and time-wait counts. */
export function parseSockstat(text: string): { active: number; timeWait: number } | undefined {
  const line = text.split('\n').find((l) => l.startsWith('TCP:'));
  if (!line) return undefined;
  const t = line.split(/\s+/);
  const at = (k: string) => Number(t[t.indexOf(k) + 1]);
  return { active: at('inuse'), timeWait: at('tw') };
}

/** /proc/net/snmp's pairs of lines into {ip_stats, icmp_stats, tcp_stats, udp_stats}. */
export function parseSnmp(text: string): Record<string, Record<string, number>> {
  const lines = text.split('\n').filter(Boolean);
  const out: Record<string, Record<string, number>> = {};
  const names: Record<string, string> = { Ip: 'ip_stats', Icmp: 'icmp_stats', Tcp: 'tcp_stats', Udp: 'udp_stats' };
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [proto, keys] = lines[i]!.split(':');
    const [, values] = lines[i + 1]!.split(':');
    const name = names[proto!.trim()];
    if (!name || keys === undefined || values === undefined) continue;
    const ks = keys.trim().split(/\s+/);
    const vs = values.trim().split(/\s+/).map(Number);
    out[name] = Object.fromEntries(ks.map((k, j) => [k, vs[j]!]));
  }
  return out;
}

export interface StatisticsContext {
  host: NetlinkSession;
  config: IsolatorConfig;
  fqCodel: boolean;
  /** The host's link counters by ifindex (hostLinkStats); a veth missing here is read on its own. */
  linkStats?: ReadonlyMap<number, LinkStats64> | undefined;
  /** The host's qdiscs by ifindex (hostQdiscStats), read once for every container. */
  qdiscs: ReadonlyMap<number, QdiscStatsRow[]>;
  /** The shaper's HTB classes by minor (shaperClassStats), when a container is shaped on the host. */
  shaperClasses?: ReadonlyMap<number, MesosTcStats>;
}

/** The shaper's classes' statistics by class minor; undefined without a shaper. */
export async function shaperClassStats(host: NetlinkSession): Promise<Map<number, MesosTcStats> | undefined> {
  try {
    const out = new Map<number, MesosTcStats>();
    for (const c of await new Tc(host).listClasses(SHAPER_VIEW.tx)) if (c.stats) out.set(c.classid & 0xffff, toMesosStats(c.stats));
    return out;
  } catch {
    return undefined;
  }
}

/** bw_limit and bloat_reduction of a container shaped on the host: its class on the shaper and that class's fq_codel leaf. */
function hostShapingEntries(minor: number, ctx: StatisticsContext): TcStatisticsEntry[] {
  const out: TcStatisticsEntry[] = [];
  const cls = ctx.shaperClasses?.get(minor);
  if (cls) out.push({ id: 'bw_limit', ...cls });
  const fq = ctx.qdiscs.get(SHAPER_VIEW.tx)?.find((q) => q.kind === 'fq_codel' && q.parent === tcHandle(1, minor));
  if (fq?.stats) out.push({ id: 'bloat_reduction', ...fq.stats });
  return out;
}

/**
 * Every host link's counters, for `containers` containers' veths: one RTM_GETSTATS dump (232
 * bytes a link) instead of an RTM_GETLINK per container (~1.5 KB a link, nearly all of it decoded
 * for nothing). Undefined for a single container (one get is cheaper than a dump of every link)
 * and when the dump fails (an interrupted one included): each veth is then read on its own.
 */
export async function hostLinkStats(host: NetlinkSession, containers: number): Promise<Map<number, LinkStats64> | undefined> {
  if (containers < 2) return undefined;
  return new LinkStatistics(host).list().catch(() => undefined);
}

/** The host veth's counters: from the dump when it has them, else one RTM_GETSTATS (undefined: no such link). */
async function vethStats(r: ContainerRecord, ctx: StatisticsContext): Promise<LinkStats64 | undefined> {
  return ctx.linkStats?.get(r.vethIndex) ?? new LinkStatistics(ctx.host).find(r.vethIndex);
}

export async function containerStatistics(r: ContainerRecord, ctx: StatisticsContext): Promise<MesosStatistics> {
  const st: Record<string, unknown> = { timestamp: Date.now() / 1000 };
  const s = await vethStats(r, ctx);
  if (s) {
    // Swapped: the host end receives what the container sends.
    Object.assign(st, {
      net_rx_packets: Number(s.txPackets),
      net_rx_bytes: Number(s.txBytes),
      net_rx_errors: Number(s.txErrors),
      net_rx_dropped: Number(s.txDropped),
      net_tx_packets: Number(s.rxPackets),
      net_tx_bytes: Number(s.rxBytes),
      net_tx_errors: Number(s.rxErrors),
      net_tx_dropped: Number(s.rxDropped),
    });
  }
  if (r.egress) {
    st.net_tx_rate_limit = r.egress.rateBytesPerSec;
    if (r.egress.ceilBytesPerSec !== undefined) st.net_tx_burst_rate_limit = r.egress.ceilBytesPerSec;
    if (r.egress.ceilBytesPerSec !== undefined && r.egress.burstBytes !== undefined) st.net_tx_burst_size = r.egress.burstBytes;
  }
  if (r.ingress) {
    st.net_rx_rate_limit = r.ingress.rateBytesPerSec;
    if (r.ingress.ceilBytesPerSec !== undefined) st.net_rx_burst_rate_limit = r.ingress.ceilBytesPerSec;
    if (r.ingress.ceilBytesPerSec !== undefined && r.ingress.burstBytes !== undefined) st.net_rx_burst_size = r.ingress.burstBytes;
  }
  st.net_ephemeral_ports = { begin: r.ephemeralPorts.begin, end: r.ephemeralPorts.end };
  // Beside Mesos' fields: what the container sent that the isolator dropped (a source port it does
  // not own, a source address not the host's, neither IPv4 nor ARP), counted by its veth's ingress qdisc.
  st.net_tx_denied_packets = ingressDrops(ctx.qdiscs.get(r.vethIndex));
  const tc: TcStatisticsEntry[] = [];
  const ns = Netns.fromPath(r.netns);
  try {
    if (r.egress && r.egressOnHost) tc.push(...hostShapingEntries(shaperClassOf(r.mirrorSlot), ctx));
    else if (r.egress) {
      const cs = Session.open({ netns: ns, typeNames: RTM_NAMES });
      try {
        tc.push(...shapingEntries(await qdiscStats(cs, r.vethIndex), ''));
      } finally {
        cs.close();
      }
    }
    if (r.ingress) tc.push(...shapingEntries(ctx.qdiscs.get(r.vethIndex) ?? [], 'ingress_'));
    if (ctx.config.socketStatisticsSummary) {
      const sock = parseSockstat(ns.run(() => readFileSync('/proc/thread-self/net/sockstat', 'utf8')));
      if (sock) {
        st.net_tcp_active_connections = sock.active;
        st.net_tcp_time_wait_connections = sock.timeWait;
      }
    }
    if (ctx.config.snmpStatistics) st.net_snmp_statistics = parseSnmp(ns.run(() => readFileSync('/proc/thread-self/net/snmp', 'utf8')));
  } finally {
    ns.close();
  }
  if (tc.length) st.net_traffic_control_statistics = tc;
  return {
    executor_id: r.id,
    source: 'portmap-isolator',
    container_id: r.id,
    ...(r.ipv6 ? { ipv6_addresses: [...r.ipv6] } : {}),
    statistics: st as MesosStatistics['statistics'],
  };
}
