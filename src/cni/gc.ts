/**
 * Taking a CNI attachment away (DEL's work, and GC's, spec 1.1.0): put the runtime's namespace back
 * as ADD found it, then destroy the container. GC does that to every attachment of this network
 * (its ADD's, in this work_dir and host namespace) that the runtime does not list in
 * `cni.dev/valid-attachments`; containers made by the CLI, the agent or the SDK are never touched.
 */
import type { Isolator } from '../isolator/engine.js';
import type { ContainerRecord } from '../isolator/state.js';
import { CNI_ERR, CniError } from './errors.js';
import { SandboxStore, restoreSandbox } from './sandbox.js';

/** Created by this plugin (not by the CLI or agent, which make or borrow namespaces by pin or pid). */
export const isCniRecord = (r: ContainerRecord) => !r.ownsNetns && r.pid === undefined;

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** GC's `cni.dev/valid-attachments`: required, an array of {containerID, ifname}. */
export function parseValidAttachments(raw: Record<string, unknown>): ValidAttachment[] {
  const v = raw['cni.dev/valid-attachments'];
  const bad = (msg: string) => new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, `invalid network configuration: ${msg}`, 'GC needs the attachments to keep');
  if (!Array.isArray(v)) throw bad(`"cni.dev/valid-attachments" must be an array, got ${JSON.stringify(v)}`);
  return v.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string')
      throw bad(`"cni.dev/valid-attachments"[${i}] must be {"containerID": string, "ifname": string}, got ${JSON.stringify(a)}`);
    return { containerID: a.containerID, ifname: a.ifname };
  });
}

/**
 * Restore the sandbox (if its namespace is still there) and destroy the container (if it is still
 * there); the snapshot goes once the namespace is back. Returns what could not be restored.
 */
export async function detach(iso: Isolator, id: string, hasRecord: boolean): Promise<{ problems: string[]; netns?: string }> {
  const sandboxes = new SandboxStore(iso.store.workDir);
  const snapshot = sandboxes.read(id);
  const problems = snapshot ? await restoreSandbox(snapshot).catch((e: Error) => [e.message]) : [];
  if (hasRecord) await iso.destroy(id);
  if (!problems.length) sandboxes.delete(id);
  return { problems, ...(snapshot ? { netns: snapshot.netns } : {}) };
}

/**
 * GC: detach every attachment that `network`'s ADD made in this work_dir (its sandbox snapshot
 * names the network) whose (containerID, ifname) is not listed: the list names only that
 * network's attachments, so another network sharing the work_dir keeps its own. Snapshots from
 * before the network was recorded count as this network's. Containers without a snapshot (the
 * CLI's, the agent's, an SDK caller's) are never touched. Goes on past failures and reports them
 * all at the end (the spec: remove as much as possible). Returns the ids removed. The caller
 * holds the work_dir lock.
 */
export async function gc(iso: Isolator, network: string, valid: ValidAttachment[], warn: (m: string) => void): Promise<string[]> {
  const keep = new Set(valid.map((a) => `${a.containerID}\0${a.ifname}`));
  const sandboxes = new SandboxStore(iso.store.workDir);
  const removed: string[] = [];
  const failures: string[] = [];
  for (const c of await iso.list()) {
    const rec = await iso.get(c.id);
    if (!rec || !isCniRecord(rec) || keep.has(`${rec.id}\0${rec.ifname}`)) continue;
    const snapshot = sandboxes.read(rec.id);
    if (!snapshot || (snapshot.network !== undefined && snapshot.network !== network)) continue;
    try {
      const { problems } = await detach(iso, rec.id, true);
      removed.push(rec.id);
      if (problems.length) failures.push(`${rec.id}: its namespace ${rec.netns} was not fully restored: ${problems.join('; ')}`);
    } catch (e) {
      failures.push(`${rec.id}: ${(e as Error).message}`);
    }
  }
  if (removed.length) warn(`GC removed ${removed.length} stale attachment(s): ${removed.join(', ')}`);
  if (failures.length) throw new CniError(CNI_ERR.INTERNAL, `GC could not fully remove ${failures.length} stale attachment(s)`, failures.join('; '));
  return removed;
}
