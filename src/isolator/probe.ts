import { NetlinkError, NetlinkSession, createNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES } from '../rtnl/index.js';
import { TC_H_ROOT } from './plan.js';
import type { TcRequestContext } from './tc-requests.js';
import { tcRequest } from './tc-requests.js';

/**
 * Whether this kernel has a qdisc kind, found by adding it to the loopback of a scratch network
 * namespace pinned at `scratchPath` (removed afterwards): no device of the host is touched.
 */
export async function probeQdisc(scratchPath: string, kind: 'fq_codel' | 'htb' | 'ingress', ctx: TcRequestContext): Promise<boolean> {
  removeNetns(scratchPath); // a leftover of a crashed probe
  const ns = createNetns(scratchPath);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      await s.request(tcRequest({ type: 'qdisc', dev: { ns: 'container', index: 1 }, kind, parent: kind === 'ingress' ? 0xfffffff1 : TC_H_ROOT, handle: kind === 'ingress' ? 0xffff0000 : 0x00010000 }, 'add', ctx));
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'EOPNOTSUPP' || e.code === 'EINVAL')) return false;
      throw e;
    } finally {
      s.close();
    }
  } finally {
    ns.close();
    removeNetns(scratchPath);
  }
}
