/**
 * struct tcmsg and the TCA attribute set shared by RTM_*QDISC, RTM_*TCLASS and RTM_*TFILTER.
 * TCA_OPTIONS and TCA_XSTATS are sub-messages chosen by TCA_KIND; kinds we do not model are kept
 * as raw bytes.
 */
import { attrSet, bytes, field, flag, messageSchema, nested, pad, string, struct, subMessage, u32, u8 } from '../../netlink/index.js';
import type { AttrValues, MessageBody } from '../../netlink/index.js';
import { TCA } from '../constants.js';
import { TCA_BASIC_SET } from './basic.js';
import { TCA_BPF_SET } from './bpf.js';
import { nlaBitfield32, tcEstimator } from './common.js';
import { tcFifoQopt } from './fifo.js';
import { TCA_FQ_CODEL_SET, fqCodelXstats } from './fq-codel.js';
import { TCA_HTB_SET, tcHtbXstats } from './htb.js';
import { TCA_STATS_SET, tcStats } from './stats.js';
import { TCA_TBF_SET } from './tbf.js';
import { TCA_U32_SET } from './u32.js';

/** struct tcmsg. For filters, `info` is (priority << 16) | htons(protocol). */
export const tcmsg = struct('tcmsg', [
  ['family', field.u8],
  pad(3),
  ['ifindex', field.s32],
  ['handle', field.u32],
  ['parent', field.u32],
  ['info', field.u32],
] as const);
export type TcMsg = ReturnType<typeof tcmsg.zero>;

/** ingress and clsact have no options; the kernel dumps an empty TCA_OPTIONS nest. */
export const TCA_NO_OPTIONS = attrSet('TCA_OPTIONS', {} as const);

/** TCA_OPTIONS layouts by TCA_KIND. */
export const OPTIONS_BY_KIND = {
  ingress: nested(TCA_NO_OPTIONS),
  clsact: nested(TCA_NO_OPTIONS),
  htb: nested(TCA_HTB_SET),
  fq_codel: nested(TCA_FQ_CODEL_SET),
  tbf: nested(TCA_TBF_SET),
  pfifo: tcFifoQopt,
  bfifo: tcFifoQopt,
  u32: nested(TCA_U32_SET),
  basic: nested(TCA_BASIC_SET),
  bpf: nested(TCA_BPF_SET),
} as const;

/** TCA_XSTATS layouts by TCA_KIND. */
export const XSTATS_BY_KIND = {
  htb: tcHtbXstats,
  fq_codel: fqCodelXstats,
} as const;

export const TCA_SET = attrSet('TCA', {
  kind: [TCA.KIND, string],
  options: [TCA.OPTIONS, subMessage('kind', OPTIONS_BY_KIND, { selectorType: TCA.KIND })],
  stats: [TCA.STATS, tcStats],
  xstats: [TCA.XSTATS, subMessage('kind', XSTATS_BY_KIND)],
  rate: [TCA.RATE, tcEstimator],
  fcnt: [TCA.FCNT, u32],
  stats2: [TCA.STATS2, nested(TCA_STATS_SET)],
  stab: [TCA.STAB, bytes],
  pad: [TCA.PAD, bytes],
  dumpInvisible: [TCA.DUMP_INVISIBLE, flag],
  chain: [TCA.CHAIN, u32],
  hwOffload: [TCA.HW_OFFLOAD, u8],
  ingressBlock: [TCA.INGRESS_BLOCK, u32],
  egressBlock: [TCA.EGRESS_BLOCK, u32],
  dumpFlags: [TCA.DUMP_FLAGS, nlaBitfield32],
  extWarnMsg: [TCA.EXT_WARN_MSG, string],
} as const);
export type TcaAttrs = AttrValues<typeof TCA_SET.defs>;

/** RTM_{NEW,DEL,GET}{QDISC,TCLASS,TFILTER} body. */
export const tcMessage = messageSchema(tcmsg, TCA_SET);
export type TcMessage = MessageBody<TcMsg, typeof TCA_SET.defs>;
