/**
 * The kernel features the isolator builds with, probed by what they are: each feature's objects
 * added on the loopback of a scratch namespace (never a host device), one after another. `doctor`
 * and the CNI plugin's STATUS both ask this.
 */
import type { Request } from '../netlink/index.js';
import { NetlinkError, NetlinkSession, createNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES, RT_TABLE, ruleRequests } from '../rtnl/index.js';
import { IPPROTO, systemPsched } from '../tc/index.js';
import { HTB_CLASS, INGRESS_HANDLE, SELF_RULE_PREF, shapingPlan, tcObjectRequest } from './plan.js';
import type { TcObject } from './plan.js';

/** The only feature the isolator can do without (shaping then uses HTB alone). */
export const OPTIONAL_FEATURE = 'fq_codel';

/** Each feature and its requests, in the order they are tried (a later one may hang on an earlier one's qdisc). */
function featureProbes(): Array<[string, Request[]]> {
  const ctx = { psched: systemPsched() };
  const lo = 1;
  const u32 = { kind: 'u32', ifindex: lo, parent: INGRESS_HANDLE, protocol: 'ip' } as const;
  const mirred = { kind: 'mirred', action: 'redirect', ifindex: lo } as const;
  const tc = (os: TcObject[]) => os.map((o) => tcObjectRequest(o, 'add', ctx));
  return [
    ['ingress', tc([{ type: 'qdisc', spec: { kind: 'ingress', ifindex: lo } }])],
    ['u32', tc([{ type: 'filter', spec: { ...u32, priority: 770, matches: [{ type: 'dstPort', port: 80 }], terminal: true } }])],
    ['u32 hash tables', tc([{ type: 'filter', spec: { ...u32, priority: 771, handle: 0x10000000, divisor: 256 } }])],
    ['mirred', tc([{ type: 'filter', spec: { ...u32, priority: 772, matches: [{ type: 'dstPort', port: 81 }], actions: [mirred] } }])],
    ['htb', tc(shapingPlan(lo, { rateBytesPerSec: 125000 }, false, 1500))],
    // A container's "to itself" steering (plan-self.ts): policy routing (CONFIG_IP_MULTIPLE_TABLES) with protocol and port selectors (Linux 4.17).
    [
      'routing rules',
      [ruleRequests.add({ priority: SELF_RULE_PREF.OWN_PORTS, iif: 'lo', ipProto: IPPROTO.TCP, dport: { begin: 80, end: 81 }, table: RT_TABLE.LOCAL })],
    ],
    [OPTIONAL_FEATURE, tc([{ type: 'qdisc', spec: { kind: 'fq_codel', ifindex: lo, parent: HTB_CLASS } }])],
  ];
}

/** Each feature: true, or the kernel's reason for refusing it. `scratch`: where to pin the scratch namespace (removed after). */
export async function probeKernelFeatures(scratch: string): Promise<Record<string, string | true>> {
  const out: Record<string, string | true> = {};
  removeNetns(scratch); // a leftover of a crashed probe
  const ns = createNetns(scratch);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      for (const [name, reqs] of featureProbes()) {
        try {
          for (const r of reqs) await s.request(r);
          out[name] = true;
        } catch (e) {
          out[name] = e instanceof NetlinkError ? (e.extack?.message ?? e.code) : (e as Error).message;
        }
      }
    } finally {
      s.close();
    }
  } finally {
    ns.close();
    removeNetns(scratch);
  }
  return out;
}
