/** Action attributes (TCA_ACT_*), mirred and gact options, and the RTM_*ACTION message. */
import {
  EncodeError,
  NLA_F,
  NLA_HDRLEN,
  NLA_TYPE_MASK,
  align4,
  attrSet,
  bytes,
  field,
  indexed,
  messageSchema,
  nested,
  pad,
  string,
  struct,
  subMessage,
  u32,
} from '../../netlink/index.js';
import type { AttrSet, AttrValues, ContainerCodec, MessageBody } from '../../netlink/index.js';
import { TCA_ACT, TCA_GACT, TCA_MIRRED, TCA_ROOT } from '../constants.js';
import { nlaBitfield32 } from './common.js';
import { TCA_STATS_SET } from './stats.js';

/** struct tcf_t: times in clock ticks (USER_HZ) since boot. */
export const tcfT = struct(
  'tcf_t',
  [
    ['install', field.u64],
    ['lastuse', field.u64],
    ['expires', field.u64],
    ['firstuse', field.u64],
  ] as const,
  { minSize: 24 },
);

/** struct tc_mirred: tc_gen (index, capab, action, refcnt, bindcnt), eaction, ifindex. */
export const tcMirred = struct('tc_mirred', [
  ['index', field.u32],
  ['capab', field.u32],
  ['action', field.s32],
  ['refcnt', field.s32],
  ['bindcnt', field.s32],
  ['eaction', field.s32],
  ['ifindex', field.u32],
] as const);
export type TcMirred = ReturnType<typeof tcMirred.zero>;

export const TCA_MIRRED_SET = attrSet('TCA_MIRRED', {
  tm: [TCA_MIRRED.TM, tcfT],
  parms: [TCA_MIRRED.PARMS, tcMirred],
  pad: [TCA_MIRRED.PAD, bytes],
  blockid: [TCA_MIRRED.BLOCKID, u32],
} as const);
export type MirredOptions = AttrValues<typeof TCA_MIRRED_SET.defs>;

/** struct tc_gact: tc_gen only. */
export const tcGact = struct('tc_gact', [
  ['index', field.u32],
  ['capab', field.u32],
  ['action', field.s32],
  ['refcnt', field.s32],
  ['bindcnt', field.s32],
] as const);
/** struct tc_gact_p. */
export const tcGactP = struct('tc_gact_p', [
  ['ptype', field.u16],
  ['pval', field.u16],
  ['paction', field.s32],
] as const);

export const TCA_GACT_SET = attrSet('TCA_GACT', {
  tm: [TCA_GACT.TM, tcfT],
  parms: [TCA_GACT.PARMS, tcGact],
  prob: [TCA_GACT.PROB, tcGactP],
  pad: [TCA_GACT.PAD, bytes],
} as const);

/** Options by action kind. */
const ACT_OPTIONS = {
  mirred: nested(TCA_MIRRED_SET),
  gact: nested(TCA_GACT_SET),
} as const;

/** One action (an element of TCA_U32_ACT / TCA_ACT_TAB). */
export const TCA_ACT_SET = attrSet('TCA_ACT', {
  // iproute2 writes the kind with its NUL and the options with NLA_F_NESTED.
  kind: [TCA_ACT.KIND, string],
  options: [TCA_ACT.OPTIONS, subMessage('kind', ACT_OPTIONS, { flag: true, selectorType: TCA_ACT.KIND })],
  index: [TCA_ACT.INDEX, u32],
  stats: [TCA_ACT.STATS, nested(TCA_STATS_SET)],
  pad: [TCA_ACT.PAD, bytes],
  cookie: [TCA_ACT.COOKIE, bytes],
  flags: [TCA_ACT.FLAGS, nlaBitfield32],
  hwStats: [TCA_ACT.HW_STATS, nlaBitfield32],
  usedHwStats: [TCA_ACT.USED_HW_STATS, nlaBitfield32],
  inHwCount: [TCA_ACT.IN_HW_COUNT, u32],
} as const);
export type TcaAct = AttrValues<typeof TCA_ACT_SET.defs>;

/**
 * One action as it travels: the TCA_ACT attributes, plus `optionsUnflagged` when TCA_ACT_OPTIONS
 * came without NLA_F_NESTED. iproute2 sets the flag and the kernel's dumps do not; recording the
 * difference keeps decode → encode byte-exact for both. Absent means flagged (iproute2's way).
 */
export type TcaActEntry = TcaAct & { optionsUnflagged?: true };

const actEntry: ContainerCodec<TcaActEntry> = {
  name: 'nested TCA_ACT',
  encode(w, v) {
    if (typeof v !== 'object' || v === null) throw new EncodeError(`TCA_ACT attributes expected, got ${String(v)}`);
    const { optionsUnflagged, ...attrs } = v;
    const start = w.pos;
    TCA_ACT_SET.encode(w, attrs);
    if (!optionsUnflagged) return;
    const b = w.view();
    for (let at = start; at + NLA_HDRLEN <= w.pos; at += align4(b.readUInt16LE(at))) {
      const type = b.readUInt16LE(at + 2);
      if ((type & NLA_TYPE_MASK) === TCA_ACT.OPTIONS) b.writeUInt16LE(type & ~NLA_F.NESTED, at + 2);
      if (b.readUInt16LE(at) < NLA_HDRLEN) break;
    }
  },
  decode(buf, start, end, opts) {
    const v: TcaActEntry = TCA_ACT_SET.decode(buf, start, end, opts);
    for (let at = start; at + NLA_HDRLEN <= end; at += align4(buf.readUInt16LE(at))) {
      const type = buf.readUInt16LE(at + 2);
      if ((type & NLA_TYPE_MASK) === TCA_ACT.OPTIONS && !(type & NLA_F.NESTED)) v.optionsUnflagged = true;
      if (buf.readUInt16LE(at) < NLA_HDRLEN) break;
    }
    return v;
  },
  innerSet: () => TCA_ACT_SET as unknown as AttrSet,
};

/** A numbered list of actions, TCA_ACT_PRIO_1..n (TCA_U32_ACT, TCA_BASIC_ACT, TCA_ACT_TAB). */
export const actionList = indexed(actEntry);

/** struct tcamsg, the header of RTM_NEWACTION / DELACTION / GETACTION. */
export const tcamsg = struct('tcamsg', [['family', field.u8], pad(3)] as const);

export const TCA_ROOT_SET = attrSet('TCA_ROOT', {
  tab: [TCA_ROOT.TAB, actionList],
  flags: [TCA_ROOT.FLAGS, nlaBitfield32],
  count: [TCA_ROOT.COUNT, u32],
  timeDelta: [TCA_ROOT.TIME_DELTA, u32],
  extWarnMsg: [TCA_ROOT.EXT_WARN_MSG, string],
} as const);

/** RTM_NEWACTION / DELACTION / GETACTION body. */
export const actionMessage = messageSchema(tcamsg, TCA_ROOT_SET);
export type ActionMessage = MessageBody<ReturnType<typeof tcamsg.zero>, typeof TCA_ROOT_SET.defs>;
