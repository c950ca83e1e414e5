/**
 * Creating a container (under the lock, state in sync): checks, the host's setup at the first
 * container, the plan (ephemeral block, filter handles, mirror slot, flow), the checkpoint, then
 * the build — undone entirely if any of it fails.
 */
import type { Netns } from '../netlink/index.js';
import { build } from './build.js';
import type { ContainerInfo, CreateSpec } from './engine.js';
import type { EngineCore } from './engine-core.js';
import { ConfigError, ContainerExistsError, EphemeralPortsExhaustedError, IsolatorError } from './errors.js';
import { hostView, sharedLayoutKey, putUnheldPortsDrop, setUpHost, tearDownHost } from './host-setup.js';
import type { HostPortFilter } from './plan.js';
import { hostPortFilters } from './plan.js';
import type { PortSet } from './port-set.js';
import type { HtbConfig } from './rates.js';
import { VETH_INDEX_BASE, VETH_PREFIX, blocksOf, hostFilterRecords, toInfo } from './records.js';
import type { ContainerRecord, HostRecord, SpareRecord } from './state.js';
import type { ProtectedNamespace } from './target-netns.js';
import { checkTargetContents, openTargetNamespace } from './target-netns.js';
import { putGatewayEverywhere } from './gateway.js';
import { ECHO_FANOUT_PAIR, SHAPER_PAIR, ensureHostPair } from './host-pairs.js';
import { teardown } from './teardown.js';
import type { Stopwatch } from './timing.js';
import type { SpareHandles } from './warm-pool.js';

/** What a new container is made of, before anything of it exists. */
interface ContainerPlan {
  rec: ContainerRecord;
  portFilters: HostPortFilter[];
  /** The warm-pool spare it takes, if any. */
  spare: SpareRecord | undefined;
}

export async function createContainer(core: EngineCore, id: string, ports: PortSet, ifname: string, spec: CreateSpec, sw: Stopwatch): Promise<ContainerInfo> {
  if (core.registry.records.has(id)) throw new ContainerExistsError(id);
  if (core.host.ipv6Missing) throw new ConfigError('ipv6', core.host.ipv6Missing);
  core.checkPorts(ports);
  // A namespace we are given is checked, and held open, before anything is built.
  const target = spec.pid !== undefined || spec.netnsPath !== undefined ? openTargetNamespace(spec, protectedNamespaces(core)) : undefined;
  try {
    if (target) await checkTargetContents(target, ifname, core.host.ipv6 ? ['inet', 'inet6'] : ['inet']);
    return await createChecked(core, id, ports, ifname, spec, sw, target);
  } finally {
    target?.close();
  }
}

/** The namespaces no container may be given: the host's, our own, init's, every container's and spare's. */
function* protectedNamespaces(core: EngineCore): Iterable<ProtectedNamespace> {
  yield { path: core.host.netns?.path ?? '/proc/thread-self/ns/net', owner: "the host's (the one the isolator acts on)" };
  yield { path: '/proc/self/ns/net', owner: "this process's own" };
  yield { path: '/proc/1/ns/net', owner: "the init process's" };
  for (const r of core.registry.records.values()) yield { path: r.netns, owner: `container ${r.id}'s` };
  for (const sp of core.store.listSpares()) yield { path: sp.netns, owner: "a warm-pool spare's" };
}

async function createChecked(
  core: EngineCore,
  id: string,
  ports: PortSet,
  ifname: string,
  spec: CreateSpec,
  sw: Stopwatch,
  target: Netns | undefined,
): Promise<ContainerInfo> {
  core.pinIpv6();
  await ensureHost(core);
  sw.lap('state');
  const { rec, portFilters, spare } = await planContainer(core, id, ports, ifname, spec);
  // The spare is the container's from now on: its record goes first, so a crash in between
  // leaves objects no record names (recover() removes them as orphans), never two records.
  const handles = spare ? core.pool.take(spare) : undefined;
  await checkpoint(core, rec, spare, handles);
  sw.lap('plan+checkpoint');
  try {
    await build(core, rec, portFilters, sw, spare, handles, target);
    rec.phase = 'ready';
    core.saveRecord(rec);
    sw.lap('checkpoint');
    return toInfo(rec);
  } catch (e) {
    throw await undoCreate(core, rec, e);
  }
}

