/**
 * Recovery: finishing what a dead process left (interrupted creates, updates, destroys), and
 * recover() — rebuilding from the checkpoint cross-checked with the kernel, removing objects no
 * record names and putting back host filters found missing.
 */
import { readdirSync, statSync } from 'node:fs';
import type { Request } from '../netlink/index.js';
import { NetlinkError, Netns, removeNetns } from '../netlink/index.js';
import { linkRequests } from '../rtnl/index.js';
import { filterRequest, formatU32Handle } from '../tc/index.js';
import { firstFailure } from './batch.js';
import type { RecoverReport } from './engine.js';
import type { EngineCore } from './engine-core.js';
import type { HostDamage } from './host-check.js';
import { describeDamage, inspectHost } from './host-check.js';
import { hostView, sharedLayoutKey, putUnheldPortsDrop, repairSharedLayout } from './host-setup.js';
import { changedGatewayMac, putGatewayEverywhere } from './gateway.js';
import { ECHO_FANOUT_PAIR, SHAPER_PAIR, ensureHostPair, missingHostPairs } from './host-pairs.js';
import { hostPortFilterAt, htbQuantum, isPortFilterHandle, shaperClassPlan, tcObjectRequest } from './plan.js';
import { blockFromBeginEnd } from './port-blocks.js';
import { mirrorChunkOf } from './records.js';
import type { ContainerRecord, HostRecord, SpareRecord } from './state.js';
import { teardown } from './teardown.js';
import { rollBackUpdate, rollForwardUpdate } from './update.js';

type Link = { index: number; name: string };

function pinExists(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Pins in the work_dir: containers' (by id, or a spare's `.spare-N` a container took), spares',
 * and scratch probes (doctor's, the CNI plugin's STATUS) of processes that died.
 */
function listPins(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => {
      const probe = /^\.(?:probe|doctor|status)-(\d+)$/.exec(n);
      if (!probe) return !n.startsWith('.') || /^\.spare-\d+$/.test(n);
      try {
        process.kill(Number(probe[1]), 0);
        return false; // its process is alive
      } catch {
        return true;
      }
    });
  } catch {
    return [];
  }
}

/** sync() and finish interrupted operations of dead processes: the start of every change. */
export async function syncAndRepair(core: EngineCore): Promise<void> {
  core.sync();
  let interrupted = false;
  for (const r of core.registry.records.values()) if (r.phase !== 'ready') interrupted = true;
  if (interrupted) {
    const r = await finishInterrupted(core);
    for (const c of r.cleaned) core.warnOnce(`cleaned up container ${c.id}: ${c.reason}`);
    for (const e of r.errors) core.warnOnce(`while finishing an interrupted operation: ${e}`);
  }
}

/**
 * Finish what a dead process left: a create or destroy that did not complete is torn down, an
 * update is rolled back (or forward, once its new filters all existed). Called under the lock,
 * where any record not 'ready' cannot belong to a live operation. Returns what went wrong.
 */
async function finishInterrupted(core: EngineCore, links?: Link[]): Promise<{ cleaned: Array<{ id: string; reason: string }>; errors: string[] }> {
  const out = { cleaned: [] as Array<{ id: string; reason: string }>, errors: [] as string[] };
  for (const rec of [...core.registry.records.values()]) {
    const reason = whyTornDown(rec, links);
    if (!reason && rec.phase === 'updating') await finishUpdate(core, rec, out.errors);
    if (reason) {
      const errs = await teardown(core, rec, { wait: true });
      out.errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
      core.forgetContainer(rec);
      out.cleaned.push({ id: rec.id, reason });
    }
  }
  return out;
}

/** Why a container is to be torn down (undefined: it is not); `links` checks that its veth and pin still exist. */
function whyTornDown(rec: ContainerRecord, links: Link[] | undefined): string | undefined {
  if (rec.phase === 'creating' || rec.phase === 'destroying') return `interrupted while ${rec.phase}`;
  if (links && !links.some((l) => l.index === rec.vethIndex && l.name === rec.veth)) return 'its veth is gone';
  if (links && (rec.ownsNetns || rec.pinned) && !pinExists(rec.netns)) return 'its network namespace is gone';
  return undefined;
}

/** An interrupted update: forward once its new filters all existed (`removing`), else back. */
async function finishUpdate(core: EngineCore, rec: ContainerRecord, errors: string[]): Promise<void> {
  let ns: Netns | undefined;
  try {
    ns = Netns.fromPath(rec.netns);
    const errs = rec.removing ? await rollForwardUpdate(core, rec, ns) : await rollBackUpdate(core, rec, ns);
    errors.push(...errs.map((e) => `${rec.id}: ${e.message}`));
  } catch (e) {
    errors.push(`${rec.id}: ${(e as Error).message}`);
  } finally {
    ns?.close();
  }
}

