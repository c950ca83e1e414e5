/**
 * Statistics of qdiscs, classes and actions: TCA_STATS2 (basic, queue, rate estimator, hardware,
 * 64-bit packets) folded into one object.
 */
import type { TcaStats2 } from './schemas/stats.js';

/** Counters as the kernel keeps them; 64-bit counters are bigint. */
export interface TcStats {
  bytes: bigint;
  /** TCA_STATS_PKT64 when the kernel sends it, else the 32-bit basic counter. */
  packets: bigint;
  qlen: number;
  backlogBytes: number;
  drops: number;
  requeues: number;
  overlimits: number;
  /** Rate estimator (0 unless one is configured): bytes and packets per second. */
  rateBytesPerSec: bigint;
  ratePacketsPerSec: bigint;
  /** Hardware counters, when the kernel reports them. */
  hw?: { bytes: bigint; packets: bigint };
}

/** Fold a decoded TCA_STATS2 / TCA_ACT_STATS nest into TcStats. */
export function statsFromAttrs(s: TcaStats2 | undefined): TcStats | undefined {
  if (!s) return undefined;
  const out: TcStats = {
    bytes: s.basic?.bytes ?? 0n,
    packets: s.pkt64 ?? BigInt(s.basic?.packets ?? 0),
    qlen: s.queue?.qlen ?? 0,
    backlogBytes: s.queue?.backlog ?? 0,
    drops: s.queue?.drops ?? 0,
    requeues: s.queue?.requeues ?? 0,
    overlimits: s.queue?.overlimits ?? 0,
    rateBytesPerSec: s.rateEst64?.bps ?? BigInt(s.rateEst?.bps ?? 0),
    ratePacketsPerSec: s.rateEst64?.pps ?? BigInt(s.rateEst?.pps ?? 0),
  };
  if (s.basicHw) out.hw = { bytes: s.basicHw.bytes, packets: BigInt(s.basicHw.packets) };
  return out;
}
