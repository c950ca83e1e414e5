/**
 * A full cleanup: every container destroyed, the warm pool emptied, and everything the isolator
 * did to the host undone.
 */
import type { CleanupReport } from './engine.js';
import type { EngineCore } from './engine-core.js';
import { forgetHostConfig } from './host-config.js';
import { tearDownHost } from './host-setup.js';
import { recoverLocked, syncAndRepair } from './recovery.js';
import { teardown } from './teardown.js';

/** How long cleanup lets go of the work_dir lock between two containers, for waiting requests to get in. */
const CLEANUP_PAUSE_MS = 2;
/**
 * Veth deletions left running at once: each holds a thread of libuv's pool (4 by default) while
 * the kernel waits for RCU, and a request's deadline runs from when it is queued, so an unbounded
 * backlog at thousands of containers would time out deletions that succeed. 32 keeps the queue
 * far inside the deadline and costs little: cleanup of 1000 took 6.8 s unbounded, 7.1–7.2 s at
 * 32, 10.2 s at 8 (bench/cleanup-late-creates.sh).
 */
const DELETIONS_IN_FLIGHT = 32;

/** See Isolator.cleanup. */
export async function cleanup(core: EngineCore): Promise<CleanupReport> {
  core.pool.pause();
  const report: CleanupReport = { destroyed: [], errors: [] };
  // Every container there when cleanup starts goes, one per hold of the lock with a pause
  // between, so that other processes' requests interleave with a long cleanup instead of
  // waiting for all of it. One created meanwhile stays, and so does the host's setup it needs.
  const ids = await core.store.withLock(async () => {
    report.errors.push(...(await recoverLocked(core)).errors);
    return [...core.registry.records.keys()];
  });
  // The veth deletions overlap (each waits for RCU in the kernel): all awaited before the host's setup goes.
  const deletions: Array<Promise<Error | undefined>> = [];
  for (const id of ids) {
    if (deletions.length >= DELETIONS_IN_FLIGHT) await deletions[deletions.length - DELETIONS_IN_FLIGHT];
    await core.store.withLock(async () => destroyForCleanup(core, id, report, deletions));
    await new Promise((r) => setTimeout(r, CLEANUP_PAUSE_MS));
  }
  for (const e of await Promise.all(deletions)) if (e) report.errors.push(e.message);
  return core.store.withLock(async () => {
    await syncAndRepair(core);
    if (core.registry.records.size) return report; // created while it ran: kept, with the host's setup
    await dropSpares(core, report);
    await undoHost(core, report);
    // Nothing is left that was built with the stored flags: the next create may give others.
    if (!report.errors.length) forgetHostConfig(core.store.workDir);
    return report;
  });
}

/** Destroy one container for cleanup (under the lock), if it is still there. */
async function destroyForCleanup(core: EngineCore, id: string, report: CleanupReport, deletions: Array<Promise<Error | undefined>>): Promise<void> {
  await syncAndRepair(core);
  const rec = core.registry.records.get(id);
  if (!rec) return;
  const errs = await teardown(core, rec, { wait: false, deletions });
  report.errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
  core.forgetContainer(rec);
  report.destroyed.push(rec.id);
}

/** Every spare of the warm pool. */
async function dropSpares(core: EngineCore, report: CleanupReport): Promise<void> {
  // All at once: each veth deletion waits for an RCU grace period in the kernel (~20 ms), and they overlap.
  const spares = core.store.listSpares();
  const dropped = await Promise.allSettled(spares.map((sp) => core.pool.drop(sp)));
  spares.forEach((sp, i) => {
    const d = dropped[i]!;
    const errs = d.status === 'fulfilled' ? d.value : [d.reason as Error];
    report.errors.push(...errs.map((e) => `spare ${sp.seq}: ${e.message}`));
  });
}

/** The host's setup (filters, tables, qdiscs, lo's MAC and MTU, sysctls) and the container /proc. */
async function undoHost(core: EngineCore, report: CleanupReport): Promise<void> {
  const hostRec = core.store.readHost();
  if (hostRec) {
    const errs = await tearDownHost(core.session, core.host, hostRec, core.ctx);
    report.errors.push(...errs.map((e) => `host: ${e.message}`));
    core.store.deleteHost();
    core.hostRecord = undefined;
    core.unheldDropPut = false;
    core.hostPairsReady.clear();
    core.registry.generation = core.store.bumpGeneration();
  }
  try {
    core.containerProc.close(); // also one a crashed process left mounted
  } catch (e) {
    report.errors.push(`${core.containerProc.dir}: ${(e as Error).message}`);
  }
}
