/**
 * Taking a container apart: all of it (destroy, and undoing a failed create), or part of its port
 * plan (an update): what one plan has and another has not.
 */
import type { BatchResult, NetlinkSession, Request } from '../netlink/index.js';
import { NetlinkError, Netns, removeNetns } from '../netlink/index.js';
import { Rules, addressRequests, linkRequests, ruleRequests } from '../rtnl/index.js';
import type { Rule } from '../rtnl/index.js';
import { classRequest, filterRequest, packMatches, qdiscRequest, tcHandle } from '../tc/index.js';
import type { U32FilterSpec } from '../tc/index.js';
import { firstFailure } from './batch.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError } from './errors.js';
import { dumpFilters } from './filter-dump.js';
import type { PortPlan } from './plan.js';
import { EMPTY_PORT_PLAN, HTB_HANDLE, INGRESS_HANDLE, planDiff, selfRoutingCleanup } from './plan.js';
import { mirrorChunkOf, retiredName } from './records.js';
import type { ContainerRecord } from './state.js';

/** What a delete of an object that is already gone answers. */
const GONE = ['ENOENT', 'ENODEV', 'EINVAL'];

/** A u32 filter by priority and packed keys (as the kernel holds them: value under mask): how planned filters with kernel-chosen handles are found in a dump. */
const keysId = (priority: number, keys: ReadonlyArray<{ off: number; val: number; mask: number }>): string =>
  `${priority} ${keys.map((k) => `${k.off}:${(k.val & k.mask) >>> 0}/${k.mask >>> 0}`).join(' ')}`;

/** Destroy a container (under the lock, state in sync); false if it does not exist. */
export async function destroyContainer(core: EngineCore, id: string): Promise<boolean> {
  const rec = core.registry.records.get(id);
  if (!rec) return false;
  rec.phase = 'destroying';
  core.saveRecord(rec);
  const errors = await teardown(core, rec, { wait: false });
  core.forgetContainer(rec);
  if (errors.length) throw new IsolatorError(`destroyed container ${id}, but: ${errors.map((e) => e.message).join(', ')}`, errors);
  return true;
}

/** How a teardown deletes the veth pair: waiting for it, or not (see teardown). */
export interface TeardownOptions {
  wait: boolean;
  /** With `wait: false`: deletions the caller awaits itself, all together (else background work). */
  deletions?: Array<Promise<Error | undefined>>;
}

/**
 * Remove a container's objects: host port filters by handle, its mirror slot, the veth (which
 * takes the container side with it) and the namespace pin. Continues past errors, returns them.
 * With `wait: false` the veth deletion (slow in the kernel: it waits for RCU) finishes in the
 * background after the veth is down and every filter pointing at it is gone.
 */
export async function teardown(core: EngineCore, rec: ContainerRecord, opts: TeardownOptions): Promise<Error[]> {
  const errors: Error[] = [];
  await removeHostFilters(core, rec, errors);
  // Whether the container's end no longer holds its interface name (see retireContainerEnd).
  const nameFreed = rec.ownsNetns ? false : await retireContainerEnd(core, rec, errors);
  if (rec.ownsNetns || rec.pinned) {
    try {
      removeNetns(rec.netns);
    } catch (e) {
      errors.push(e as Error);
    }
  }
  // A namespace that outlives us may get a new interface of the same name right away: wait,
  // unless that name was freed above.
  const mustWait = opts.wait || (!rec.ownsNetns && !nameFreed);
  await deleteVeth(core, rec, mustWait ? 'wait' : (opts.deletions ?? 'background'), errors);
  return errors;
}

/**
 * One batch: the host port filters by handle, the container out of its mirror chunk, its veth down.
 * Of its port plan (all of which goes: the plan against nothing) only the host port filters are
 * removed one by one; the veth's and the container's filters go with the veth.
 */
async function removeHostFilters(core: EngineCore, rec: ContainerRecord, errors: Error[]): Promise<void> {
  const reqs: Request[] = [];
  for (const f of planDiff(core.portPlan(rec), EMPTY_PORT_PLAN).hostPorts) reqs.push(filterRequest('delete', f.spec));
  // Its class on the shaper, once no filter classifies into it (the kernel refuses before: EBUSY).
  const shaper = core.shaperOf(rec);
  if (shaper) reqs.push(classRequest('delete', { kind: 'htb', ifindex: shaper.view.tx, parent: HTB_HANDLE, classid: tcHandle(1, shaper.minor) }, core.ctx));
  reqs.push(...core.mirrorRequests(mirrorChunkOf(rec), rec.id));
  reqs.push(linkRequests.set(rec.vethIndex, { up: false }));
  for (const r of await core.session.batch(reqs)) if (!r.ok && !(r.error instanceof NetlinkError && GONE.includes(r.error.code))) errors.push(r.error);
}

