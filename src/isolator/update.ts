/**
 * Changing a running container's non-ephemeral ports, as a transaction: the target and the new
 * filters' handles are checkpointed ('updating'), the new filters added, then (record marked
 * `removing`) the old ones removed. A crash is rolled back before `removing`, forward after it.
 */
import { Netns } from '../netlink/index.js';
import { filterRequest } from '../tc/index.js';
import { ruleRequests } from '../rtnl/index.js';
import { firstFailure } from './batch.js';
import type { ContainerInfo } from './engine.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError, UnknownContainerError } from './errors.js';
import { hostView } from './host-setup.js';
import type { PortPlan } from './plan.js';
import { isEmptyPlan, keptHostPortFilters, nextHostPortFilters, planDiff, portPlan } from './plan.js';
import type { PortSet } from './port-set.js';
import { blocksOf, hostFilterRecords, toInfo } from './records.js';
import type { ContainerRecord } from './state.js';
import { removePlanned } from './teardown.js';
import type { Stopwatch } from './timing.js';

/**
 * The port plan of a container with the ports `ports` instead of its own: the filters of blocks
 * it keeps are the ones it has (same handles), blocks it gains get new host filters (handles
 * from the registry, or `hostFilters` when those were recorded already).
 */
function planWithPorts(
  core: EngineCore,
  rec: ContainerRecord,
  current: PortPlan,
  ports: Array<[number, number]>,
  hostFilters?: ContainerRecord['hostFilters'],
): PortPlan {
  const view = core.view(rec, blocksOf({ ephemeralPorts: rec.ephemeralPorts, ports }));
  const h = hostView(core.host);
  const hostPorts = hostFilters
    ? [...keptHostPortFilters(current.hostPorts, view.blocks), ...core.recordedHostPorts(rec, hostFilters)]
    : nextHostPortFilters(h, view, current.hostPorts, core.registry.nodes, core.flowOf(rec));
  return portPlan(h, view, hostPorts);
}

/** An update's two plans, from its record: the current ports' and the target's (its new host filters recorded as pendingFilters). */
function updatePlans(core: EngineCore, rec: ContainerRecord): { before: PortPlan; after: PortPlan } {
  const before = core.portPlan(rec);
  return { before, after: planWithPorts(core, rec, before, rec.pendingPorts ?? rec.ports, rec.pendingFilters ?? []) };
}

/**
 * Change a container's ports (under the lock, state in sync). New filters are added before old
 * ones are removed, so traffic on ports kept never stops; if adding fails, what was added is
 * removed and the container (kernel and record) is as before.
 */
export async function updateContainer(core: EngineCore, id: string, ports: PortSet, sw: Stopwatch): Promise<ContainerInfo> {
  const rec = core.registry.records.get(id);
  if (!rec || rec.phase !== 'ready') throw new UnknownContainerError(id);
  core.checkPorts(ports, id);
  const before = core.portPlan(rec);
  const after = planWithPorts(core, rec, before, ports.ranges);
  const added = planDiff(after, before);
  if (isEmptyPlan(added) && isEmptyPlan(planDiff(before, after))) return toInfo(rec);

  // Checkpoint the target and the handles about to exist, so a crash can be rolled back.
  rec.phase = 'updating';
  core.registry.setPorts(rec, rec.ports, ports.ranges);
  rec.pendingFilters = hostFilterRecords(added.hostPorts);
  core.saveRecord(rec);
  const ns = Netns.fromPath(rec.netns);
  try {
    const err = await addPlanned(core, added, ns);
    if (err) {
      await rollBackUpdate(core, rec, ns);
      throw new IsolatorError(`Failed to update container ${id}: ${err.message}; its ports are unchanged`, [err]);
    }
    sw.lap('add');
    rec.removing = true;
    core.saveRecord(rec);
    sw.lap('adopt');
    const errors = await rollForwardUpdate(core, rec, ns);
    sw.lap('remove');
    if (errors.length) core.warnOnce(`update of ${id}: some old filters could not be removed: ${errors.map((e) => e.message).join(', ')}`);
    return toInfo(rec);
  } finally {
    ns.close();
  }
}

/** Add: veth filters, then the host port filters pointing at the veth, then the container's. The first failure, if any. */
async function addPlanned(core: EngineCore, added: PortPlan, ns: Netns): Promise<Error | undefined> {
  try {
    const err = firstFailure(await core.session.batch([...added.veth, ...added.hostPorts.map((f) => f.spec)].map((s) => filterRequest('add', s))));
    if (err) return err;
    if (!added.container.length) return undefined;
    return await core.inContainer(ns, async (cs) => firstFailure(await cs.batch(added.container.map(ruleRequests.add))));
  } catch (e) {
    return e as Error;
  }
}

/** Undo the adding half of an update (what its target plan has and the current one has not): the container keeps its old ports. */
export async function rollBackUpdate(core: EngineCore, rec: ContainerRecord, ns: Netns): Promise<Error[]> {
  const { before, after } = updatePlans(core, rec);
  const errors = await removePlanned(core, rec, ns, planDiff(after, before));
  for (const f of rec.pendingFilters ?? []) core.registry.releaseNode(f);
  endUpdate(core, rec);
  return errors;
}

/** Finish an update whose new filters all exist: remove what the current plan has and the target's has not, adopt the new ports. */
export async function rollForwardUpdate(core: EngineCore, rec: ContainerRecord, ns: Netns): Promise<Error[]> {
  const { before, after } = updatePlans(core, rec);
  const gone = planDiff(before, after);
  const goneHandles = new Set(gone.hostPorts.map((f) => `${f.role} ${f.spec.handle}`));
  const removed = rec.hostFilters.filter((f) => goneHandles.has(`${f.dev} ${f.handle}`));
  const errors = await removePlanned(core, rec, ns, gone);
  for (const f of removed) core.registry.releaseNode(f);
  rec.hostFilters = [...rec.hostFilters.filter((f) => !removed.includes(f)), ...(rec.pendingFilters ?? [])];
  core.registry.setPorts(rec, rec.pendingPorts ?? rec.ports, undefined);
  endUpdate(core, rec);
  return errors;
}

/** The update is over (either way): the record is 'ready' again. */
function endUpdate(core: EngineCore, rec: ContainerRecord): void {
  rec.phase = 'ready';
  core.registry.setPorts(rec, rec.ports, undefined);
  delete rec.pendingFilters;
  delete rec.removing;
  core.saveRecord(rec);
}
