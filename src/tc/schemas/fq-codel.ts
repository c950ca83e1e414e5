/** fq_codel options (TCA_FQ_CODEL_*) and xstats (struct tc_fq_codel_xstats). */
import { DecodeError, EncodeError, attrSet, field, struct, u32, u8 } from '../../netlink/index.js';
import type { AttrValues, Codec } from '../../netlink/index.js';
import { TCA_FQ_CODEL, TCA_FQ_CODEL_XSTATS } from '../constants.js';

/** Times are in microseconds, sizes in bytes or packets as named. */
export const TCA_FQ_CODEL_SET = attrSet('TCA_FQ_CODEL', {
  target: [TCA_FQ_CODEL.TARGET, u32],
  limit: [TCA_FQ_CODEL.LIMIT, u32],
  interval: [TCA_FQ_CODEL.INTERVAL, u32],
  ecn: [TCA_FQ_CODEL.ECN, u32],
  flows: [TCA_FQ_CODEL.FLOWS, u32],
  quantum: [TCA_FQ_CODEL.QUANTUM, u32],
  ceThreshold: [TCA_FQ_CODEL.CE_THRESHOLD, u32],
  dropBatchSize: [TCA_FQ_CODEL.DROP_BATCH_SIZE, u32],
  memoryLimit: [TCA_FQ_CODEL.MEMORY_LIMIT, u32],
  ceThresholdSelector: [TCA_FQ_CODEL.CE_THRESHOLD_SELECTOR, u8],
  ceThresholdMask: [TCA_FQ_CODEL.CE_THRESHOLD_MASK, u8],
} as const);
export type FqCodelAttrs = AttrValues<typeof TCA_FQ_CODEL_SET.defs>;

/** struct tc_fq_codel_qd_stats. */
export const tcFqCodelQdStats = struct(
  'tc_fq_codel_qd_stats',
  [
    ['maxpacket', field.u32],
    ['dropOverlimit', field.u32],
    ['ecnMark', field.u32],
    ['newFlowCount', field.u32],
    ['newFlowsLen', field.u32],
    ['oldFlowsLen', field.u32],
    ['ceMark', field.u32],
    ['memoryUsage', field.u32],
    ['dropOvermemory', field.u32],
  ] as const,
  { minSize: 24 },
);
export type FqCodelQdiscXstats = ReturnType<typeof tcFqCodelQdStats.zero>;

/** struct tc_fq_codel_cl_stats. */
export const tcFqCodelClStats = struct('tc_fq_codel_cl_stats', [
  ['deficit', field.s32],
  ['ldelay', field.u32],
  ['count', field.u32],
  ['lastcount', field.u32],
  ['dropping', field.u32],
  ['dropNext', field.s32],
] as const);
export type FqCodelClassXstats = ReturnType<typeof tcFqCodelClStats.zero>;

export type FqCodelXstats = { type: 0; qdisc: FqCodelQdiscXstats } | { type: 1; class: FqCodelClassXstats };

const UNION_SIZE = tcFqCodelQdStats.size; // the larger member

/** struct tc_fq_codel_xstats: a type, then the qdisc or class member of the union. */
export const fqCodelXstats: Codec<FqCodelXstats> = {
  name: 'tc_fq_codel_xstats',
  encode(w, v) {
    const start = w.pos;
    if (v?.type === TCA_FQ_CODEL_XSTATS.QDISC) {
      w.u32(0);
      tcFqCodelQdStats.encode(w, v.qdisc);
    } else if (v?.type === TCA_FQ_CODEL_XSTATS.CLASS) {
      w.u32(1);
      tcFqCodelClStats.encode(w, v.class);
    } else throw new EncodeError('tc_fq_codel_xstats.type must be 0 (qdisc) or 1 (class)');
    w.zeros(4 + UNION_SIZE - (w.pos - start));
  },
  decode(buf, start, end) {
    if (end - start < 4) throw new DecodeError(`tc_fq_codel_xstats needs 4 bytes, got ${end - start}`, [], start);
    const type = buf.readUInt32LE(start);
    if (type === TCA_FQ_CODEL_XSTATS.QDISC) return { type: 0, qdisc: tcFqCodelQdStats.decode(buf, start + 4, end) };
    if (type === TCA_FQ_CODEL_XSTATS.CLASS) return { type: 1, class: tcFqCodelClStats.decode(buf, start + 4, end) };
    throw new DecodeError(`tc_fq_codel_xstats has unknown type ${type}`, [], start);
  },
};
