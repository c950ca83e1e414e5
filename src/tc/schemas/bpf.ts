/** bpf classifier options (TCA_BPF_*): a classic program (TCA_BPF_OPS) or an eBPF one (fd, name, id, tag), flags, actions. */
import { DecodeError, EncodeError, attrSet, bytes, field, string, struct, u16, u32 } from '../../netlink/index.js';
import type { AttrValues, Codec } from '../../netlink/index.js';
import type { CbpfInsn } from '../cbpf.js';
import { TCA_BPF } from '../constants.js';
import { actionList } from './action.js';

/** struct sock_filter: one classic BPF instruction, host order. */
export const sockFilter = struct('sock_filter', [
  ['code', field.u16],
  ['jt', field.u8],
  ['jf', field.u8],
  ['k', field.u32],
] as const);

/** TCA_BPF_OPS: the instructions back to back (their count goes in TCA_BPF_OPS_LEN). */
export const sockFilters: Codec<CbpfInsn[]> = {
  name: 'sock_filter[]',
  encode(w, v) {
    if (!Array.isArray(v)) throw new EncodeError('TCA_BPF_OPS needs an array of sock_filter {code, jt, jf, k}');
    for (const insn of v) sockFilter.encode(w, insn);
  },
  decode(buf, start, end) {
    const n = end - start;
    if (n % sockFilter.size) throw new DecodeError(`sock_filter[] needs a multiple of ${sockFilter.size} bytes, got ${n}`, [], start);
    const out = new Array<CbpfInsn>(n / sockFilter.size);
    for (let i = 0, at = start; at < end; i++, at += sockFilter.size) {
      out[i] = { code: buf.readUInt16LE(at), jt: buf[at + 2]!, jf: buf[at + 3]!, k: buf.readUInt32LE(at + 4) };
    }
    return out;
  },
};

export const TCA_BPF_SET = attrSet('TCA_BPF', {
  act: [TCA_BPF.ACT, actionList],
  police: [TCA_BPF.POLICE, bytes],
  classid: [TCA_BPF.CLASSID, u32],
  opsLen: [TCA_BPF.OPS_LEN, u16],
  ops: [TCA_BPF.OPS, sockFilters],
  fd: [TCA_BPF.FD, u32],
  name: [TCA_BPF.NAME, string],
  flags: [TCA_BPF.FLAGS, u32],
  flagsGen: [TCA_BPF.FLAGS_GEN, u32],
  tag: [TCA_BPF.TAG, bytes],
  id: [TCA_BPF.ID, u32],
} as const);
export type BpfAttrs = AttrValues<typeof TCA_BPF_SET.defs>;
