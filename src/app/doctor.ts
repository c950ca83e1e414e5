/**
 * `doctor`: can this machine run the isolator? One line per check; required checks decide the
 * exit status. Kernel features are probed in a scratch namespace, never on the host's devices.
 */
import { existsSync } from 'node:fs';
import { NetlinkError, NetlinkSession, createNetns, nativeShim, removeNetns } from '../netlink/index.js';
import { RTM_NAMES } from '../rtnl/index.js';
import { systemPsched } from '../tc/rate.js';
import type { IsolatorOptions } from '../isolator/engine.js';
import { Isolator } from '../isolator/engine.js';
import type { TcObject } from '../isolator/plan.js';
import { HTB_CLASS, INGRESS_HANDLE, shapingPlan, tcObjectRequest } from '../isolator/plan.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

/** Try each tc object in a fresh namespace; report which the kernel accepts. */
async function probeKernel(scratch: string): Promise<Record<string, string | true>> {
  const ctx = { psched: systemPsched() };
  const lo = 1;
  const u32 = { kind: 'u32', ifindex: lo, parent: INGRESS_HANDLE, protocol: 'ip' } as const;
  const probes: Array<[string, TcObject[]]> = [
    ['ingress', [{ type: 'qdisc', spec: { kind: 'ingress', ifindex: lo } }]],
    ['u32', [{ type: 'filter', spec: { ...u32, priority: 770, matches: [{ type: 'dstPort', port: 80 }], terminal: true } }]],
    ['u32 hash tables', [{ type: 'filter', spec: { ...u32, priority: 771, handle: 0x10000000, divisor: 256 } }]],
    [
      'mirred',
      [
        {
          type: 'filter',
          spec: { ...u32, priority: 772, matches: [{ type: 'dstPort', port: 81 }], actions: [{ kind: 'mirred', action: 'redirect', ifindex: lo }] },
        },
      ],
    ],
    ['htb', shapingPlan(lo, { rateBytesPerSec: 125000 }, false, 1500)],
    ['fq_codel', [{ type: 'qdisc', spec: { kind: 'fq_codel', ifindex: lo, parent: HTB_CLASS } }]],
  ];
  const out: Record<string, string | true> = {};
  removeNetns(scratch);
  const ns = createNetns(scratch);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      for (const [name, plans] of probes) {
        try {
          for (const o of plans) await s.request(tcObjectRequest(o, 'add', ctx));
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

type AddCheck = (name: string, ok: boolean, required: boolean, detail: string) => void;

/** The kernel features probed: all required but fq_codel (needed only with --egress_unique_flow_per_container). */
function featureChecks(features: Record<string, string | true>, opts: IsolatorOptions, add: AddCheck): void {
  for (const [name, r] of Object.entries(features)) {
    const optional = name === 'fq_codel';
    const detail =
      r === true
        ? 'available'
        : optional
          ? `absent (${r}): shaping uses HTB alone, bloat_reduction statistics are left out, --egress_unique_flow_per_container is refused`
          : `missing: ${r}`;
    add(name, r === true, !optional || opts.flags?.egress_unique_flow_per_container === true, detail);
  }
}

/** The host as the isolator sees it, its ephemeral ports, and the objects it keeps there. */
async function hostChecks(opts: IsolatorOptions & { workDir: string }, add: AddCheck): Promise<void> {
  try {
    const iso = await Isolator.open(opts);
    const h = iso.host;
    add('host', true, true, `eth0=${h.eth0.name} ip=${h.ip}/${h.prefixlen} mac=${h.eth0.address} mtu=${h.eth0.mtu} gateway=${h.gateway} lo=${h.lo.name}`);
    add(
      'ephemeral ports',
      true,
      true,
      `pool ${iso.config.ephemeralPorts.toString()} clear of the host's ip_local_port_range [${h.localPortRange[0]}-${h.localPortRange[1]}]`,
    );
    try {
      const problems = await iso.checkHost();
      add(
        'host objects',
        problems.length === 0,
        true,
        problems.length
          ? `${problems.join('; ')} — run \`portmap-isolator recover\` to put them back`
          : "the shared port tables and every container's port filters are in place",
      );
    } finally {
      await iso.close();
    }
  } catch (e) {
    add('host configuration', false, true, (e as Error).message);
  }
}

export async function doctor(opts: IsolatorOptions & { workDir: string }): Promise<Check[]> {
  const checks: Check[] = [];
  const add: AddCheck = (name, ok, required, detail) => checks.push({ name, ok, required, detail });
  add('root', process.getuid?.() === 0, true, process.getuid?.() === 0 ? 'running as root' : 'needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)');
  add(
    'network namespaces',
    existsSync('/proc/self/ns/net'),
    true,
    existsSync('/proc/self/ns/net') ? '/proc/self/ns/net present' : 'the kernel has no network namespaces',
  );
  try {
    nativeShim();
    add('native shim', true, true, 'loaded');
  } catch (e) {
    add('native shim', false, true, (e as Error).message);
    return checks;
  }
  if (!checks.every((c) => c.ok)) return checks;
  let features: Record<string, string | true> = {};
  try {
    features = await probeKernel(`${opts.workDir}/netns/.doctor-${process.pid}`);
  } catch (e) {
    add('kernel probe', false, true, `cannot create a scratch namespace: ${(e as Error).message}`);
    return checks;
  }
  featureChecks(features, opts, add);
  await hostChecks(opts, add);
  return checks;
}
