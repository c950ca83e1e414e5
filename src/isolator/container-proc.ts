/**
 * Which procfs the engine reaches a new container's /proc/sys through.
 *
 * Every network namespace leaves its own /proc/sys/net dentry in the machine's /proc, all in one
 * dcache hash chain, so a path walk from /proc/sys costs O(namespaces) (perf at a thousand
 * containers: proc_sys_compare in __d_lookup; 1.7 ms for a new namespace's first write). A procfs
 * of the engine's own has only the dentries of the containers it set up since it was mounted: it
 * is remounted every REMOUNT_EVERY containers (unmounting drops them). It is used from
 * PRIVATE_FROM containers on; below that /proc is as fast and nothing is mounted. Where a procfs
 * cannot be mounted (an unprivileged container), /proc is used, after one warning.
 */
import { mountProcfs, unmountProcfs } from '../netlink/index.js';

const PRIVATE_FROM = 64;
const REMOUNT_EVERY = 64;

export class ContainerProc {
  private mounted = false;
  private uses = 0;
  private failed = false;

  constructor(
    /** Mount point, under the work_dir. */
    readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {}

  /** The proc root for the next container's sysctls, given how many containers exist. */
  rootFor(containers: number): string {
    if (this.failed || containers < PRIVATE_FROM) return '/proc';
    if (!this.mounted || this.uses >= REMOUNT_EVERY) {
      try {
        mountProcfs(this.dir);
      } catch (e) {
        this.failed = true;
        this.mounted = false;
        this.warn(`cannot mount a procfs at ${this.dir} (${(e as Error).message}): container sysctls go through /proc, slower with many containers`);
        return '/proc';
      }
      this.mounted = true;
      this.uses = 0;
    }
    this.uses++;
    return this.dir;
  }

  /** Unmount (also one a crashed process left). */
  close(): void {
    unmountProcfs(this.dir);
    this.mounted = false;
  }
}