/**
 * The namespace outlives us: take our routing rules (or, a container of an earlier version, lo's
 * ingress qdisc) out of it, and free its eth0's name and address at once (down, address removed, renamed to a name of ours), so the namespace can get a
 * new interface of that name while the veth pair is deleted in the background. Returns whether
 * the name was freed.
 */
async function retireContainerEnd(core: EngineCore, rec: ContainerRecord, errors: Error[]): Promise<boolean> {
  let nameFreed = false;
  try {
    const ns = Netns.fromPath(rec.netns);
    try {
      // Never the host's own lo (a record of an older version could name the host's namespace).
      if (ns.inode === core.hostNetnsInode()) throw new IsolatorError(`container ${rec.id}'s namespace ${rec.netns} is the host's: left as it is`);
      await core.inContainer(ns, async (cs) => {
        const ours = rec.selfRouting ? await selfRoutingRequestsToUndo(cs) : [qdiscRequest('delete', { kind: 'ingress', ifindex: 1 }, core.ctx)];
        const r = await cs.batch([
          ...ours,
          linkRequests.set(rec.vethIndex, { up: false }),
          addressRequests.delete({ ifindex: rec.vethIndex, address: `${core.host.ip}/${core.host.prefixlen}` }),
          linkRequests.set(rec.vethIndex, { name: retiredName(rec) }),
        ]);
        const e = firstFailure(r.slice(0, ours.length), GONE);
        if (e) errors.push(e);
        nameFreed = r.slice(ours.length).every((x) => x.ok || (x.error instanceof NetlinkError && x.error.code === 'EADDRNOTAVAIL'));
      });
    } finally {
      ns.close();
    }
  } catch (e) {
    if ((e as { code?: string }).code !== 'ENOENT') errors.push(e as Error); // the namespace is gone already
  }
  return nameFreed;
}

/** Putting the namespace's routing policy back as the container found it (selfRoutingCleanup), from its rules as they are now. */
async function selfRoutingRequestsToUndo(cs: NetlinkSession): Promise<Request[]> {
  const rules = new Rules(cs);
  const found = [...(await rules.list('inet')), ...(await rules.list('inet6').catch(noIpv6))];
  const { restore, remove } = selfRoutingCleanup(found);
  return [...restore.map(ruleRequests.add), ...remove.map(ruleRequests.delete)];
}

/** A kernel without IPv6 has no IPv6 rules to list. */
const noIpv6 = (e: unknown): Rule[] => {
  if (e instanceof NetlinkError && e.code === 'EAFNOSUPPORT') return [];
  throw e;
};

/** Delete the veth pair: waiting for it, in the background (a failure then is a warning), or into the caller's list. */
async function deleteVeth(
  core: EngineCore,
  rec: ContainerRecord,
  how: 'wait' | 'background' | Array<Promise<Error | undefined>>,
  errors: Error[],
): Promise<void> {
  const del = core.session.request(linkRequests.delete(rec.vethIndex), { offload: true }).then(
    () => undefined,
    (e: unknown) => (e instanceof NetlinkError && e.code === 'ENODEV' ? undefined : (e as Error)),
  );
  if (how === 'wait') {
    const e = await del;
    if (e) errors.push(e);
  } else if (how === 'background') {
    core.track(del.then((e) => e && core.warnOnce(`deleting ${rec.veth} failed: ${e.message}`)));
  } else {
    how.push(del.then((e) => e && new Error(`deleting ${rec.veth}: ${e.message}`)));
  }
}

/**
 * Remove part of a container's port plan (what an update's old plan has and its new one has not,
 * or the reverse): host port filters by handle; the veth's filters, whose handles the kernel
 * chose, found in a dump by their priority and packed keys (src/tc's packing of the planned
 * matches); the container's routing rules as planned.
 */
export async function removePlanned(core: EngineCore, rec: ContainerRecord, ns: Netns, gone: PortPlan): Promise<Error[]> {
  const errors: Error[] = [];
  const collect = (rs: BatchResult[]) => rs.forEach((r) => !r.ok && !(r.error instanceof NetlinkError && GONE.includes(r.error.code)) && errors.push(r.error));
  collect(await core.session.batch(gone.hostPorts.map((f) => filterRequest('delete', f.spec))));
  const del = async (s: NetlinkSession, specs: U32FilterSpec[]) => {
    for (const ifindex of new Set(specs.map((p) => p.ifindex))) {
      const wanted = new Set(specs.filter((p) => p.ifindex === ifindex).map((p) => keysId(p.priority, packMatches(p.matches ?? []))));
      const found = await dumpFilters(s, ifindex, INGRESS_HANDLE);
      collect(await s.batch(found.filter((f) => wanted.has(keysId(f.prio, f.keys))).map((f) => f.deleteRequest)));
    }
  };
  if (gone.container.length)
    await core.inContainer(ns, async (cs) => collect(await cs.batch(gone.container.map(ruleRequests.delete)))).catch((e: Error) => errors.push(e));
  if (gone.veth.length) await del(core.session, gone.veth).catch((e: Error) => errors.push(e));
  return errors;
}
