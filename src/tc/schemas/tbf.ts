/** TBF options (TCA_TBF_*). */
import { attrSet, bytes, field, struct, u32, u64 } from '../../netlink/index.js';
import type { AttrValues } from '../../netlink/index.js';
import { TCA_TBF } from '../constants.js';
import { rateTableCodec, structField, tcRatespec } from './common.js';

/** struct tc_tbf_qopt: limit in bytes, buffer in psched ticks. */
export const tcTbfQopt = struct('tc_tbf_qopt', [
  ['rate', structField(tcRatespec)],
  ['peakrate', structField(tcRatespec)],
  ['limit', field.u32],
  ['buffer', field.u32],
  ['mtu', field.u32],
] as const);

export const TCA_TBF_SET = attrSet('TCA_TBF', {
  parms: [TCA_TBF.PARMS, tcTbfQopt],
  rtab: [TCA_TBF.RTAB, rateTableCodec],
  ptab: [TCA_TBF.PTAB, rateTableCodec],
  rate64: [TCA_TBF.RATE64, u64],
  prate64: [TCA_TBF.PRATE64, u64],
  burst: [TCA_TBF.BURST, u32],
  pburst: [TCA_TBF.PBURST, u32],
  pad: [TCA_TBF.PAD, bytes],
} as const);
export type TbfAttrs = AttrValues<typeof TCA_TBF_SET.defs>;
