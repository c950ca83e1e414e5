/** Building blocks shared by the tc schemas: nested struct fields, rate tables, bitfield32. */
import { DecodeError, EncodeError, field, struct } from '../../netlink/index.js';
import type { Codec, FieldType, StructLayout } from '../../netlink/index.js';

/** A struct used as a field of another struct (tc_ratespec inside tc_htb_opt). */
export function structField<T>(layout: StructLayout<T>): FieldType<T> {
  return {
    name: layout.name,
    size: layout.size,
    zero: layout.zero(),
    write: (w, v) => layout.encode(w, v as Partial<T>),
    read: (b, at) => layout.decode(b, at, at + layout.size),
  };
}

/** struct tc_ratespec: a rate in bytes/s (u32; the 64-bit rate goes in a separate attribute). */
export const tcRatespec = struct('tc_ratespec', [
  ['cellLog', field.u8],
  ['linklayer', field.u8],
  ['overhead', field.u16],
  ['cellAlign', field.s16],
  ['mpu', field.u16],
  ['rate', field.u32],
] as const);
export type TcRatespec = ReturnType<typeof tcRatespec.zero>;

/** A 256-entry rate table (TCA_HTB_RTAB, TCA_TBF_RTAB, ...): transmit time in ticks per size cell. */
export const rateTableCodec: Codec<number[]> = {
  name: 'rate table (256 × u32)',
  encode(w, v) {
    if (!Array.isArray(v) || v.length !== 256) throw new EncodeError(`a rate table has 256 entries, got ${Array.isArray(v) ? v.length : typeof v}`);
    for (const x of v) {
      if (!Number.isInteger(x) || x < 0 || x > 0xffffffff) throw new EncodeError(`rate table entries are u32, got ${String(x)}`);
      w.u32(x);
    }
  },
  decode(buf, start, end) {
    if (end - start !== 1024) throw new DecodeError(`a rate table needs 1024 bytes, got ${end - start}`, [], start);
    const out = new Array<number>(256);
    for (let i = 0; i < 256; i++) out[i] = buf.readUInt32LE(start + i * 4);
    return out;
  },
};

/** struct nla_bitfield32 (TCA_ACT_FLAGS, TCA_DUMP_FLAGS, TCA_ROOT_FLAGS). */
export const nlaBitfield32 = struct('nla_bitfield32', [
  ['value', field.u32],
  ['selector', field.u32],
] as const);

/** struct tc_estimator (TCA_RATE): log2 of the interval in 1/4 s, and the EWMA log. */
export const tcEstimator = struct('tc_estimator', [
  ['interval', field.s8],
  ['ewmaLog', field.u8],
] as const);
