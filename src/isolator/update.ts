/**
 * Changing a running container's non-ephemeral ports, as a transaction: the target and the new
 * filters' handles are checkpointed ('updating'), the new filters added, then (record marked
 * `removing`) the old ones removed. A crash is rolled back before `removing`, forward after it.
 */
import { Netns } from '../netlink/index.js';
import { firstFailure } from './batch.js';
import type { ContainerInfo } from './engine.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError, UnknownContainerError } from './errors.js';
import { hostView } from './host-setup.js';
import type { ContainerView, HostView, U32FilterPlan } from './plan.js';
import { containerPortFilters, hostPortFilters, vethPortFilters } from './plan.js';
import type { PortBlock } from './port-blocks.js';
import { portBlocks } from './port-blocks.js';
import { PortSet } from './port-set.js';
import { hostFilterRecords, toInfo } from './records.js';
import type { ContainerRecord } from './state.js';
import { tcRequest } from './tc-requests.js';
import { removeBlocks } from './teardown.js';
import type { Stopwatch } from './timing.js';

/** The blocks of `next` that `current` does not have, and the reverse. */
function blockDelta(current: PortSet, next: PortSet): { toAdd: PortBlock[]; toRemove: PortBlock[] } {
  const same = (a: PortBlock, b: PortBlock) => a.begin === b.begin && a.end === b.end;
  const oldBlocks = portBlocks(current);
  const newBlocks = portBlocks(next);
  return { toAdd: newBlocks.filter((b) => !oldBlocks.some((o) => same(o, b))), toRemove: oldBlocks.filter((b) => !newBlocks.some((n) => same(n, b))) };
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
  const { toAdd, toRemove } = blockDelta(PortSet.ofRanges(rec.ports), ports);
  if (!toAdd.length && !toRemove.length) return toInfo(rec);

  const h = hostView(core.host);
  const view = core.view(rec, toAdd);
  const added = hostPortFilters(h, view, toAdd, core.registry.nodes, rec.flowId !== undefined ? { qdisc: core.flowQdisc, flowId: rec.flowId } : undefined);
  // Checkpoint the target and the handles about to exist, so a crash can be rolled back.
  rec.phase = 'updating';
  rec.pendingPorts = ports.ranges;
  rec.pendingFilters = hostFilterRecords(added);
  core.saveRecord(rec);
  const ns = Netns.fromPath(rec.netns);
  try {
    const err = await addPortFilters(core, h, view, added, ns);
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
async function addPortFilters(core: EngineCore, h: HostView, view: ContainerView, added: U32FilterPlan[], ns: Netns): Promise<Error | undefined> {
  try {
    const err = firstFailure(await core.session.batch([...vethPortFilters(h, view), ...added].map((p) => tcRequest(p, 'add', core.ctx))));
    if (err) return err;
    return await core.inContainer(ns, async (cs) => firstFailure(await cs.batch(containerPortFilters(view).map((p) => tcRequest(p, 'add', core.ctx)))));
  } catch (e) {
    return e as Error;
  }
}

/** Blocks of the ports an update moves to that the current ports do not have (and the reverse). */
function updateDelta(rec: ContainerRecord): { toAdd: PortBlock[]; toRemove: PortBlock[] } {
  return blockDelta(PortSet.ofRanges(rec.ports), PortSet.ofRanges(rec.pendingPorts ?? rec.ports));
}

/** Undo the adding half of an update: the container keeps its old ports. */
export async function rollBackUpdate(core: EngineCore, rec: ContainerRecord, ns: Netns): Promise<Error[]> {
  const errors = await removeBlocks(core, rec, ns, updateDelta(rec).toAdd, rec.pendingFilters ?? []);
  for (const f of rec.pendingFilters ?? []) core.registry.releaseNode(f);
  endUpdate(core, rec);
  return errors;
}

/** Finish an update whose new filters all exist: remove the old blocks' filters, adopt the new ports. */
export async function rollForwardUpdate(core: EngineCore, rec: ContainerRecord, ns: Netns): Promise<Error[]> {
  const { toRemove } = updateDelta(rec);
  const removed = rec.hostFilters.filter((f) => toRemove.some((b) => f.block[0] === b.begin && f.block[1] === b.end));
  const errors = await removeBlocks(core, rec, ns, toRemove, removed);
  for (const f of removed) core.registry.releaseNode(f);
  rec.hostFilters = [...rec.hostFilters.filter((f) => !removed.includes(f)), ...(rec.pendingFilters ?? [])];
  rec.ports = rec.pendingPorts ?? rec.ports;
  endUpdate(core, rec);
  return errors;
}

/** The update is over (either way): the record is 'ready' again. */
function endUpdate(core: EngineCore, rec: ContainerRecord): void {
  rec.phase = 'ready';
  delete rec.pendingPorts;
  delete rec.pendingFilters;
  delete rec.removing;
  core.saveRecord(rec);
}
