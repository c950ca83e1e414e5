/**
 * What a container sends to "itself" (Mesos §3.6): the host's addresses, which it shares, and
 * 127.0.0.1. Mesos, and this isolator before, steered it with u32 filters on the container's lo
 * ingress: to its own ports (and ICMP) it stayed, the rest was redirected out through eth0, to the
 * host or another container. Here it is routing policy in the container's namespace, planned as
 * the SDK's own rule and route specs (src/rtnl):
 *
 *   pref 100  iif lo ipproto icmp                       lookup local   (a ping to itself stays)
 *   pref 110  iif lo ipproto tcp|udp dport <own block>  lookup local   (one pair a block)
 *   pref 150  iif lo to <host IP> | 127.0.0.1           lookup SELF_LEAVES_TABLE
 *   pref 200                                            lookup local   (moved from pref 0)
 *   table SELF_LEAVES_TABLE: <host IP> dev eth0; 127.0.0.1 dev eth0 src 127.0.0.1
 *   neighbours on eth0, permanent: <host IP>, 127.0.0.1 at the host's MAC
 *
 * On-link at the host's MAC, not via the gateway: the host's veth filters hand such a frame as it
 * is to the host's lo or to another container's eth0, which both have the host's MAC and would
 * drop a frame for the gateway's (PACKET_OTHERHOST).
 * and the same for IPv6 with the host's IPv6 addresses (--ipv6; no ::1, as before). `iif lo`
 * matches only what the container itself sends (its output route lookups); what arrives on eth0
 * meets the local table at pref 200 as usual. Why: no ingress qdisc on lo means no RCU grace period
 * for its first filter, no mirred action, and nothing in the machine-wide list of bound tc blocks
 * that every ingress qdisc made or removed walks (bench/README.md, issue #18).
 */
import type { PortBlock } from '../tc/index.js';
import { IPPROTO, portBlockRange } from '../tc/index.js';
import type { RouteSpec, Rule, RuleSpec } from '../rtnl/index.js';
import { FR_ACT, RT_TABLE } from '../rtnl/index.js';

/** The routing table holding the container's routes out to "itself" (a table id no distribution names). */
export const SELF_LEAVES_TABLE = 0x504d49; // "PMI"

/** Rule preferences, in the order the kernel tries them. */
export const SELF_RULE_PREF = Object.freeze({
  /** ICMP to itself stays (Mesos: a ping to the host IP from a container is answered by it). */
  ICMP: 100,
  /** TCP and UDP to its own ports stay. */
  OWN_PORTS: 110,
  /** Everything else to the host's addresses or 127.0.0.1 leaves through eth0. */
  LEAVES: 150,
  /** The local table's own rule, moved here from preference 0 so that the rules above come first. */
  LOCAL: 200,
} as const);

/** Preference of the kernel's own `lookup local` rule in a new namespace. */
export const KERNEL_LOCAL_RULE_PREF = 0;

/** What the container's "to itself" routing needs of the host. */
export interface SelfRoutingHost {
  ip: string;
  /** Its MAC (eth0's, which lo and every container's eth0 have too). */
  mac: string;
  /** The host's IPv6 addresses containers share (--ipv6); none: IPv6 off. */
  ip6?: readonly string[];
}

/** The rules and routes of a container's "to itself" routing, in the order to add them. */
export interface SelfRoutingPlan {
  rules: RuleSpec[];
  routes: RouteSpec[];
  /** Permanent neighbours on eth0 for the routes' destinations: these addresses at `mac`. */
  neighbours: { addresses: string[]; mac: string };
  /** Moving the local table's rule: delete it at preference 0 once it is at SELF_RULE_PREF.LOCAL. */
  localRuleMoved: RuleSpec[];
}

const families = (host: { ip6?: readonly string[] }): Array<'inet' | 'inet6'> => (host.ip6?.length ? ['inet', 'inet6'] : ['inet']);

const localRule = (family: 'inet' | 'inet6', priority: number): RuleSpec => ({ family, priority, table: RT_TABLE.LOCAL });

/**
 * The part that does not depend on the container's ports (a warm-pool spare has it already). Its
 * routes and neighbours are on eth0, `cEth0`: add them once it is up with the host IP.
 */