/** The host-wide setup, done at the first container (and recorded). */
async function ensureHost(core: EngineCore): Promise<HostRecord> {
  const rec = await ensureHostRecord(core);
  await ensureHostPair(core, ECHO_FANOUT_PAIR);
  if (!core.unheldDropPut) {
    await putUnheldPortsDrop(core.session, core.host, core.managedPortRanges());
    core.unheldDropPut = true;
    // The host's entry for the gateway changed since containers got it: theirs follow (once per process).
    const mac = core.host.gatewayMac;
    if (mac && rec.gatewayMac !== mac) {
      for (const f of await putGatewayEverywhere(core, mac)) core.warnOnce(`the gateway's new MAC could not be given to ${f}`);
      rec.gatewayMac = mac;
    }
    const mac6 = core.host.ipv6?.gatewayMac;
    if (mac6 && rec.gateway6Mac !== mac6) {
      for (const f of await putGatewayEverywhere(core, mac6, 'inet6')) core.warnOnce(`the IPv6 gateway's new MAC could not be given to ${f}`);
      rec.gateway6Mac = mac6;
    }
  }
  return rec;
}

async function ensureHostRecord(core: EngineCore): Promise<HostRecord> {
  if (core.hostRecord) return core.hostRecord;
  const existing = core.store.readHost();
  const inode = core.hostNetnsInode();
  if (existing && existing.netnsInode === inode && existing.complete !== false) {
    if (existing.shared.layout === sharedLayoutKey(core.host)) return (core.hostRecord = existing);
    // Set up by an earlier version: rebuild the shared layout when no container relies on it.
    if (core.registry.records.size) {
      throw new IsolatorError(
        `the host was set up by an earlier portmap-isolator or for other IPv6 addresses (shared layout ${JSON.stringify(existing.shared.layout ?? 'unknown')}, ` +
          `now ${JSON.stringify(sharedLayoutKey(core.host))}); destroy its containers, or run cleanup, before creating new ones`,
      );
    }
    const errors = await tearDownHost(core.session, core.host, existing, core.ctx);
    if (errors.length) throw new IsolatorError(`rebuilding the host's shared layout: ${errors.map((e) => e.message).join('; ')}`);
    core.store.deleteHost();
    return ensureHostRecord(core);
  }
  const flows = core.config.egressUniqueFlowPerContainer ? { parent: core.flowParent, qdisc: core.flowQdisc } : undefined;
  const save = (r: HostRecord) => core.store.writeHost(r);
  let rec: HostRecord;
  try {
    rec = await setUpHost(core.session, core.host, core.ctx, flows, save, existing?.netnsInode === inode ? existing : undefined);
  } catch (e) {
    core.store.deleteHost(); // setUpHost undid its changes
    throw e;
  }
  core.registry.generation = core.store.bumpGeneration();
  return (core.hostRecord = rec);
}

