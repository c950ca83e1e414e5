/**
 * A container's network topology as the kernel reports it, normalised so that two builds (the
 * engine's and the shell script's, each in its own lab) compare equal when they made the same
 * objects: every u32 filter on the host's eth0, lo and the container's veth and on the
 * container's lo and eth0 (priority, protocol, handle, keys, terminal flag, link/hash key,
 * actions with their targets and verdicts), the ingress qdiscs, the container's links, addresses,
 * routes (every table but local), routing rules and sysctls. Kernel-chosen action indexes, counters and class ids are left out.
 */
import { NetlinkSession, Netns, readFileInNetns } from '../src/netlink/index.js';
import { NUD, RTM_NAMES, RT_TABLE, Rtnl } from '../src/rtnl/index.js';
import { Tc, isU32 } from '../src/tc/index.js';

export interface TopologyRef {
  /** Host namespace (path). */
  host: string;
  /** Container namespace (path). */
  container: string;
  vethIndex: number;
  eth0: number;
  lo: number;
  /** The host's MAC (each lab has its own): shown as HOST-MAC so that labs compare. */
  mac: string;
}

async function filters(tc: Tc, ifindex: number): Promise<string[]> {
  const fs = await tc.listFilters(ifindex, 'ffff:', { includePlaceholders: false });
  return fs
    .map((f) => {
      if (!isU32(f)) return `${f.priority} ${f.protocol} ${f.kind}`;
      return JSON.stringify({
        prio: f.priority,
        protocol: f.protocol,
        handle: f.handle.toString(16),
        ht: f.ht?.toString(16),
        divisor: f.divisor,
        link: f.link?.toString(16),
        hashkey: f.hashkey,
        terminal: f.terminal,
        matches: f.matches,
        actions: f.actions.map((a) => ({ kind: a.kind, action: a.action, direction: a.direction, ifindex: a.ifindex, verdict: a.verdict })),
      });
    })
    .sort();
}

async function qdiscs(tc: Tc, ifindex: number): Promise<string[]> {
  return (await tc.listQdiscs(ifindex)).map((q) => `${q.kind} ${q.parent.toString(16)} ${q.handle.toString(16)}`).sort();
}

/** The normalised topology, one labelled line per object. */
export async function topology(ref: TopologyRef): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const hs = NetlinkSession.open({ netns: Netns.fromPath(ref.host), typeNames: RTM_NAMES });
  const cs = NetlinkSession.open({ netns: Netns.fromPath(ref.container), typeNames: RTM_NAMES });
  const crtnl = Rtnl.open(Netns.fromPath(ref.container));
  try {
    const htc = new Tc(hs);
    const ctc = new Tc(cs);
    out['host eth0 filters'] = await filters(htc, ref.eth0);
    out['host lo filters'] = await filters(htc, ref.lo);
    out['host veth filters'] = await filters(htc, ref.vethIndex);
    out['host veth qdiscs'] = await qdiscs(htc, ref.vethIndex);
    out['container lo filters'] = await filters(ctc, 1);
    out['container eth0 filters'] = await filters(ctc, ref.vethIndex);
    out['container qdiscs'] = [...(await qdiscs(ctc, 1)), ...(await qdiscs(ctc, ref.vethIndex))];
    out['container links'] = (await crtnl.links.list()).map((l) => `${l.index} ${l.name} up=${l.up} mtu=${l.mtu} ${l.address} ${l.kind ?? ''}`).sort();
    // Both families (an IPv6 container has the host's IPv6 addresses and route too; --ipv6).
    out['container addresses'] = (await crtnl.addresses.list()).map((a) => `${a.ifindex} ${a.cidr}`).sort();
    // Every table but local (the kernel's own entries for the addresses): main and SELF_LEAVES_TABLE.
    const routes = [...(await crtnl.routes.list({ family: 'inet', table: 'all' })), ...(await crtnl.routes.list({ family: 'inet6', table: 'all' }))];
    out['container routes'] = routes
      .filter((r) => r.table !== RT_TABLE.LOCAL)
      .map((r) => `${r.dst} via ${r.gateway ?? '-'} oif ${r.oif} src ${r.prefsrc ?? '-'} table ${r.table}`)
      .sort();
    const rules = [...(await crtnl.rules.list('inet')), ...(await crtnl.rules.list('inet6'))];
    out['container rules'] = rules.map((r) => JSON.stringify(r)).sort();
    // (Only the ones set: traffic leaves learned entries behind.)
    const permanent = (await crtnl.neighbours.list()).filter((n) => n.state & NUD.PERMANENT);
    out['container neighbours'] = permanent.map((n) => `${n.ifindex} ${n.address} ${n.lladdr ?? '-'}`).sort();
    const ns = Netns.fromPath(ref.container);
    try {
      const read = (k: string) => readFileInNetns(ns, `/proc/sys/net/${k}`).trim().replace(/\s+/g, ' ');
      out['container sysctls'] = [
        'ipv4/ip_local_port_range',
        'ipv4/conf/eth0/accept_local',
        'ipv4/conf/eth0/route_localnet',
        'ipv4/conf/lo/accept_local',
        'ipv4/conf/lo/route_localnet',
        'ipv6/conf/all/disable_ipv6',
      ].map((k) => `${k}=${read(k)}`);
    } finally {
      ns.close();
    }
    const mac = new RegExp(ref.mac, 'gi');
    for (const k of Object.keys(out)) out[k] = out[k]!.map((l) => l.replace(mac, 'HOST-MAC'));
    return out;
  } finally {
    hs.close();
    cs.close();
    crtnl.close();
  }
}

/**
 * A container's topology (`topology`) with what differs between two builds of the same container
 * made neutral: its veth's index and name, and kernel-chosen qdisc handles (fq_codel's 80xx:).
 */
export async function containerTopology(
  hostNs: string,
  info: { netns: string; veth: string },
  host: { eth0: { index: number; address: string }; lo: { index: number } },
): Promise<Record<string, string[]>> {
  const vethIndex = 1_000_000 + Number(info.veth.slice(3));
  const t = await topology({ host: hostNs, container: info.netns, vethIndex, eth0: host.eth0.index, lo: host.lo.index, mac: host.eth0.address });
  const veth = new RegExp(`\\b${vethIndex}\\b`, 'g');
  for (const k of Object.keys(t))
    t[k] = t[k]!.map((l) =>
      l
        .replace(veth, 'VETH')
        .replace(info.veth, 'pmiN')
        .replace(/\b80[0-9a-f]{2}0000\b/g, 'AUTO'),
    );
  return t;
}

/** '' when equal, else a short description of the first differences. */
export function compareTopologies(a: Record<string, string[]>, b: Record<string, string[]>): string {
  const diffs: string[] = [];
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = a[k] ?? [];
    const y = b[k] ?? [];
    const onlyA = x.filter((l) => !y.includes(l));
    const onlyB = y.filter((l) => !x.includes(l));
    if (onlyA.length || onlyB.length) diffs.push(`${k}: engine only ${JSON.stringify(onlyA.slice(0, 2))}, shell only ${JSON.stringify(onlyB.slice(0, 2))}`);
  }
  return diffs.join('; ');
}