export function selfRoutingBase(host: SelfRoutingHost, cEth0: number): SelfRoutingPlan {
  const rules: RuleSpec[] = [];
  const routes: RouteSpec[] = [];
  const lo = 'lo';
  rules.push({ family: 'inet', priority: SELF_RULE_PREF.ICMP, iif: lo, ipProto: IPPROTO.ICMP, table: RT_TABLE.LOCAL });
  for (const dst of [host.ip, '127.0.0.1']) rules.push({ family: 'inet', priority: SELF_RULE_PREF.LEAVES, iif: lo, dst, table: SELF_LEAVES_TABLE });
  routes.push({ dst: `${host.ip}/32`, oif: cEth0, table: SELF_LEAVES_TABLE });
  // From 127.0.0.1 (route_localnet on eth0), so that the host's answer comes back through its lo.
  routes.push({ dst: '127.0.0.1/32', oif: cEth0, prefsrc: '127.0.0.1', table: SELF_LEAVES_TABLE });
  for (const a of host.ip6 ?? []) {
    rules.push({ family: 'inet6', priority: SELF_RULE_PREF.LEAVES, iif: lo, dst: a, table: SELF_LEAVES_TABLE });
    routes.push({ dst: `${a}/128`, oif: cEth0, table: SELF_LEAVES_TABLE });
  }
  if (host.ip6?.length) rules.push({ family: 'inet6', priority: SELF_RULE_PREF.ICMP, iif: lo, ipProto: IPPROTO.ICMPV6, table: RT_TABLE.LOCAL });
  for (const f of families(host)) rules.push(localRule(f, SELF_RULE_PREF.LOCAL));
  return {
    rules,
    routes,
    neighbours: { addresses: [host.ip, '127.0.0.1', ...(host.ip6 ?? [])], mac: host.mac },
    localRuleMoved: families(host).map((f) => localRule(f, KERNEL_LOCAL_RULE_PREF)),
  };
}

/** The IP protocols whose traffic to its own ports stays in the container. */
export const SELF_PORT_PROTOCOLS = [IPPROTO.TCP, IPPROTO.UDP] as const;

/** Per port block: TCP and UDP to the container's own ports stay in it (IPv4, and IPv6 with --ipv6). */
export function selfPortRules(host: { ip6?: readonly string[] }, blocks: PortBlock[]): RuleSpec[] {
  const out: RuleSpec[] = [];
  for (const family of families(host)) {
    for (const b of blocks) {
      const dport = portBlockRange(b);
      for (const ipProto of SELF_PORT_PROTOCOLS) {
        out.push({ family, priority: SELF_RULE_PREF.OWN_PORTS, iif: 'lo', ipProto, dport: { begin: dport.begin, end: dport.end }, table: RT_TABLE.LOCAL });
      }
    }
  }
  return out;
}

const OUR_LOCAL_PREFS: readonly number[] = [SELF_RULE_PREF.ICMP, SELF_RULE_PREF.OWN_PORTS, SELF_RULE_PREF.LOCAL];

/** Whether a listed rule is one of the "to itself" rules (selfRoutingBase, selfPortRules). */
export const isSelfRoutingRule = (r: Rule): boolean =>
  r.table === SELF_LEAVES_TABLE || (r.table === RT_TABLE.LOCAL && OUR_LOCAL_PREFS.includes(r.priority) && r.action === FR_ACT.TO_TBL);

/**
 * Taking it out of a namespace that outlives the container, from the namespace's rules as listed:
 * the local table's rule back at preference 0 (first, so local delivery never stops), then every
 * rule of ours. The routes in SELF_LEAVES_TABLE go with eth0, which they go through.
 */
export function selfRoutingCleanup(found: Rule[]): { restore: RuleSpec[]; remove: RuleSpec[] } {
  const ours = found.filter(isSelfRoutingRule);
  const restore: RuleSpec[] = [];
  for (const family of ['inet', 'inet6'] as const) {
    const kernelLocal = found.some((r) => r.family === family && r.priority === KERNEL_LOCAL_RULE_PREF && r.table === RT_TABLE.LOCAL);
    if (!kernelLocal && ours.some((r) => r.family === family)) restore.push(localRule(family, KERNEL_LOCAL_RULE_PREF));
  }
  return { restore, remove: ours };
}

/**
 * Why a namespace we are given cannot take the "to itself" routing, if it cannot: rules of ours
 * there already (a container's, not taken out), or the local table's rule not at preference 0,
 * where a new namespace has it and from where it is moved.
 */
export function selfRoutingConflict(found: Rule[], families: ReadonlyArray<'inet' | 'inet6'>): string | undefined {
  const ours = found.filter(isSelfRoutingRule);
  if (ours.length)
    return `it has routing rules the isolator would own (preferences ${[...new Set(ours.map((r) => r.priority))].join(', ')}, or table ${SELF_LEAVES_TABLE})`;
  for (const family of families) {
    if (!found.some((r) => r.family === family && r.priority === KERNEL_LOCAL_RULE_PREF && r.table === RT_TABLE.LOCAL)) {
      return `its ${family} rule "lookup local" is not at preference 0, where the isolator expects it`;
    }
  }
  return undefined;
}

/** A rule as a comparable string: what the kernel lists (Rule) and what was planned (RuleSpec) give the same one. */
export function selfRuleKey(r: RuleSpec): string {
  const prefix = (p: string | undefined) => (p === undefined || p.includes('/') ? p : `${p}/${p.includes(':') ? 128 : 32}`);
  const ports = r.dport ? `${r.dport.begin}-${r.dport.end}` : '';
  return [r.family ?? 'inet', r.priority, r.iif ?? '', prefix(r.dst) ?? '', r.ipProto ?? '', ports, r.table].join(' ');
}

/** The planned rules (`wanted`) that `found` lacks. */
export function missingRules(wanted: RuleSpec[], found: Rule[]): RuleSpec[] {
  const have = new Set(found.map(selfRuleKey));
  return wanted.filter((r) => !have.has(selfRuleKey(r)));
}
