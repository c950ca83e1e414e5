/**
 * STATUS (spec 1.1.0): can this plugin service ADD right now? In order: the work_dir is writable,
 * the kernel has what the isolator builds (ingress, u32 and its hash tables, mirred, HTB, routing
 * rules with protocol and ports: kernel-features.ts), and the host namespace (the one the
 * runtime runs us in) has the eth0, address and gateway the flags name. Any of these missing is
 * code 50, naming it. Then the host's shared objects: missing ones mean the existing containers
 * may have limited connectivity (code 51).
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Isolator } from '../isolator/engine.js';
import { OPTIONAL_FEATURE, probeKernelFeatures } from '../isolator/kernel-features.js';
import { CNI_ERR, CniError, toCniError } from './errors.js';
import type { NetConf } from './netconf.js';

const unavailable = (msg: string, details = '') => new CniError(CNI_ERR.PLUGIN_NOT_AVAILABLE, msg, details);

/** The features the kernel refused (fq_codel is optional), each with the kernel's reason. */
async function missingFeatures(scratch: string): Promise<string[]> {
  const found = await probeKernelFeatures(scratch);
  return Object.entries(found).flatMap(([name, r]) => (r === true || name === OPTIONAL_FEATURE ? [] : [`${name}: ${r}`]));
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
