/**
 * The runtime's namespace outlives our attachment (unlike the CLI's namespaces, which die with the
 * container): ADD changes its loopback (the host's MAC and MTU; an ingress qdisc with port
 * filters in attachments of earlier versions, routing rules now, which the engine's destroy puts
 * back) and sysctls (ip_local_port_range, accept_local, route_localnet, disable_ipv6 of all and default), and DEL
 * must put them back, or a later ADD into the same namespace finds what it left and fails.
 *
 * So ADD snapshots them first, in `<work_dir>/cni/<id>.json` (beside the engine's state, which
 * has no place for it), and DEL restores them — into the same namespace only (by inode), and
 * not at all when it is gone.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Netns } from '../netlink/index.js';
import { IFF, Rtnl } from '../rtnl/index.js';
import { Tc } from '../tc/index.js';

export interface SandboxState {
  /** The network (the configuration's `name`) whose ADD made the attachment; absent in older snapshots. */
  network?: string;
  /** CNI_NETNS at ADD, and the namespace's identity then. */
  netns: string;
  ino: number;
  dev: number;
  lo: { index: number; name: string; address: string; mtu: number; ingress: boolean };
  /** '/'-joined sysctl key → value before ADD (keys that do not exist are left out). */
  sysctls: Record<string, string>;
}

const sysctlKeys = (lo: string): string[][] => [
  ['net', 'ipv4', 'ip_local_port_range'],
  ['net', 'ipv4', 'conf', lo, 'accept_local'],
  ['net', 'ipv4', 'conf', lo, 'route_localnet'],
  ['net', 'ipv6', 'conf', 'all', 'disable_ipv6'],
  ['net', 'ipv6', 'conf', 'default', 'disable_ipv6'], // writing `all` sets it too
];

/** The namespace's inode and device, or undefined when it is gone. */
function identity(path: string): { ino: number; dev: number } | undefined {
  try {
    const st = statSync(path);
    return { ino: st.ino, dev: st.dev };
  } catch {
    return undefined;
  }
}

async function withNs<T>(path: string, fn: (rtnl: Rtnl) => Promise<T>): Promise<T> {
  const ns = Netns.fromPath(path);
  try {
    const rtnl = Rtnl.open(ns);
    try {
      return await fn(rtnl);
    } finally {
      rtnl.close();
    }
  } finally {
    ns.close();
  }
}

/** What ADD is about to change in the runtime's namespace. */
export async function snapshotSandbox(path: string): Promise<SandboxState> {
  const id = identity(path);
  if (!id) throw new Error(`network namespace ${path} is gone`);
  return withNs(path, async (rtnl) => {
    const lo = (await rtnl.links.list()).find((l) => (l.flags & IFF.LOOPBACK) !== 0);
    if (!lo) throw new Error(`network namespace ${path} has no loopback interface`);
    const tc = new Tc(rtnl.session);
    const ingress = await tc.qdiscExists({ ifindex: lo.index, kind: 'ingress' });
    const sysctls: Record<string, string> = {};
    for (const key of sysctlKeys(lo.name)) {
      try {
        sysctls[key.join('/')] = rtnl.readSysctl(key);
      } catch {
        /* not in this kernel (IPv6) */
      }
    }
    return { netns: path, ...id, lo: { index: lo.index, name: lo.name, address: lo.address ?? '00:00:00:00:00:00', mtu: lo.mtu, ingress }, sysctls };
  });
}

/**
 * Put the namespace back as the snapshot found it. Nothing to do when it is gone or is another
 * namespace now. Continues past failures and returns them.
 */
export async function restoreSandbox(s: SandboxState): Promise<string[]> {
  const id = identity(s.netns);
  if (!id || id.ino !== s.ino || id.dev !== s.dev) return [];
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (e) {
      problems.push(`${what}: ${(e as Error).message}`);
    }
  };
  await withNs(s.netns, async (rtnl) => {
    if (!s.lo.ingress)
      await attempt(`removing the ingress qdisc of ${s.lo.name}`, () => new Tc(rtnl.session).removeQdiscIfExists({ ifindex: s.lo.index, kind: 'ingress' }));
    // The kernel refuses lo's usual all-zero MAC (EADDRNOTAVAIL): that one stays as ADD set it.
    const zeroMac = /^(00:)*00$/.test(s.lo.address);
    const lo = await rtnl.links.find(s.lo.index);
    if (lo && (((lo.address ?? '') !== s.lo.address && !zeroMac) || lo.mtu !== s.lo.mtu)) {
      await attempt(`restoring ${s.lo.name}'s MAC and MTU`, () => rtnl.links.set(s.lo.index, { ...(zeroMac ? {} : { address: s.lo.address }), mtu: s.lo.mtu }));
    }
    for (const [key, value] of Object.entries(s.sysctls)) {
      await attempt(`restoring ${key.replace(/\//g, '.')}`, () => {
        const parts = key.split('/');
        if (rtnl.readSysctl(parts) !== value) rtnl.writeSysctl(parts, value);
      });
    }
  });
  return problems;
}

/** The snapshots, one file per container id under `<work_dir>/cni/`. */
export class SandboxStore {
  readonly dir: string;
  constructor(workDir: string) {
    this.dir = join(workDir, 'cni');
  }
  private path(id: string): string {
    return join(this.dir, `${id}.json`);
  }
  read(id: string): SandboxState | undefined {
    try {
      return JSON.parse(readFileSync(this.path(id), 'utf8')) as SandboxState;
    } catch {
      return undefined;
    }
  }
  write(id: string, s: SandboxState): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path(id)}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(s, null, 2) + '\n');
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path(id));
  }
  delete(id: string): void {
    try {
      unlinkSync(this.path(id));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}
