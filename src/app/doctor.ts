/**
 * `doctor`: can this machine run the isolator? One line per check; required checks decide the
 * exit status. Kernel features are probed in a scratch namespace, never on the host's devices.
 */
import { existsSync } from 'node:fs';
import { nativeShim } from '../netlink/index.js';
import type { IsolatorOptions } from '../isolator/engine.js';
import { Isolator } from '../isolator/engine.js';
import { OPTIONAL_FEATURE, probeKernelFeatures } from '../isolator/kernel-features.js';

export interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
}

type AddCheck = (name: string, ok: boolean, required: boolean, detail: string) => void;

/** The kernel features probed: all required but fq_codel (needed only with --egress_unique_flow_per_container). */
function featureChecks(features: Record<string, string | true>, opts: IsolatorOptions, add: AddCheck): void {
  for (const [name, r] of Object.entries(features)) {
    const optional = name === OPTIONAL_FEATURE;
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
    features = await probeKernelFeatures(`${opts.workDir}/netns/.doctor-${process.pid}`);
  } catch (e) {
    add('kernel probe', false, true, `cannot create a scratch namespace: ${(e as Error).message}`);
    return checks;
  }
  featureChecks(features, opts, add);
  await hostChecks(opts, add);
  return checks;
}
