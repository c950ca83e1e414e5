/**
 * A process taking the work_dir lock, for lock.test.ts (no network, no namespaces):
 *   lock-child.ts WORK_DIR HOLD_MS TIMEOUT_MS
 * Takes the lock (waiting up to TIMEOUT_MS), checks that nobody else holds it (a marker file made
 * with O_EXCL), holds it HOLD_MS ('stdin': until its stdin closes), and bumps the generation.
 * Prints 'waiting' if it had to wait (the non-blocking try failed) and 'locked' once it holds the
 * lock. Exit 0 done, 3 on a lock timeout, 1 anything else.
 */
import { closeSync, constants, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { nativeShim } from '../../src/netlink/shim.js';
import { LockTimeoutError, StateStore } from '../../src/isolator/state.js';

const [workDir, hold, timeout] = process.argv.slice(2) as [string, string, string];
const shim = nativeShim();
const store = new StateStore(workDir, {
  flock: (fd, op) => shim.flock(fd, op),
  flockCancel: (cancel) => shim.flockCancel(cancel),
  flockAsync: (fd, op, cancel) => {
    process.stdout.write('waiting\n');
    return shim.flockAsync(fd, op, cancel);
  },
});
const marker = join(workDir, 'holder');
try {
  await store.withLock(async () => {
    closeSync(openSync(marker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)); // EEXIST: not exclusive
    const gen = Number(store.readGeneration());
    process.stdout.write('locked\n');
    if (hold === 'stdin') {
      process.stdin.resume();
      await new Promise((resolve) => process.stdin.on('end', resolve));
    } else await new Promise((resolve) => setTimeout(resolve, Number(hold)));
    unlinkSync(marker);
    if (store.bumpGeneration() !== String(gen + 1)) throw new Error('generation changed while locked');
  }, Number(timeout));
  process.exit(0);
} catch (e) {
  process.stderr.write(`${(e as Error).name}: ${(e as Error).message}\n`);
  process.exit(e instanceof LockTimeoutError ? 3 : 1);
}