/** Shaping, flow, ephemeral block, spare, veth, mirror slot and host filter handles: the record to checkpoint (nothing exists yet). */
async function planContainer(core: EngineCore, id: string, ports: PortSet, ifname: string, spec: CreateSpec): Promise<ContainerPlan> {
  const egress = core.shapingFor('egress', spec.cpus);
  const ingress = core.shapingFor('ingress', spec.cpus);
  if (egress || ingress) await core.probeFqCodel();
  if (egress && core.config.egressShapingPlacement === 'host') await ensureHostPair(core, SHAPER_PAIR);
  const flowId = core.config.egressUniqueFlowPerContainer ? core.registry.freeFlowId() : undefined;
  const block = core.registry.allocator.allocate();
  if (!block) {
    throw new EphemeralPortsExhaustedError(core.config.ephemeralPortsPerContainer, core.config.ephemeralPorts.toString(), core.registry.records.size);
  }
  const spare = spec.netnsPath === undefined && spec.pid === undefined ? core.pool.ready(ifname) : undefined;
  try {
    const rec = newRecord(core, { id, ports, ifname, spec, block, spare, egress, ingress, flowId });
    const blocks = blocksOf(rec);
    const portFilters = hostPortFilters(hostView(core.host), core.view(rec, blocks), blocks, core.registry.nodes, core.flowOf(rec), core.shaperOf(rec));
    rec.hostFilters = hostFilterRecords(portFilters);
    return { rec, portFilters, spare };
  } catch (e) {
    core.registry.reset([...core.registry.records.values()]); // give back the block and any handles
    throw e;
  }
}

interface NewContainer {
  id: string;
  ports: PortSet;
  ifname: string;
  spec: CreateSpec;
  block: { begin: number; end: number };
  spare: SpareRecord | undefined;
  egress: HtbConfig | undefined;
  ingress: HtbConfig | undefined;
  flowId: number | undefined;
}

/** The record of a container about to be built ('creating', no host filters yet). */
function newRecord(core: EngineCore, c: NewContainer): ContainerRecord {
  const { spec, spare } = c;
  const seq = spare ? spare.seq : core.store.nextVethNumber();
  return {
    id: c.id,
    phase: 'creating',
    // A process's namespace is pinned in the work_dir too: a reused pid can never point elsewhere.
    // A spare's pin becomes the container's (moving a pin costs a mount and an unmount).
    netns: spare ? spare.netns : (spec.netnsPath ?? core.store.netnsPath(c.id)),
    ownsNetns: spec.netnsPath === undefined && spec.pid === undefined,
    ...(spec.pid !== undefined ? { pid: spec.pid, pinned: true } : {}),
    veth: `${VETH_PREFIX}${seq}`,
    vethIndex: VETH_INDEX_BASE + seq,
    ifname: c.ifname,
    ephemeralPorts: c.block,
    ...(core.host.ipv6 ? { ipv6: core.host.ipv6.addresses.map((a) => `${a.address}/${a.prefixlen}`) } : {}),
    ports: c.ports.ranges,
    hostFilters: [],
    mirrorSlot: core.registry.freeMirrorSlot(),
    createdAt: new Date().toISOString(),
    selfRouting: 'rules',
    ...(spec.cpus !== undefined ? { cpus: spec.cpus } : {}),
    ...(c.egress ? { egress: c.egress } : {}),
    ...(c.egress && core.config.egressShapingPlacement === 'host' ? { egressOnHost: true } : {}),
    ...(c.ingress ? { ingress: c.ingress } : {}),
    ...(c.flowId !== undefined ? { flowId: c.flowId } : {}),
  };
}

/** Checkpoint first: from here on, recover() can find and remove whatever exists. */
async function checkpoint(core: EngineCore, rec: ContainerRecord, spare: SpareRecord | undefined, handles: SpareHandles | undefined): Promise<void> {
  core.registry.add(rec);
  try {
    core.saveRecord(rec);
  } catch (e) {
    core.registry.remove(rec);
    if (spare) await core.pool.drop(spare, handles); // nothing names its objects any more
    throw e;
  }
}

/** A build failed: remove whatever exists and the record; the error to throw. */
async function undoCreate(core: EngineCore, rec: ContainerRecord, e: unknown): Promise<IsolatorError> {
  const undo = await teardown(core, rec, { wait: true });
  core.forgetContainer(rec);
  const cause = e instanceof Error ? e.message : String(e);
  return new IsolatorError(
    `Failed to create container ${rec.id}: ${cause}${undo.length ? ` (and cleaning up: ${undo.map((u) => u.message).join(', ')})` : ''}`,
    [e as Error, ...undo],
  );
}
