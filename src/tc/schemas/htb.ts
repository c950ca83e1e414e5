/** HTB options (TCA_HTB_*): the qdisc's tc_htb_glob, a class's tc_htb_opt and rate tables, xstats. */
import { attrSet, bytes, field, flag, struct, u32, u64 } from '../../netlink/index.js';
import type { AttrValues } from '../../netlink/index.js';
import { TCA_HTB } from '../constants.js';
import { rateTableCodec, structField, tcRatespec } from './common.js';

/** struct tc_htb_glob (TCA_HTB_INIT). */
export const tcHtbGlob = struct('tc_htb_glob', [
  ['version', field.u32],
  ['rate2quantum', field.u32],
  ['defcls', field.u32],
  ['debug', field.u32],
  ['directPkts', field.u32],
] as const);
export type TcHtbGlob = ReturnType<typeof tcHtbGlob.zero>;

/** struct tc_htb_opt (TCA_HTB_PARMS): buffers in psched ticks, quantum in bytes. */
export const tcHtbOpt = struct('tc_htb_opt', [
  ['rate', structField(tcRatespec)],
  ['ceil', structField(tcRatespec)],
  ['buffer', field.u32],
  ['cbuffer', field.u32],
  ['quantum', field.u32],
  ['level', field.u32],
  ['prio', field.u32],
] as const);
export type TcHtbOpt = ReturnType<typeof tcHtbOpt.zero>;

/** struct tc_htb_xstats (a class's TCA_XSTATS). */
export const tcHtbXstats = struct('tc_htb_xstats', [
  ['lends', field.u32],
  ['borrows', field.u32],
  ['giants', field.u32],
  ['tokens', field.s32],
  ['ctokens', field.s32],
] as const);
export type HtbXstats = ReturnType<typeof tcHtbXstats.zero>;

export const TCA_HTB_SET = attrSet('TCA_HTB', {
  parms: [TCA_HTB.PARMS, tcHtbOpt],
  init: [TCA_HTB.INIT, tcHtbGlob],
  ctab: [TCA_HTB.CTAB, rateTableCodec],
  rtab: [TCA_HTB.RTAB, rateTableCodec],
  directQlen: [TCA_HTB.DIRECT_QLEN, u32],
  rate64: [TCA_HTB.RATE64, u64],
  ceil64: [TCA_HTB.CEIL64, u64],
  pad: [TCA_HTB.PAD, bytes],
  offload: [TCA_HTB.OFFLOAD, flag],
} as const);
export type HtbAttrs = AttrValues<typeof TCA_HTB_SET.defs>;
