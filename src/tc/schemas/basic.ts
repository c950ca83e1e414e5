/** basic classifier options (TCA_BASIC_*); Mesos' ARP and catch-all filters use it. */
import { attrSet, bytes, field, struct, u32 } from '../../netlink/index.js';
import type { AttrValues } from '../../netlink/index.js';
import { TCA_BASIC } from '../constants.js';
import { actionList } from './action.js';

/** struct tc_basic_pcnt. */
export const tcBasicPcnt = struct('tc_basic_pcnt', [
  ['rcnt', field.u64],
  ['rhit', field.u64],
] as const);

export const TCA_BASIC_SET = attrSet('TCA_BASIC', {
  classid: [TCA_BASIC.CLASSID, u32],
  ematches: [TCA_BASIC.EMATCHES, bytes],
  act: [TCA_BASIC.ACT, actionList],
  police: [TCA_BASIC.POLICE, bytes],
  pcnt: [TCA_BASIC.PCNT, tcBasicPcnt],
  pad: [TCA_BASIC.PAD, bytes],
} as const);
export type BasicAttrs = AttrValues<typeof TCA_BASIC_SET.defs>;