/** recover() under the lock (see Isolator.recover). */
export async function recoverLocked(core: EngineCore): Promise<RecoverReport> {
  const report: RecoverReport = { recovered: [], cleaned: [], orphans: { veths: [], netns: [], filters: [], files: [] }, repaired: [], errors: [] };
  core.pool.pruneHandles();
  core.registry.reset(core.store.listContainers());
  core.registry.generation = core.store.readGeneration();
  const links = await core.rtnl.links.list();
  const hostRec = core.store.readHost();
  const finished = await finishInterrupted(core, links);
  report.cleaned.push(...finished.cleaned);
  report.errors.push(...finished.errors);
  report.recovered.push(...[...core.registry.records.values()].map((r) => r.id));
  const spares = await keepWholeSpares(core, links, report);
  await removeOrphanVeths(core, links, spares, report);
  removeOrphanPins(core, spares, report);
  try {
    report.orphans.files.push(...core.store.sweepLeftovers());
  } catch (e) {
    report.errors.push(`state files: ${(e as Error).message}`);
  }
  if (hostRec) await recoverHostFilters(core, hostRec, report);
  return report;
}

/** Spares: half-made ones, and ready ones that lost their veth or pin, are removed; the others are returned. */
async function keepWholeSpares(core: EngineCore, links: Link[], report: RecoverReport): Promise<SpareRecord[]> {
  const spares: SpareRecord[] = [];
  for (const sp of core.store.listSpares()) {
    // (One made by an older version, or for other host facts, would never be taken.)
    const whole = core.pool.fits(sp, core.host.eth0.name) && links.some((l) => l.index === sp.vethIndex && l.name === sp.veth) && pinExists(sp.netns);
    if (whole) {
      spares.push(sp);
      continue;
    }
    const errs = await core.pool.drop(sp);
    report.errors.push(...errs.map((e) => `spare ${sp.seq}: ${e.message}`));
  }
  return spares;
}

/** Orphans: our veths without a record. */
async function removeOrphanVeths(core: EngineCore, links: Link[], spares: SpareRecord[], report: RecoverReport): Promise<void> {
  const known = new Set([...[...core.registry.records.values()].map((r) => r.vethIndex), ...spares.map((sp) => sp.vethIndex)]);
  for (const l of links) {
    if (!/^pmi\d+$/.test(l.name) || known.has(l.index)) continue;
    try {
      await core.session.request(linkRequests.delete(l.index), { offload: true });
      report.orphans.veths.push(l.name);
    } catch (e) {
      if (!(e instanceof NetlinkError && e.code === 'ENODEV')) report.errors.push(`${l.name}: ${(e as Error).message}`);
    }
  }
}

/** Orphans: namespace pins without a record. */
function removeOrphanPins(core: EngineCore, spares: SpareRecord[], report: RecoverReport): void {
  const pins = new Set([...[...core.registry.records.values()].filter((r) => r.ownsNetns).map((r) => r.netns), ...spares.map((sp) => sp.netns)]);
  for (const name of listPins(core.store.netnsDir)) {
    const path = `${core.store.netnsDir}/${name}`;
    if (pins.has(path)) continue;
    try {
      removeNetns(path);
      report.orphans.netns.push(path);
    } catch (e) {
      report.errors.push(`${path}: ${(e as Error).message}`);
    }
  }
}

/**
 * The shared objects and every container's port filters, checked against the records and put
 * back where missing; then port-table filters no record owns are removed, and the mirrors rewritten.
 */
async function recoverHostFilters(core: EngineCore, hostRec: HostRecord, report: RecoverReport): Promise<void> {
  let damage: HostDamage | undefined;
  try {
    damage = await inspectHost(core.session, core.host, core.registry.records.values());
    // (A half-done host setup is finished by the next create or undone by cleanup; an older layout is rebuilt, not patched.)
    if (hostRec.complete !== false && hostRec.shared.layout === sharedLayoutKey(core.host)) {
      report.repaired.push(...(await repairHost(core, damage, hostRec, report.errors)));
      // (Replaced, not checked: it depends on this process's managed ports.)
      await putUnheldPortsDrop(core.session, core.host, core.managedPortRanges());
      core.unheldDropPut = true;
      // The echo fan-out and its copy on eth0 (the last a repair of eth0's tables does not make).
      core.hostPairsReady.delete(ECHO_FANOUT_PAIR.record);
      await ensureHostPair(core, ECHO_FANOUT_PAIR);
      await recoverShaper(core, report);
      for (const family of ['inet', 'inet6'] as const) {
        const mac = await changedGatewayMac(core, family);
        if (!mac) continue;
        const failed = await putGatewayEverywhere(core, mac, family);
        report.repaired.push(`the ${family === 'inet' ? '' : 'IPv6 '}gateway's MAC changed to ${mac}: given to the containers`);
        report.errors.push(...failed.map((f) => `gateway neighbour of ${f}`));
      }
    }
  } catch (e) {
    report.errors.push(`host filters: ${(e as Error).message}`);
  }
  if (damage) await removeStrayPortFilters(core, damage, report);
  const chunks = new Set([...core.registry.records.values()].map((r) => mirrorChunkOf(r)));
  const maxChunk = Math.max(0, ...chunks);
  const reqs: Request[] = [];
  for (let c = 0; c <= maxChunk + 1; c++) reqs.push(...core.mirrorRequests(c));
  const err = firstFailure(await core.session.batch(reqs), ['ENOENT', 'EINVAL', 'ENODEV']);
  if (err) report.errors.push(`mirrors: ${err.message}`);
}

