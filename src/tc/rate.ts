/**
 * Rate math exactly as iproute2 computes it (tc/tc_core.c, q_htb.c, q_tbf.c): psched clock
 * parameters, transmit times in ticks, 256-entry rate tables and the default HTB burst. C's
 * double → unsigned conversions are reproduced, so the bytes equal what `tc` sends.
 *
 * The clock parameters come from /proc/net/psched, read once per process (systemPsched()); every
 * function takes them as an argument, so tests inject fixed values.
 */
import { readFileSync } from 'node:fs';
import { TC_LINKLAYER } from './constants.js';
import { TcInputError } from './errors.js';

/** The kernel's packet-scheduler clock, as /proc/net/psched describes it. */
export interface Psched {
  /** Ticks per microsecond (iproute2's tick_in_usec; 15.625 on current kernels). */
  tickInUsec: number;
  /** clock_res / 1e6. */
  clockFactor: number;
  /** What iproute2's get_hz() returns: the 4th field when the clock resolution is 1e6, else 100. */
  hz: number;
}

const TIME_UNITS_PER_SEC = 1_000_000;

/** Parse the four hex words of /proc/net/psched. */
export function parsePsched(text: string): Psched {
  const words = text
    .trim()
    .split(/\s+/)
    .map((w) => parseInt(w, 16));
  if (words.length < 3 || words.slice(0, 3).some((w) => !Number.isFinite(w) || w <= 0)) {
    throw new Error(`cannot parse /proc/net/psched: ${JSON.stringify(text)}`);
  }
  const [t2usRaw, us2t, clockRes] = words as [number, number, number, number?];
  const t2us = clockRes === 1_000_000_000 ? us2t : t2usRaw; // iproute2's compatibility hack for ns clocks
  const clockFactor = clockRes / TIME_UNITS_PER_SEC;
  const hzField = words[3];
  const hz = words[2] === 1_000_000 && hzField ? hzField : 100;
  return { tickInUsec: (t2us / us2t) * clockFactor, clockFactor, hz };
}

let cached: Psched | undefined;
/** /proc/net/psched of this machine, read once. */
export function systemPsched(): Psched {
  cached ??= parsePsched(readFileSync('/proc/net/psched', 'utf8'));
  return cached;
}

/** C's conversion of a non-negative double to `unsigned int` on x86-64 (truncate, keep 32 bits). */
function toU32(x: number): number {
  const t = Math.trunc(x);
  if (t < 2 ** 32) return t >>> 0;
  if (t < 2 ** 63) return Number(BigInt(t) & 0xffffffffn);
  return 0;
}

function checkRate(what: string, v: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw new TcInputError(
      `${what} must be a positive integer number of bytes per second, got ${String(v)}${v === 0 ? ' (a zero rate is refused: omit the shaping instead)' : ''}`,
    );
  }
  return v;
}

/** tc_calc_xmittime(): ticks needed to send `sizeBytes` at `rateBytesPerSec`. */
export function xmittimeTicks(psched: Psched, rateBytesPerSec: number, sizeBytes: number): number {
  const usec = toU32(TIME_UNITS_PER_SEC * (sizeBytes / rateBytesPerSec));
  return toU32(usec * psched.tickInUsec);
}

/** tc_calc_xmitsize(): bytes sent at `rateBytesPerSec` in `ticks` (how tc prints a burst). */
export function xmitsizeBytes(psched: Psched, rateBytesPerSec: number, ticks: number): number {
  const usec = toU32(ticks / psched.tickInUsec);
  return toU32((rateBytesPerSec * usec) / TIME_UNITS_PER_SEC);
}

/** A size as the link layer sees it (tc_adjust_size): at least mpu, padded to ATM cells for ATM. */
function adjustSize(size: number, mpu: number, linklayer: number): number {
  const sz = size < mpu ? mpu : size;
  if (linklayer === TC_LINKLAYER.ATM) return Math.ceil(sz / 48) * 53;
  return sz;
}

