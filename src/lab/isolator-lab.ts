/** A lab set up for the isolator: a work_dir of its own, the host's ephemeral range out of the pool. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IsolatorFlags } from '../isolator/index.js';
import { Isolator } from '../isolator/index.js';
import { Netns, unmountProcfs } from '../netlink/index.js';
import { writeSysctl } from '../rtnl/index.js';
import { Lab } from './lab.js';
import type { LabOptions } from './lab.js';

/** The Mesos test fixture (reference §9.1). */
export const FIXTURE: IsolatorFlags = { resources: 'cpus:2;mem:1024;ports:[31000-32000];ephemeral_ports:[30001-30999]', ephemeral_ports_per_container: 16 };

/** The lab host's own ephemeral ports: above every pool the lab's users configure. */
export const LAB_HOST_LOCAL_PORTS = '61000 65000';

/**
 * Where a benchmark keeps its work_dir: on tmpfs, like the default /var/run/portmap-isolator of a
 * systemd host (/run is tmpfs there; on the benchmark VM it is not, and ext4 file creation there
 * takes 20 µs–5 ms). /dev/shm when it is tmpfs, else the temp dir.
 */
export function tmpfsDir(): string {
  try {
    const mounts = readFileSync('/proc/self/mounts', 'utf8');
    if (mounts.split('\n').some((l) => l.split(' ')[1] === '/dev/shm' && l.split(' ')[2] === 'tmpfs')) return '/dev/shm';
  } catch {
    /* no /proc: use the temp dir */
  }
  return tmpdir();
}

/**
 * A Lab (host and world namespaces) with the host's ephemeral range set out of the pool, a
 * work_dir of its own, and the Isolators opened on it; destroy() (in finally/afterAll) cleans
 * them up and removes the namespaces and the work_dir.
 */
export class IsolatorLab {
  /** The namespaces: `lab.host` is where the isolator runs. */
  readonly lab: Lab;
  /** The isolators' work_dir (removed by destroy()). */
  readonly workDir: string;
  private readonly isolators: Isolator[] = [];

  /** `workDirBase`: where the work_dir is made (default: the temp dir); `labOptions`: the Lab's (IPv6, say). */
  constructor(workDirBase = tmpdir(), labOptions: LabOptions = {}) {
    this.lab = new Lab(labOptions);
    try {
      // The host's own ephemeral ports must not overlap the pool (Mesos §1.3 step 9).
      const host = Netns.fromName(this.lab.host);
      try {
        writeSysctl(host, 'net.ipv4.ip_local_port_range', LAB_HOST_LOCAL_PORTS);
      } finally {
        host.close();
      }
      this.workDir = mkdtempSync(join(workDirBase, 'pmi-work-'));
    } catch (e) {
      this.lab.destroy();
      throw e;
    }
  }

  /** Open an Isolator on the lab host with `flags` (default FIXTURE); its warnings are pushed to `warnings`. */
  async open(flags: IsolatorFlags = FIXTURE, warnings: string[] = [], extra: { warmPool?: number } = {}): Promise<Isolator> {
    const iso = await Isolator.open({ netns: this.lab.host, workDir: this.workDir, flags, onWarning: (m) => warnings.push(m), ...extra });
    this.isolators.push(iso);
    return iso;
  }

  /** Clean up and close every isolator opened here, remove the lab's namespaces and the work_dir. Never throws for what is already gone. */
  async destroy(): Promise<void> {
    for (const iso of this.isolators.splice(0)) {
      await iso.cleanup().catch(() => undefined);
      await iso.close().catch(() => undefined);
    }
    this.lab.destroy();
    // Never recurse into a procfs the engine may have left mounted there (see ContainerProc).
    unmountProcfs(join(this.workDir, 'proc'));
    rmSync(this.workDir, { recursive: true, force: true, maxRetries: 0 });
  }
}