/**
 * The egress shaper, when a container is shaped on the host: the pair and its objects made again
 * if they are gone, and every such container's class (with its leaf) and classifiers added where
 * missing (EEXIST: there).
 */
async function recoverShaper(core: EngineCore, report: RecoverReport): Promise<void> {
  const shaped = [...core.registry.records.values()].filter((r) => r.phase === 'ready' && r.egressOnHost && r.egress);
  if (!shaped.length) return;
  const wasThere = (await core.rtnl.links.find(SHAPER_PAIR.view.tx))?.index === SHAPER_PAIR.view.tx;
  core.hostPairsReady.delete(SHAPER_PAIR.record);
  await ensureHostPair(core, SHAPER_PAIR);
  const fq = core.fqCodel ?? (await core.probeFqCodel());
  const reqs: Request[] = [];
  for (const r of shaped) {
    const view = core.view(r);
    const quantum = htbQuantum(r.egress!.rateBytesPerSec, view.mtu);
    reqs.push(...shaperClassPlan(view.shaper!.view, view.shaper!.minor, r.egress!, fq, quantum).map((o) => tcObjectRequest(o, 'add', core.ctx)));
    reqs.push(
      ...core
        .recordedHostPorts(r)
        .filter((f) => f.role === 'shaper')
        .map((f) => filterRequest('add', f.spec)),
    );
  }
  const results = await core.session.batch(reqs);
  const made = results.filter((x) => x.ok).length;
  const err = firstFailure(results, ['EEXIST']);
  if (err) report.errors.push(`egress shaper: ${err.message}`);
  if (!wasThere || made) report.repaired.push(`egress shaper: ${wasThere ? '' : 'its pair and '}${made} of its containers' objects put back`);
}

/** Port-table filters on eth0 and lo that no record owns. */
async function removeStrayPortFilters(core: EngineCore, damage: HostDamage, report: RecoverReport): Promise<void> {
  const owned = new Set([...core.registry.records.values()].flatMap((r) => r.hostFilters.map((f) => `${f.dev}:${f.handle}`)));
  for (const dev of ['eth0', 'lo'] as const) {
    const stray = damage.dumps[dev].filters.filter((f) => isPortFilterHandle(f.handle) && !owned.has(`${dev}:${f.handle}`));
    const results = await core.session.batch(stray.map((f) => f.deleteRequest));
    stray.forEach((f, i) =>
      results[i]!.ok
        ? report.orphans.filters.push(`${dev} ${formatU32Handle(f.handle)}`)
        : report.errors.push(`${dev} filter ${formatU32Handle(f.handle)}: ${(results[i] as { error: Error }).error.message}`),
    );
  }
}

/** Put back missing shared objects and container port filters (recorded handles); what was done, one line each. */
async function repairHost(core: EngineCore, damage: HostDamage, hostRec: HostRecord, errors: string[]): Promise<string[]> {
  const done = describeDamage(damage, core.host);
  if (!done.length) return [];
  if (damage.shared.eth0.missing || damage.shared.lo.missing) {
    const tables = { eth0: damage.dumps.eth0.tables, lo: damage.dumps.lo.tables };
    const errs = await repairSharedLayout(core.session, core.host, hostRec, core.ctx, (r) => core.store.writeHost(r), tables);
    errors.push(...errs.map((e) => `repairing the shared port tables: ${e.message}`));
  }
  const hv = hostView(core.host);
  const plans = damage.filters.map(({ vethIndex, filter: f }) =>
    hostPortFilterAt(hv, vethIndex, f.dev, blockFromBeginEnd(f.block[0], f.block[1]), f.handle, undefined),
  );
  const results = await core.session.batch(plans.map((f) => filterRequest('add', f.spec)));
  results.forEach(
    (r, i) =>
      !r.ok &&
      errors.push(
        `container ${damage.filters[i]!.id}: re-adding its ${damage.filters[i]!.filter.dev} filter ${formatU32Handle(plans[i]!.spec.handle)}: ${r.error.message}`,
      ),
  );
  return done.map((d) => `${d}: put back`);
}

/** Problems with the host's shared objects and the containers' port filters, one line each (see Isolator.checkHost). */
export async function checkHostLocked(core: EngineCore): Promise<string[]> {
  core.sync();
  const hostRec = core.store.readHost();
  if (!hostRec || hostRec.complete === false || hostRec.shared.layout !== sharedLayoutKey(core.host)) return [];
  const drift = core.ipv6Drift();
  return [
    ...describeDamage(await inspectHost(core.session, core.host, core.registry.records.values()), core.host),
    ...(await missingHostPairs(core)),
    ...(drift ? [drift] : []),
  ];
}