/** Input of rateTable (tc_calc_rtable's arguments). */
export interface RateTableOptions {
  /** The rate the table is computed for (what iproute2 puts in tc_ratespec.rate). */
  rateBytesPerSec: number;
  /** Largest packet; 0 means 2047, as in tc. */
  mtuBytes: number;
  /** Minimum packet unit. */
  mpuBytes?: number;
  /** log2 of the size cell; computed from the mtu when omitted. */
  cellLog?: number;
  linklayer?: number;
}

/** tc_calc_rtable(): the 256-entry rate table and its cell_log. */
export function rateTable(psched: Psched, o: RateTableOptions): { table: number[]; cellLog: number } {
  const mtu = o.mtuBytes || 2047;
  let cellLog = o.cellLog ?? -1;
  if (cellLog < 0) {
    cellLog = 0;
    while (mtu >> cellLog > 255) cellLog++;
  }
  const table = new Array<number>(256);
  for (let i = 0; i < 256; i++) {
    table[i] = xmittimeTicks(psched, o.rateBytesPerSec, adjustSize((i + 1) << cellLog, o.mpuBytes ?? 0, o.linklayer ?? TC_LINKLAYER.ETHERNET));
  }
  return { table, cellLog };
}

/** What an HTB class is asked for; everything but the rate is optional, as with tc. */
export interface HtbRateInput {
  rateBytesPerSec: number;
  /** Defaults to the rate. */
  ceilBytesPerSec?: number;
  /** Bytes that may be sent at full speed (tc `burst`); default rate/HZ + mtu. */
  burstBytes?: number;
  /** The same for the ceil (tc `cburst`); default ceil/HZ + mtu. */
  cburstBytes?: number;
  /** Default 1600, as tc. */
  mtuBytes?: number;
  mpuBytes?: number;
  overheadBytes?: number;
  linklayer?: number;
}

/** What htbRateParams computes: the tc_htb_opt fields (ratespecs, buffers in ticks) and the rate tables. */
export interface HtbRateParams {
  rate: { cellLog: number; linklayer: number; overhead: number; cellAlign: number; mpu: number; rate: number };
  ceil: { cellLog: number; linklayer: number; overhead: number; cellAlign: number; mpu: number; rate: number };
  bufferTicks: number;
  cbufferTicks: number;
  rtab: number[];
  ctab: number[];
  /** Set when the rate does not fit the 32-bit ratespec (TCA_HTB_RATE64). */
  rate64?: bigint;
  ceil64?: bigint;
}

const U32_LIMIT = 2 ** 32;

