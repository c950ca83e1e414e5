/**
 * Which procfs the engine reaches a new container's /proc/sys through.
 *
 * Every network namespace leaves its own /proc/sys/net dentry in the machine's /proc, all in one
 * dcache hash chain, so a path walk from /proc/sys costs O(namespaces) (perf at a thousand
 * containers: proc_sys_compare in __d_lookup; 1.7 ms for a new namespace's first write). A procfs
 * of the engine's own has only the dentries of the containers it set up since it was made: it is
 * replaced every REMOUNT_EVERY containers (dropping them). It is used from PRIVATE_FROM containers
 * on; below that /proc is as fast and nothing is mounted.
 *
 * The procfs is mounted under the work_dir, opened, and detached at once (umount2 MNT_DETACH): it
 * lives on through the open directory (`/proc/self/fd/N/...`) and nothing stays mounted, even if
 * the process dies. Where a procfs cannot be mounted (an unprivileged container), /proc is used,
 * after one warning.
 */
import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { mountProcfs, unmountProcfs } from '../netlink/index.js';

const PRIVATE_FROM = 64;
const REMOUNT_EVERY = 64;

export class ContainerProc {
  private fd = -1;
  private uses = 0;
  private failed = false;

  constructor(
    /** Where the procfs is mounted for a moment, under the work_dir. */
    readonly dir: string,
    private readonly warn: (message: string) => void,
  ) {}

  /** The proc root for the next container's sysctls, given how many containers exist. */
  rootFor(containers: number): string {
    if (this.failed || containers < PRIVATE_FROM) return '/proc';
    if (this.fd < 0 || this.uses >= REMOUNT_EVERY) {
      try {
        this.close();
        mountProcfs(this.dir);
        try {
          this.fd = openSync(this.dir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
        } finally {
          unmountProcfs(this.dir); // detached: reachable only through the open directory
        }
      } catch (e) {
        this.failed = true;
        this.releaseFd();
        this.warn(`cannot mount a procfs at ${this.dir} (${(e as Error).message}): container sysctls go through /proc, slower with many containers`);
        return '/proc';
      }
      this.uses = 0;
    }
    this.uses++;
    return `/proc/self/fd/${this.fd}`;
  }

  /** Let the procfs go (and unmount one a process that died mid-mount may have left). */
  close(): void {
    this.releaseFd();
    unmountProcfs(this.dir);
  }

  private releaseFd(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
