/**
 * The host's shaper (plan-shaper.ts), made with the first container whose egress is shaped on the
 * host, recorded in host.json before it is made (so a crash leaves nothing cleanup does not
 * remove), and removed by cleanup with the rest of the host setup.
 */
import type { Request } from '../netlink/index.js';
import { linkRequests } from '../rtnl/index.js';
import { firstFailure } from './batch.js';
import type { EngineCore } from './engine-core.js';
import { IsolatorError } from './errors.js';
import { hostView } from './host-setup.js';
import { SHAPER_NAMES, SHAPER_VIEW, shaperSharedPlan, tcObjectRequest } from './plan.js';

/** Make the shaper and its shared objects if they are not there (once per process). */
export async function ensureShaper(core: EngineCore): Promise<void> {
  if (core.shaperReady) return;
  const rec = core.hostRecord ?? core.store.readHost();
  if (!rec) throw new IsolatorError('the shaper is made after the host setup');
  const tx = await core.rtnl.links.find(SHAPER_NAMES.tx);
  if (tx && tx.index !== SHAPER_VIEW.tx) {
    throw new IsolatorError(`a link named ${SHAPER_NAMES.tx} exists (index ${tx.index}) that is not the isolator's shaper: rename or remove it`);
  }
  if (!tx) {
    if (!rec.shaper?.created) {
      rec.shaper = { created: true };
      core.store.writeHost(rec);
    }
    // The host's MAC and MTU on both ends, as on the containers' veths: a frame arriving at the rx
    // end addressed to another MAC would be marked PACKET_OTHERHOST, which lo keeps and IP drops.
    const { mtu, address } = core.host.eth0;
    try {
      await core.session.request(
        linkRequests.addVeth({
          name: SHAPER_NAMES.tx,
          index: SHAPER_VIEW.tx,
          address,
          mtu,
          peer: { name: SHAPER_NAMES.rx, index: SHAPER_VIEW.rx, address, mtu },
        }),
      );
    } catch (e) {
      throw new IsolatorError(`making the egress shaper (${SHAPER_NAMES.tx}, ${SHAPER_NAMES.rx}): ${(e as Error).message}`, [e as Error]);
    }
    // No IPv6 link-local chatter on them: only what the containers send goes through.
    for (const name of [SHAPER_NAMES.tx, SHAPER_NAMES.rx]) core.disableHostVethIpv6(name);
  }
  const reqs: Request[] = [
    ...shaperSharedPlan(hostView(core.host), SHAPER_VIEW).map((o) => tcObjectRequest(o, 'add', core.ctx)),
    linkRequests.set(SHAPER_VIEW.tx, { up: true }),
    linkRequests.set(SHAPER_VIEW.rx, { up: true }),
  ];
  // Already there (made by another process, or before a crash) is fine.
  const err = firstFailure(await core.session.batch(reqs), ['EEXIST']);
  if (err) throw new IsolatorError(`setting up the egress shaper: ${err.message}`, [err]);
  core.shaperReady = true;
}