/** htb_parse_class_opt()'s arithmetic: ratespecs, buffers in ticks, rate tables, 64-bit rates. */
export function htbRateParams(psched: Psched, input: HtbRateInput): HtbRateParams {
  const rate = checkRate('HTB rate', input.rateBytesPerSec);
  const ceil = checkRate('HTB ceil', input.ceilBytesPerSec ?? rate);
  const mtu = input.mtuBytes ?? 1600;
  const mpu = input.mpuBytes ?? 0;
  const overhead = input.overheadBytes ?? 0;
  const linklayer = input.linklayer ?? TC_LINKLAYER.ETHERNET;
  for (const [k, v, max] of [
    ['mtuBytes', mtu, 0xffffffff],
    ['mpuBytes', mpu, 0xffff],
    ['overheadBytes', overhead, 0xffff],
    ['burstBytes', input.burstBytes ?? 1, 0xffffffff],
    ['cburstBytes', input.cburstBytes ?? 1, 0xffffffff],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new TcInputError(`HTB ${k} must be an integer in 0..${max}, got ${String(v)}`);
  }
  if (input.burstBytes === 0 || input.cburstBytes === 0)
    throw new TcInputError('HTB burst and cburst must be positive (omit them for the default rate/HZ + mtu)');
  const buffer = toU32(input.burstBytes ?? Math.floor(rate / psched.hz) + mtu);
  const cbuffer = toU32(input.cburstBytes ?? Math.floor(ceil / psched.hz) + mtu);
  const spec = (r: number) => ({ cellLog: 0, linklayer: linklayer & TC_LINKLAYER.MASK, overhead, cellAlign: -1, mpu, rate: r >= U32_LIMIT ? 0xffffffff : r });
  const rateSpec = spec(rate);
  const ceilSpec = spec(ceil);
  const r = rateTable(psched, { rateBytesPerSec: rateSpec.rate, mtuBytes: mtu, mpuBytes: mpu, linklayer });
  const c = rateTable(psched, { rateBytesPerSec: ceilSpec.rate, mtuBytes: mtu, mpuBytes: mpu, linklayer });
  rateSpec.cellLog = r.cellLog;
  ceilSpec.cellLog = c.cellLog;
  const out: HtbRateParams = {
    rate: rateSpec,
    ceil: ceilSpec,
    bufferTicks: xmittimeTicks(psched, rate, buffer),
    cbufferTicks: xmittimeTicks(psched, ceil, cbuffer),
    rtab: r.table,
    ctab: c.table,
  };
  if (rate >= U32_LIMIT) out.rate64 = BigInt(rate);
  if (ceil >= U32_LIMIT) out.ceil64 = BigInt(ceil);
  return out;
}

/** What a TBF qdisc is asked for. */
export interface TbfRateInput {
  rateBytesPerSec: number;
  burstBytes: number;
  /** Either a queue limit in bytes, or the latency it stands for. */
  limitBytes?: number;
  latencyUs?: number;
  mtuBytes?: number;
  mpuBytes?: number;
  overheadBytes?: number;
  linklayer?: number;
}

/** q_tbf.c's arithmetic (without a peak rate). */
export function tbfRateParams(psched: Psched, input: TbfRateInput) {
  const rate = checkRate('TBF rate', input.rateBytesPerSec);
  const burst = input.burstBytes;
  if (!Number.isInteger(burst) || burst <= 0 || burst > 0xffffffff) throw new TcInputError(`TBF burstBytes must be a positive u32, got ${String(burst)}`);
  if ((input.limitBytes === undefined) === (input.latencyUs === undefined)) throw new TcInputError('TBF needs exactly one of limitBytes and latencyUs');
  const mtu = input.mtuBytes ?? 0;
  const mpu = input.mpuBytes ?? 0;
  const linklayer = input.linklayer ?? TC_LINKLAYER.ETHERNET;
  let limit = input.limitBytes ?? 0;
  if (input.latencyUs !== undefined) {
    if (!Number.isInteger(input.latencyUs) || input.latencyUs < 0)
      throw new TcInputError(`TBF latencyUs must be a non-negative integer, got ${String(input.latencyUs)}`);
    limit = toU32((rate * input.latencyUs) / TIME_UNITS_PER_SEC + burst);
  } else if (!Number.isInteger(limit) || limit <= 0 || limit > 0xffffffff)
    throw new TcInputError(`TBF limitBytes must be a positive u32, got ${String(limit)}`);
  const rate32 = rate >= U32_LIMIT ? 0xffffffff : rate;
  const t = rateTable(psched, { rateBytesPerSec: rate32, mtuBytes: mtu, mpuBytes: mpu, linklayer });
  return {
    rate: { cellLog: t.cellLog, linklayer: linklayer & TC_LINKLAYER.MASK, overhead: input.overheadBytes ?? 0, cellAlign: -1, mpu, rate: rate32 },
    limitBytes: limit,
    bufferTicks: xmittimeTicks(psched, rate32, burst),
    burstBytes: burst,
    rtab: t.table,
    rate64: rate >= U32_LIMIT ? BigInt(rate) : undefined,
  };
}
