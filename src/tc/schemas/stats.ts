/** Statistics attributes: TCA_STATS2 / TCA_ACT_STATS (gen_stats.h) and the old struct tc_stats. */
import { attrSet, bytes, field, pad, struct, u64 } from '../../netlink/index.js';
import type { AttrValues } from '../../netlink/index.js';

/** struct gnet_stats_basic; the kernel sends sizeof() = 16 bytes (4 of padding). */
export const gnetStatsBasic = struct('gnet_stats_basic', [['bytes', field.u64], ['packets', field.u32], pad(4)] as const, { minSize: 12 });
/** struct gnet_stats_rate_est (bytes/s and packets/s, 32-bit). */
export const gnetStatsRateEst = struct('gnet_stats_rate_est', [
  ['bps', field.u32],
  ['pps', field.u32],
] as const);
/** struct gnet_stats_rate_est64. */
export const gnetStatsRateEst64 = struct('gnet_stats_rate_est64', [
  ['bps', field.u64],
  ['pps', field.u64],
] as const);
/** struct gnet_stats_queue. */
export const gnetStatsQueue = struct('gnet_stats_queue', [
  ['qlen', field.u32],
  ['backlog', field.u32],
  ['drops', field.u32],
  ['requeues', field.u32],
  ['overlimits', field.u32],
] as const);

/** Attributes inside TCA_STATS2 and TCA_ACT_STATS (TCA_STATS_*). */
export const TCA_STATS_SET = attrSet('TCA_STATS', {
  basic: [1, gnetStatsBasic],
  rateEst: [2, gnetStatsRateEst],
  queue: [3, gnetStatsQueue],
  /** The kind's xstats again (the same bytes as TCA_XSTATS). */
  app: [4, bytes],
  rateEst64: [5, gnetStatsRateEst64],
  pad: [6, bytes],
  basicHw: [7, gnetStatsBasic],
  pkt64: [8, u64],
} as const);
export type TcaStats2 = AttrValues<typeof TCA_STATS_SET.defs>;

/** struct tc_stats (TCA_STATS, the legacy copy). */
export const tcStats = struct(
  'tc_stats',
  [
    ['bytes', field.u64],
    ['packets', field.u32],
    ['drops', field.u32],
    ['overlimits', field.u32],
    ['bps', field.u32],
    ['pps', field.u32],
    ['qlen', field.u32],
    ['backlog', field.u32],
    pad(4),
  ] as const,
  { minSize: 36 },
);
