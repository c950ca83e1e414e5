import { closeSync, constants as fsConstants, openSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { LOCK } from '../netlink/constants.js';
import type { NativeShim } from '../netlink/shim.js';
import { nativeShim } from '../netlink/shim.js';
import { IsolatorError, LockTimeoutError } from './errors.js';

export { LockTimeoutError } from './errors.js';

const { ECANCELED, EWOULDBLOCK } = osConstants.errno;

/** The system calls the lock needs: the native shim's, or a stand-in. */
export type FlockCalls = Pick<NativeShim, 'flock' | 'flockAsync' | 'flockCancel'>;

/** A blocking flock in flight: the fd it locks, its cancel flag, and whether a caller still wants it. */
interface Wait {
  fd: number;
  cancel: Int32Array;
  result: Promise<number>;
  claimed: boolean;
}

/**
 * The work_dir lock: flock(2) on <work_dir>/lock, exclusive between processes (and between open
 * files of one process); the kernel drops a dead holder's lock. A taker first tries without
 * blocking; if the lock is held it waits in the kernel (a blocking flock off the main thread), so
 * it gets the lock as soon as the holder lets go instead of at its next poll, and a steady stream
 * of takers cannot starve it between polls.
 *
 * A taker that times out marks its wait unclaimed and interrupts it (flockCancel: the thread
 * leaves flock(2) before the call returns, so nothing keeps the process from exiting); a lock the
 * worker got just before is given straight back (by the worker, or here). A wait still in flight
 * is adopted by the next taker instead of starting another, so a process never has more than one
 * threadpool thread blocked on the lock. Not re-entrant, and for one taker at a time (StateStore
 * serialises its callers).
 */
export class WorkDirLock {
  private wait: Wait | undefined;
  private readonly calls: FlockCalls;

  constructor(
    readonly workDir: string,
    calls?: FlockCalls,
  ) {
    this.calls = calls ?? nativeShim();
  }

  get path(): string {
    return join(this.workDir, 'lock');
  }

  /** Take the lock, waiting up to `timeoutMs`: returns the fd that holds it (for `release`). */
  async acquire(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let wait = this.wait;
      if (!wait) {
        const fd = openSync(this.path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
        const rc = this.calls.flock(fd, LOCK.EX | LOCK.NB);
        if (rc === 0) return fd;
        if (rc !== -EWOULDBLOCK) this.fail(fd, rc);
        wait = this.startWait(fd);
      }
      const rc = await this.claim(wait, deadline - Date.now());
      if (rc === 'timeout') throw new LockTimeoutError(`${this.workDir} is locked by another portmap-isolator process (waited ${timeoutMs} ms)`);
      if (rc === 0) return wait.fd;
      // -ECANCELED: the worker gave the lock back before this taker adopted the wait; try again.
      if (rc !== -ECANCELED) this.fail(wait.fd, rc);
      closeSync(wait.fd);
    }
  }

  release(fd: number): void {
    this.calls.flock(fd, LOCK.UN);
    closeSync(fd);
  }

  private fail(fd: number, rc: number): never {
    closeSync(fd);
    throw new IsolatorError(`cannot lock ${this.workDir}: flock failed with errno ${-rc}`);
  }

  private startWait(fd: number): Wait {
    const cancel = new Int32Array(new SharedArrayBuffer(4));
    let result: Promise<number>;
    try {
      result = this.calls.flockAsync(fd, LOCK.EX, cancel);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    const wait: Wait = { fd, cancel, result, claimed: false };
    this.wait = wait;
    // Runs before the claimant's continuation: the outcome is the claimant's; with none (it timed
    // out), a lock the worker got before seeing the flag is released here.
    result
      .then((rc) => {
        if (this.wait === wait) this.wait = undefined;
        if (wait.claimed) return;
        if (rc === 0) this.calls.flock(fd, LOCK.UN);
        closeSync(fd);
      })
      .catch(() => undefined);
    return wait;
  }

  /** Wait for `wait` up to `ms`: its outcome, or 'timeout' (the wait is then unclaimed). */
  private async claim(wait: Wait, ms: number): Promise<number | 'timeout'> {
    wait.claimed = true;
    Atomics.store(wait.cancel, 0, 0);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(
        () => {
          // Unclaimed before any other callback can run: the outcome is then never taken as ours.
          wait.claimed = false;
          this.calls.flockCancel(wait.cancel);
          resolve('timeout');
        },
        Math.max(0, ms),
      );
    });
    try {
      return await Promise.race([wait.result, timedOut]);
    } finally {
      clearTimeout(timer);
    }
  }
}
