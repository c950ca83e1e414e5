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
import type { TcPlan } from '../isolator/plan.js';
import { INGRESS_HANDLE, TC_H_INGRESS, TC_H_ROOT } from '../isolator/plan.js';
import { tcRequest } from '../isolator/tc-requests.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

/** Try each tc object in a fresh namespace; report which the kernel accepts. */
async function probeKernel(scratch: string): Promise<Record<string, string | true>> {
  const ctx = { psched: systemPsched(), mtu: 1500 };
  const lo = { ns: 'container' as const, index: 1 };
  const probes: Array<[string, TcPlan[]]> = [
    ['ingress', [{ type: 'qdisc', dev: lo, kind: 'ingress', parent: TC_H_INGRESS, handle: INGRESS_HANDLE }]],
    ['u32', [{ type: 'u32', dev: lo, parent: INGRESS_HANDLE, prio: 770, protocol: 'ip', keys: [{ off: 20, val: 80, mask: 0xffff }], terminal: true, actions: [] }]],
    ['u32 hash tables', [{ type: 'u32', dev: lo, parent: INGRESS_HANDLE, prio: 771, protocol: 'ip', handle: 0x10000000, keys: [], terminal: false, actions: [], divisor: 256 }]],
    ['mirred', [{ type: 'u32', dev: lo, parent: INGRESS_HANDLE, prio: 772, protocol: 'ip', keys: [{ off: 20, val: 81, mask: 0xffff }], terminal: true, actions: [{ kind: 'redirect', to: lo }] }]],
    ['htb', [{ type: 'qdisc', dev: lo, kind: 'htb', parent: TC_H_ROOT, handle: 0x10000, defcls: 1 }, { type: 'htb-class', dev: lo, parent: 0x10000, classid: 0x10001, config: { rateBytesPerSec: 125000 } }]],
    ['fq_codel', [{ type: 'qdisc', dev: lo, kind: 'fq_codel', parent: 0x10001, handle: 0 }]],
  ];
  const out: Record<string, string | true> = {};
  removeNetns(scratch);
  const ns = createNetns(scratch);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      for (const [name, plans] of probes) {
        try {
          for (const p of plans) await s.request(tcRequest(p, 'add', ctx));
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

export async function doctor(opts: IsolatorOptions & { workDir: string }): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, ok: boolean, required: boolean, detail: string) => checks.push({ name, ok, required, detail });
  add('root', process.getuid?.() === 0, true, process.getuid?.() === 0 ? 'running as root' : 'needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)');
  add('network namespaces', existsSync('/proc/self/ns/net'), true, existsSync('/proc/self/ns/net') ? '/proc/self/ns/net present' : 'the kernel has no network namespaces');
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
  try {
    const iso = await Isolator.open(opts);
    const h = iso.host;
    add('host', true, true, `eth0=${h.eth0.name} ip=${h.ip}/${h.prefixlen} mac=${h.eth0.address} mtu=${h.eth0.mtu} gateway=${h.gateway} lo=${h.lo.name}`);
    add('ephemeral ports', true, true, `pool ${iso.config.ephemeralPorts.toString()} clear of the host's ip_local_port_range [${h.localPortRange[0]}-${h.localPortRange[1]}]`);
    try {
      const problems = await iso.checkHost();
      add('host objects', problems.length === 0, true, problems.length ? `${problems.join('; ')} — run \`portmap-isolator recover\` to put them back` : 'the shared port tables and every container\'s port filters are in place');
    } finally {
      await iso.close();
    }
  } catch (e) {
    add('host configuration', false, true, (e as Error).message);
  }
  return checks;
}
