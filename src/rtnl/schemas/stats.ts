/** RTM_GETSTATS / RTM_NEWSTATS bodies: struct if_stats_msg and the IFLA_STATS_* attributes (if_link.h). */
import { attrSet, bytes, field, messageSchema, pad, struct } from '../../netlink/index.js';
import type { MessageBody } from '../../netlink/index.js';
import { IFLA_STATS } from '../constants.js';
import { rtnlLinkStats64 } from './link.js';

/** struct if_stats_msg: which device (0: every device, in a dump) and which IFLA_STATS_* groups. */
export const ifStatsMsg = struct('if_stats_msg', [
  ['family', field.u8],
  pad(1),
  pad(2),
  ['ifindex', field.u32],
  /** IFLA_STATS_FILTER_BIT(…) of each group asked for; the reply holds only those. */
  ['filterMask', field.u32],
] as const);
export type IfStatsMsg = ReturnType<typeof ifStatsMsg.zero>;

/**
 * IFLA_STATS_* attributes. IFLA_STATS_LINK_64 is the same struct rtnl_link_stats64 as RTM_NEWLINK's
 * IFLA_STATS64; the nests we do not model are kept as raw bytes (the kernel sends them unflagged).
 */
export const IFLA_STATS_SET = attrSet('IFLA_STATS', {
  /** The 64-bit alignment pad some architectures put before IFLA_STATS_LINK_64. */
  pad: [IFLA_STATS.UNSPEC, bytes, { kernelName: 'IFLA_STATS_UNSPEC' }],
  link64: [IFLA_STATS.LINK_64, rtnlLinkStats64, { kernelName: 'IFLA_STATS_LINK_64' }],
  linkXstats: [IFLA_STATS.LINK_XSTATS, bytes],
  linkXstatsSlave: [IFLA_STATS.LINK_XSTATS_SLAVE, bytes],
  linkOffloadXstats: [IFLA_STATS.LINK_OFFLOAD_XSTATS, bytes],
  afSpec: [IFLA_STATS.AF_SPEC, bytes],
} as const);

/** RTM_GETSTATS / RTM_NEWSTATS body. */
export const statsMessage = messageSchema(ifStatsMsg, IFLA_STATS_SET);
export type StatsMessage = MessageBody<IfStatsMsg, typeof IFLA_STATS_SET.defs>;
