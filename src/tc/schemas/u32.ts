/** u32 classifier options (TCA_U32_*): the selector with its keys, counters, mark, actions. */
import { DecodeError, EncodeError, attrSet, bytes, field, pad, string, struct, structWithArray, u32 } from '../../netlink/index.js';
import type { AttrValues, Codec } from '../../netlink/index.js';
import { TCA_U32 } from '../constants.js';
import { actionList } from './action.js';

/** struct tc_u32_key: a 32-bit big-endian value/mask at a 4-byte-aligned offset (may be negative). */
export const tcU32Key = struct('tc_u32_key', [
  ['mask', field.be32],
  ['val', field.be32],
  ['off', field.s32],
  ['offmask', field.s32],
] as const);
export type TcU32Key = ReturnType<typeof tcU32Key.zero>;

/** struct tc_u32_sel without its keys. */
export const tcU32SelHead = struct('tc_u32_sel', [
  ['flags', field.u8],
  ['offshift', field.u8],
  ['nkeys', field.u8],
  pad(1),
  ['offmask', field.be16],
  ['off', field.u16],
  ['offoff', field.s16],
  ['hoff', field.s16],
  ['hmask', field.be32],
] as const);

/** struct tc_u32_sel followed by its nkeys keys. */
export const tcU32Sel = structWithArray(tcU32SelHead, 'nkeys', 'keys', tcU32Key);
export type TcU32Sel = ReturnType<typeof tcU32Sel.zero>;

/** struct tc_u32_mark. */
export const tcU32Mark = struct('tc_u32_mark', [
  ['val', field.u32],
  ['mask', field.u32],
  ['success', field.u32],
] as const);

/** struct tc_u32_pcnt: rule counters, then one hit counter per key. */
export interface U32Pcnt {
  rcnt: bigint;
  rhit: bigint;
  kcnts: bigint[];
}
export const tcU32Pcnt: Codec<U32Pcnt> = {
  name: 'tc_u32_pcnt',
  encode(w, v) {
    if (typeof v?.rcnt !== 'bigint' || typeof v.rhit !== 'bigint' || !Array.isArray(v.kcnts))
      throw new EncodeError('tc_u32_pcnt needs bigint rcnt, rhit and kcnts[]');
    w.u64(v.rcnt);
    w.u64(v.rhit);
    for (const k of v.kcnts) w.u64(k);
  },
  decode(buf, start, end) {
    if (end - start < 16 || (end - start) % 8) throw new DecodeError(`tc_u32_pcnt needs 16 + 8·n bytes, got ${end - start}`, [], start);
    const kcnts: bigint[] = [];
    for (let at = start + 16; at < end; at += 8) kcnts.push(buf.readBigUInt64LE(at));
    return { rcnt: buf.readBigUInt64LE(start), rhit: buf.readBigUInt64LE(start + 8), kcnts };
  },
};

export const TCA_U32_SET = attrSet('TCA_U32', {
  classid: [TCA_U32.CLASSID, u32],
  hash: [TCA_U32.HASH, u32],
  link: [TCA_U32.LINK, u32],
  divisor: [TCA_U32.DIVISOR, u32],
  sel: [TCA_U32.SEL, tcU32Sel],
  police: [TCA_U32.POLICE, bytes],
  act: [TCA_U32.ACT, actionList],
  indev: [TCA_U32.INDEV, string],
  pcnt: [TCA_U32.PCNT, tcU32Pcnt],
  mark: [TCA_U32.MARK, tcU32Mark],
  flags: [TCA_U32.FLAGS, u32],
  pad: [TCA_U32.PAD, bytes],
} as const);
export type U32Attrs = AttrValues<typeof TCA_U32_SET.defs>;
