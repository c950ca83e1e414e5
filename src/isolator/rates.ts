/**
 * Per-container HTB shaping configuration (Mesos §5.1). Rates are bytes per second.
 * Differences from Mesos, on purpose: a zero rate limit means "no limit" (Mesos clamped it to the
 * minimum, or built an HTB with rate 0), and per-CPU scaling uses the container's cpus.
 */
export interface HtbConfig {
  rateBytesPerSec: number;
  ceilBytesPerSec?: number;
  burstBytes?: number;
}

export interface RateFlags {
  /** Fixed rate for every container; 0 = no limit. */
  limitBytesPerSec?: number;
  /** Rate per CPU of the container (already resolved from 'auto'). */
  perCpuBytesPerSec?: number;
  minimumBytesPerSec?: number;
  maximumBytesPerSec?: number;
  ceilBytesPerSec?: number;
  burstBytes?: number;
}

/** Mesos' DEFAULT_MINIMUM_EGRESS_RATE_LIMIT (1 Mbit/s), used for ingress too. */
export const DEFAULT_MINIMUM_RATE_BYTES_PER_SEC = 125_000;

export function htbConfig(flags: RateFlags, containerCpus: number | undefined): HtbConfig | undefined {
  let rate: number;
  if (flags.limitBytesPerSec !== undefined) {
    if (flags.limitBytesPerSec === 0) return undefined;
    rate = flags.limitBytesPerSec;
  } else if (flags.perCpuBytesPerSec !== undefined) {
    rate = flags.perCpuBytesPerSec * Math.floor(containerCpus ?? 0);
  } else {
    return undefined;
  }
  rate = Math.max(flags.minimumBytesPerSec ?? DEFAULT_MINIMUM_RATE_BYTES_PER_SEC, rate);
  if (flags.maximumBytesPerSec !== undefined) rate = Math.min(flags.maximumBytesPerSec, rate);
  if (rate <= 0) return undefined; // an explicit minimum of 0 and no cpus: nothing to shape
  const cfg: HtbConfig = { rateBytesPerSec: rate };
  if (flags.ceilBytesPerSec !== undefined && flags.ceilBytesPerSec > rate) {
    cfg.ceilBytesPerSec = flags.ceilBytesPerSec;
    if (flags.burstBytes !== undefined) cfg.burstBytes = flags.burstBytes;
  }
  return cfg;
}

export function sameHtbConfig(a: HtbConfig | undefined, b: HtbConfig | undefined): boolean {
  return a?.rateBytesPerSec === b?.rateBytesPerSec && a?.ceilBytesPerSec === b?.ceilBytesPerSec && a?.burstBytes === b?.burstBytes;
}
