/**
 * Building a checkpointed container's kernel objects: its namespace (made, pinned, given, or a
 * spare's), the host side in one batch, then the container side in one namespace switch and one
 * batch.
 */
import type { Request } from '../netlink/index.js';
import { Netns, createNetns, pinNetns } from '../netlink/index.js';
import { linkRequests } from '../rtnl/index.js';
import { filterRequest } from '../tc/index.js';
import { firstFailure } from './batch.js';
import { adoptedContainerRequests, containerRequests } from './container-setup.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError } from './errors.js';
import { hostView } from './host-setup.js';
import type { ContainerView, HostPortFilter } from './plan.js';
import { htbQuantum, shaperClassPlan, shapingPlan, tcObjectRequest, vethFilters, vethPortFilters } from './plan.js';
import { mirrorChunkOf } from './records.js';
import type { ContainerRecord, SpareRecord } from './state.js';
import type { Stopwatch } from './timing.js';
import type { SpareHandles } from './warm-pool.js';

export async function build(
  core: EngineCore,
  rec: ContainerRecord,
  portFilters: HostPortFilter[],
  sw: Stopwatch,
  spare?: SpareRecord,
  held?: SpareHandles,
  target?: Netns,
): Promise<void> {
  const ns = openNetns(rec, spare, held, target);
  sw.lap('netns');
  const view = core.view(rec);
  let cs = held?.session;
  try {
    const hostErr = firstFailure(await core.session.batch(hostRequests(core, rec, view, portFilters, ns, spare)));
    if (hostErr) throw hostErr;
    sw.lap('host batch');
    if (!spare) core.disableHostVethIpv6(rec.veth);
    sw.lap('host sysctl');
    // Container side, in one namespace switch: its sysctls first (IPv6 off while lo and eth0
    // are still down, so no IPv6 address is made only to be removed), and a socket opened there;
    // then one batch over that socket. A spare this process made has both open already.
    if (held) held.portRange.write(`${rec.ephemeralPorts.begin} ${rec.ephemeralPorts.end}`);
    else cs = core.containerSession(ns, rec.ephemeralPorts, spare ? undefined : core.containerIpv6(rec.ifname));
    sw.lap('container sysctls+socket');
    const reqs = spare ? adoptedContainerRequests(hostView(core.host), view, core.ctx) : containerRequests(core.host, view, hostView(core.host), core.ctx);
    const err = firstFailure(await cs!.batch(reqs));
    if (err) throw err;
    sw.lap('container batch');
  } finally {
    cs?.close();
    held?.portRange.close();
    ns.close();
  }
}

/** The container's namespace: the spare's, one we create, a process's we pin, or the one given. */
function openNetns(rec: ContainerRecord, spare: SpareRecord | undefined, held: SpareHandles | undefined, target: Netns | undefined): Netns {
  // A process's namespace is pinned from the handle that was checked (the pid may have moved on).
  const ns = held
    ? held.ns
    : spare
      ? Netns.fromPath(rec.netns)
      : rec.ownsNetns
        ? createNetns(rec.netns)
        : rec.pinned
          ? pinNetns(target ? `/proc/self/fd/${target.fd}` : `/proc/${rec.pid}/ns/net`, rec.netns)
          : Netns.fromPath(rec.netns);
  if (target && ns.inode !== target.inode) {
    ns.close();
    throw new IsolatorError(`${rec.netns} is no longer the namespace that was checked`);
  }
  return ns;
}

/**
 * Host side, one batch: the veth pair (peer created inside the container's namespace, both
 * ends with the host's MAC and MTU, our interface indexes), then the veth's filters before
 * the eth0/lo port filters that point at it (Mesos §7.8), the mirrors, ingress shaping, up.
 * (A spare has its veth pair, up, and the veth filters that do not depend on ports.)
 */
function hostRequests(
  core: EngineCore,
  rec: ContainerRecord,
  view: ContainerView,
  portFilters: HostPortFilter[],
  ns: Netns,
  spare: SpareRecord | undefined,
): Request[] {
  const hv = hostView(core.host);
  return [
    ...(spare ? [] : [core.vethRequest(rec, ns)]),
    // Its class on the shaper before anything sends to it (egress shaped on the host).
    ...(view.shaper && rec.egress
      ? shaperClassPlan(view.shaper.view, view.shaper.minor, rec.egress, view.fqCodel, htbQuantum(rec.egress.rateBytesPerSec, view.mtu)).map((o) =>
          tcObjectRequest(o, 'add', core.ctx),
        )
      : []),
    ...(spare ? vethPortFilters(hv, view).map((s) => filterRequest('add', s)) : vethFilters(hv, view).map((o) => tcObjectRequest(o, 'add', core.ctx))),
    ...portFilters.map((f) => filterRequest('add', f.spec)),
    ...core.mirrorRequests(mirrorChunkOf(rec), undefined, rec.id),
    ...(rec.ingress ? shapingPlan(rec.vethIndex, rec.ingress, view.fqCodel, view.mtu).map((o) => tcObjectRequest(o, 'add', core.ctx)) : []),
    ...(spare ? [] : [linkRequests.set(rec.vethIndex, { up: true })]),
  ];
}
