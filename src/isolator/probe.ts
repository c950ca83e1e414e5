import { NetlinkError, NetlinkSession, createNetns, removeNetns } from '../netlink/index.js';
import { RTM_NAMES } from '../rtnl/index.js';
import { TC_H, qdiscRequest } from '../tc/index.js';
import type { QdiscSpec } from '../tc/index.js';
import type { TcContext } from './plan.js';
import { HTB_HANDLE } from './plan.js';

/**
 * Whether this kernel has a qdisc kind, found by adding it to the loopback of a scratch network
 * namespace pinned at `scratchPath` (removed afterwards): no device of the host is touched.
 */
export async function probeQdisc(scratchPath: string, kind: 'fq_codel' | 'htb' | 'ingress', ctx: TcContext): Promise<boolean> {
  removeNetns(scratchPath); // a leftover of a crashed probe
  const ns = createNetns(scratchPath);
  try {
    const s = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
    try {
      // On the scratch namespace's lo (ifindex 1).
      const spec: QdiscSpec = kind === 'ingress' ? { kind, ifindex: 1 } : { kind, ifindex: 1, parent: TC_H.ROOT, handle: HTB_HANDLE };
      await s.request(qdiscRequest('add', spec, ctx));
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
