/**
 * A namespace handed to `create` (a process's, by pid, or a CNI runtime's path) is checked before
 * anything is built in it. The isolator configures a container namespace's lo, adds routing
 * rules there and removes them again on rollback or destroy: pointed at the host's own namespace,
 * or at another container's, that would rewrite the host's (or that container's) routing policy. So such a namespace is refused, by nsfs identity (device and inode), and
 * the namespace is held open from the check on, so that what is built is what was checked.
 */
import { existsSync, fstatSync, statSync } from 'node:fs';
import { NetlinkSession, Netns } from '../netlink/index.js';
import { RTM_NAMES, Rtnl } from '../rtnl/index.js';
import { selfRoutingConflict } from './plan-self.js';
import { InterfaceExistsError, IsolatorError, RefusedNamespaceError } from './errors.js';

export { RefusedNamespaceError } from './errors.js';

/** A namespace no container may be given: where it is, and whose it is ("the host's", "container web's"). */
export interface ProtectedNamespace {
  path: string;
  owner: string;
}

export interface TargetSpec {
  pid?: number;
  netnsPath?: string;
}

const describe = (t: TargetSpec): { flag: string; who: string; path: string } =>
  t.pid !== undefined
    ? { flag: 'pid', who: `pid ${t.pid}`, path: `/proc/${t.pid}/ns/net` }
    : { flag: 'netnsPath', who: `namespace ${t.netnsPath}`, path: t.netnsPath! };

/** Why a namespace could not be opened, by errno code: a gone process says so (a zombie has no namespaces left). */
function openFailure(target: TargetSpec, who: string, e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'ENOENT' || code === 'ESRCH') {
    return target.pid !== undefined && existsSync(`/proc/${target.pid}`) ? `${who} has exited (its namespaces are gone)` : `${who} does not exist`;
  }
  if (code === 'EACCES' || code === 'EPERM') return `${who} cannot be opened (permission denied)`;
  return `${who} cannot be opened (${(e as Error).message})`;
}

/** Why setns(2) refused a namespace: not a network namespace (EINVAL), or one we may not enter. */
function enterFailure(target: TargetSpec, path: string, e: unknown): string {
  const code = (e as { code?: string }).code;
  if (code === 'EINVAL') return `${path} is not a network namespace`;
  const what = target.pid !== undefined ? `pid ${target.pid}'s network namespace` : path;
  return `${what} cannot be entered (${code === 'EPERM' ? 'operation not permitted' : (e as Error).message})`;
}

/**
 * Open the namespace of a pid or path, refusing one that does not exist, cannot be entered, or
 * is one of `protectedNamespaces` (compared by device and inode). Every refusal is a
 * RefusedNamespaceError naming the field (HTTP 400, exit 2): never a mount or setns error later.
 * The namespace is held open from here on, so a process exiting meanwhile changes nothing. The
 * caller closes the returned handle.
 */
export function openTargetNamespace(target: TargetSpec, protectedNamespaces: Iterable<ProtectedNamespace>): Netns {
  const { flag, who, path } = describe(target);
  if (target.pid !== undefined && (!Number.isSafeInteger(target.pid) || target.pid <= 0)) {
    throw new RefusedNamespaceError(flag, `must be a positive integer, got ${String(target.pid)}`);
  }
  const ns = Netns.fromPath(path);
  let st: { dev: number; ino: number };
  try {
    st = fstatSync(ns.fd);
  } catch (e) {
    throw new RefusedNamespaceError(flag, openFailure(target, who, e));
  }
  try {
    for (const p of protectedNamespaces) {
      let other: { dev: number; ino: number };
      try {
        other = statSync(p.path);
      } catch {
        continue; // gone: nothing left to protect there
      }
      if (other.dev === st.dev && other.ino === st.ino) {
        throw new RefusedNamespaceError(flag, `${who} is in ${p.owner} network namespace; a container needs a network namespace of its own`);
      }
    }
    try {
      ns.run(() => undefined); // setns(2) refuses anything but a network namespace
    } catch (e) {
      throw new RefusedNamespaceError(flag, enterFailure(target, path, e));
    }
  } catch (e) {
    ns.close();
    throw e;
  }
  return ns;
}

/**
 * Check inside the target namespace that nothing of ours would collide with what is there: no
 * interface named `ifname`, and no routing rules of the kind the isolator adds and later removes
 * (plan-self.ts), with the local table's rule where a new namespace has it. Refusing found ones is
 * what keeps destroy and rollback from ever removing rules they did not make.
 */
export async function checkTargetContents(ns: Netns, ifname: string, families: ReadonlyArray<'inet' | 'inet6'>): Promise<void> {
  const session = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
  try {
    const rtnl = new Rtnl(session, ns);
    if (await rtnl.links.find(ifname)) {
      throw new InterfaceExistsError(ifname, String(ns));
    }
    const rules = (await Promise.all(families.map((f) => rtnl.rules.list(f)))).flat();
    const conflict = selfRoutingConflict(rules, families);
    if (conflict) throw new IsolatorError(`${ns} cannot take a container: ${conflict}; use a new namespace`);
  } finally {
    session.close();
  }
}
