/**
 * STATUS (spec 1.1.0): can this plugin service ADD right now? In order: the work_dir is writable,
 * the kernel has what the isolator builds (ingress, u32 and its hash tables, mirred, HTB: probed on
 * the loopback of a scratch namespace, never on a host device), and the host namespace (the one the
 * runtime runs us in) has the eth0, address and gateway the flags name. Any of these missing is
 * code 50, naming it. Then the host's shared objects: missing ones mean the existing containers
 * may have limited connectivity (code 51).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NetlinkError, NetlinkSession, createNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES } from '../rtnl/index.js';
import { systemPsched } from '../tc/index.js';
import { Isolator } from '../isolator/engine.js';
import type { TcObject } from '../isolator/plan.js';
import { INGRESS_HANDLE, shapingPlan, tcObjectRequest } from '../isolator/plan.js';
import { CNI_ERR, CniError, toCniError } from './errors.js';
import type { NetConf } from './netconf.js';

const unavailable = (msg: string, details = '') => new CniError(CNI_ERR.PLUGIN_NOT_AVAILABLE, msg, details);

/** The tc objects of each kernel feature the isolator needs, on ifindex 1 (lo) of a fresh namespace. */
function featureProbes(): Array<[string, TcObject[]]> {
  const lo = 1;
  const u32 = { kind: 'u32', ifindex: lo, parent: INGRESS_HANDLE, protocol: 'ip' } as const;
  const mirred = { kind: 'mirred', action: 'redirect', ifindex: lo } as const;
  return [
    ['ingress (sch_ingress)', [{ type: 'qdisc', spec: { kind: 'ingress', ifindex: lo } }]],
    ['u32 (cls_u32)', [{ type: 'filter', spec: { ...u32, priority: 770, matches: [{ type: 'dstPort', port: 80 }], terminal: true } }]],
    ['u32 hash tables (cls_u32)', [{ type: 'filter', spec: { ...u32, priority: 771, handle: 0x10000000, divisor: 256 } }]],
    ['mirred (act_mirred)', [{ type: 'filter', spec: { ...u32, priority: 772, matches: [{ type: 'dstPort', port: 81 }], actions: [mirred] } }]],
    ['htb (sch_htb)', shapingPlan(lo, { rateBytesPerSec: 125000 }, false, 1500)],
  ];
}

/** The features the kernel refused, each with the kernel's reason. */
async function missingFeatures(scratch: string): Promise<string[]> {
  const ctx = { psched: systemPsched() };
  const missing: string[] = [];
  removeNetns(scratch); // a leftover of a crashed probe
  const ns = createNetns(scratch);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      for (const [name, objects] of featureProbes()) {
        try {
          for (const o of objects) await s.request(tcObjectRequest(o, 'add', ctx));
        } catch (e) {
          missing.push(`${name}: ${e instanceof NetlinkError ? (e.extack?.message ?? e.code) : (e as Error).message}`);
        }
      }
    } finally {
      s.close();
    }
  } finally {
    ns.close();
    removeNetns(scratch);
  }
  return missing;
}

/** mkdir -p one level at a time: Node's recursive mkdirSync spins forever under /proc. */
function makeDirs(dir: string): void {
  if (existsSync(dir)) return;
  const parent = dirname(dir);
  if (parent !== dir) makeDirs(parent);
  mkdirSync(dir, { mode: 0o700 });
}

/** Can we create files in the work_dir (where ADD keeps its records, locks and pinned namespaces)? */
function checkWorkDir(workDir: string): void {
  const probe = join(workDir, `status-probe.tmp-${process.pid}`); // recover sweeps a dead process's
  try {
    makeDirs(workDir);
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (e) {
    throw unavailable(`work_dir ${workDir} is not writable`, `${(e as Error).message}; the plugin keeps its records there (it needs root)`);
  }
}

export async function status(conf: NetConf, warn: (m: string) => void): Promise<void> {
  checkWorkDir(conf.workDir);
  let missing: string[];
  try {
    missing = await missingFeatures(join(conf.workDir, 'netns', `.status-${process.pid}`));
  } catch (e) {
    throw unavailable('cannot probe the kernel: no scratch network namespace', `${(e as Error).message}; the plugin needs CAP_NET_ADMIN and CAP_SYS_ADMIN`);
  }
  if (missing.length) throw unavailable(`the kernel lacks ${missing.map((m) => m.split(':')[0]).join(', ')}`, missing.join('; '));
  let iso: Isolator;
  try {
    iso = await Isolator.open({ workDir: conf.workDir, flags: conf.flags, onWarning: warn });
  } catch (e) {
    const err = toCniError(e);
    throw unavailable(`the host network namespace does not fit the network configuration: ${err.message}`, err.details);
  }
  try {
    const problems = await iso.checkHost();
    if (problems.length)
      throw new CniError(
        CNI_ERR.PLUGIN_NOT_AVAILABLE_LIMITED,
        `host objects are missing: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
        `${problems.join('; ')}; run \`portmap-isolator recover --work_dir=${conf.workDir}\` to put them back`,
      );
  } finally {
    await iso.close();
  }
}
