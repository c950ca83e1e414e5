/**
 * The host's own veth pairs (data path v2), each made once, recorded in host.json before it is made
 * (so a crash leaves nothing cleanup does not remove), and removed by cleanup with the rest of the
 * host setup: the egress *shaper* (plan-shaper.ts), made with the first container shaped on the
 * host, and the *echo fan-out* (plan-host.ts, echoFanoutPlan), made with the host setup. Their
 * interface indexes are ours, so every process knows them.
 */
import type { Request } from '../netlink/index.js';
import { linkRequests } from '../rtnl/index.js';
import { Tc, actionRequest } from '../tc/index.js';
import type { StandaloneActionSpec } from '../tc/index.js';
import { firstFailure } from './batch.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError } from './errors.js';
import { hostView } from './host-setup.js';
import type { HostView, ShaperView, TcObject } from './plan.js';
import {
  ECHO_FANOUT_NAMES,
  ECHO_FANOUT_VIEW,
  SHAPER_NAMES,
  SHAPER_VIEW,
  echoFanoutPlan,
  mirrorTo,
  redirect,
  shaperSharedPlan,
  tcObjectRequest,
} from './plan.js';
import type { HostRecord } from './state.js';

/** One of the host's pairs: its ends' names and indexes, where host.json records it, its objects. */
export interface HostPair {
  /** What it is, for messages. */
  what: string;
  names: { tx: string; rx: string };
  view: ShaperView;
  record: 'shaper' | 'echoFanout';
  plan: (host: HostView) => TcObject[];
  /** The shared mirred action (fixed index) through which other filters send to the pair. */
  action: StandaloneActionSpec;
}

export const SHAPER_PAIR: HostPair = {
  what: 'egress shaper',
  names: SHAPER_NAMES,
  view: SHAPER_VIEW,
  record: 'shaper',
  plan: (h) => shaperSharedPlan(h, SHAPER_VIEW),
  action: redirect(SHAPER_VIEW.tx) as StandaloneActionSpec,
};
export const ECHO_FANOUT_PAIR: HostPair = {
  what: 'echo-reply fan-out',
  names: ECHO_FANOUT_NAMES,
  view: ECHO_FANOUT_VIEW,
  record: 'echoFanout',
  plan: echoFanoutPlan,
  action: mirrorTo(ECHO_FANOUT_VIEW.tx, false) as StandaloneActionSpec,
};

/** Make a pair and its objects if they are not there (once per process). */
export async function ensureHostPair(core: EngineCore, pair: HostPair): Promise<void> {
  if (core.hostPairsReady.has(pair.record)) return;
  const rec = core.hostRecord ?? core.store.readHost();
  if (!rec) throw new IsolatorError(`the ${pair.what} is made after the host setup`);
  const tx = await core.rtnl.links.find(pair.names.tx);
  if (tx && tx.index !== pair.view.tx) {
    throw new IsolatorError(`a link named ${pair.names.tx} exists (index ${tx.index}) that is not the isolator's ${pair.what}: rename or remove it`);
  }
  if (!tx) {
    if (!rec[pair.record]?.created) {
      rec[pair.record] = { created: true };
      core.store.writeHost(rec);
    }
    // The host's MAC and MTU on both ends, as on the containers' veths: a frame arriving at the rx
    // end addressed to another MAC would be marked PACKET_OTHERHOST, which lo keeps and IP drops.
    const { mtu, address } = core.host.eth0;
    try {
      await core.session.request(
        linkRequests.addVeth({ name: pair.names.tx, index: pair.view.tx, address, mtu, peer: { name: pair.names.rx, index: pair.view.rx, address, mtu } }),
      );
    } catch (e) {
      throw new IsolatorError(`making the ${pair.what} (${pair.names.tx}, ${pair.names.rx}): ${(e as Error).message}`, [e as Error]);
    }
    // No IPv6 link-local chatter on them: only what the isolator sends goes through.
    for (const name of [pair.names.tx, pair.names.rx]) core.disableHostVethIpv6(name);
    // Made again after someone deleted it: the filters that send to it share one mirred action,
    // which the kernel left pointing at no device when the old one went: point it at the new one.
    if (await new Tc(core.session).getAction('mirred', pair.action.index)) await core.session.request(actionRequest('replace', pair.action));
  }
  const reqs: Request[] = [
    ...pair.plan(hostView(core.host)).map((o) => tcObjectRequest(o, 'add', core.ctx)),
    linkRequests.set(pair.view.tx, { up: true }),
    linkRequests.set(pair.view.rx, { up: true }),
  ];
  // Already there (made by another process, or before a crash) is fine.
  const err = firstFailure(await core.session.batch(reqs), ['EEXIST']);
  if (err) throw new IsolatorError(`setting up the ${pair.what}: ${err.message}`, [err]);
  core.hostPairsReady.add(pair.record);
}

/** The pairs that should be there and are not (doctor): the echo fan-out always, the shaper while a container is shaped on the host. */
export async function missingHostPairs(core: EngineCore): Promise<string[]> {
  const wanted = [ECHO_FANOUT_PAIR, ...([...core.registry.records.values()].some((r) => r.phase === 'ready' && r.egressOnHost) ? [SHAPER_PAIR] : [])];
  const out: string[] = [];
  for (const p of wanted) {
    if ((await core.rtnl.links.find(p.names.tx))?.index !== p.view.tx) out.push(`the ${p.what} (${p.names.tx}) is missing: recover makes it again`);
  }
  return out;
}

/** Deleting the pairs host.json says we made (one end takes the other, and every object on them). */
export function hostPairRemovals(rec: HostRecord): Request[] {
  return [SHAPER_PAIR, ECHO_FANOUT_PAIR].filter((p) => rec[p.record]?.created).map((p) => linkRequests.delete(p.view.tx));
}
