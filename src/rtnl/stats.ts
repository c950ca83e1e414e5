/**
 * RTM_GETSTATS: a link's 64-bit counters without the rest of the link. The reply to a filtered
 * request holds the if_stats_msg and IFLA_STATS_LINK_64 alone (232 bytes), against the ~1.5 KB of
 * attributes of an RTM_GETLINK reply, so reading every link's counters is one small dump.
 */
import type { NetlinkMessage, NetlinkSession, Request } from '../netlink/index.js';
import { DecodeError, NetlinkError, decodeBody, encodeBody } from '../netlink/index.js';
import { IFLA_STATS, IFLA_STATS_FILTER_BIT, RTM } from './constants.js';
import type { LinkStats64 } from './schemas/link.js';
import type { StatsMessage } from './schemas/stats.js';
import { statsMessage } from './schemas/stats.js';
import { checkIfIndex } from './validate.js';

/** if_stats_msg.filter_mask asking for IFLA_STATS_LINK_64 only, as `ip stats show group link` does. */
export const LINK_64_FILTER = IFLA_STATS_FILTER_BIT(IFLA_STATS.LINK_64);

/** One link's counters from an RTM_NEWSTATS reply. */
export interface LinkStatsEntry {
  /** The link's interface index. */
  index: number;
  /** IFLA_STATS_LINK_64: every counter a bigint, the same type `Link.stats` has. */
  stats: LinkStats64;
}

/** Request builders: pure, validated before anything is sent, usable in a batch. */
export const statsRequests = {
  /** RTM_GETSTATS for one link's IFLA_STATS_LINK_64, encoded as `ip stats show dev DEV group link` does. */
  get(ifindex: number): Request {
    const header = { ifindex: checkIfIndex(ifindex), filterMask: LINK_64_FILTER };
    return { type: RTM.GETSTATS, flags: 0, schema: statsMessage, encode: (w) => encodeBody(w, statsMessage, { header }) };
  },

  /** RTM_GETSTATS dump of every link's IFLA_STATS_LINK_64, encoded as `ip stats show group link` does. */
  dump(): Request {
    const header = { filterMask: LINK_64_FILTER };
    return { type: RTM.GETSTATS, flags: 0, schema: statsMessage, encode: (w) => encodeBody(w, statsMessage, { header }) };
  },
};

/**
 * The link and its counters in an RTM_NEWSTATS body (the bytes after the nlmsghdr). A body that is
 * short, malformed or without IFLA_STATS_LINK_64 raises DecodeError.
 */
export function decodeLinkStats64(payload: Buffer): LinkStatsEntry {
  const m: StatsMessage = decodeBody(statsMessage, payload);
  const stats = m.attrs.link64;
  if (!stats) throw new DecodeError('no IFLA_STATS_LINK_64 in the reply', ['RTM_NEWSTATS'], payload.length);
  return { index: m.header.ifindex, stats };
}

/** decodeLinkStats64 of a reply message, which must be an RTM_NEWSTATS. */
function fromMessage(m: NetlinkMessage): LinkStatsEntry {
  if (m.type !== RTM.NEWSTATS) throw new DecodeError(`expected RTM_NEWSTATS (${RTM.NEWSTATS}), got message type ${m.type}`, ['nlmsghdr']);
  return decodeLinkStats64(m.payload);
}

/** Link counters (RTM_GETSTATS, IFLA_STATS_LINK_64) bound to one namespace's session. */
export class LinkStatistics {
  constructor(private readonly session: NetlinkSession) {}

  /**
   * Every link's counters by interface index, in one RTM_GETSTATS dump: the cheap way to read
   * many links' counters (232 bytes per link, nothing else decoded).
   */
  async list(): Promise<Map<number, LinkStats64>> {
    const entries = await this.session.dump(statsRequests.dump(), { decode: fromMessage });
    return new Map(entries.map((e) => [e.index, e.stats]));
  }

  /** One link's counters; rejects with NetlinkError ENODEV when there is no such link. */
  async get(ifindex: number): Promise<LinkStats64> {
    const r = await this.session.request(statsRequests.get(ifindex), { decode: fromMessage });
    const entry = r.replies[0];
    if (!entry) throw new Error(`RTM_GETSTATS ${ifindex}: the kernel sent no statistics`);
    return entry.stats;
  }

  /** One link's counters, or undefined when there is no such link. */
  async find(ifindex: number): Promise<LinkStats64 | undefined> {
    try {
      return await this.get(ifindex);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }
}
