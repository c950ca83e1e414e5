/**
 * What the attribute decoder reads without a call through a codec: the integer, string, flag and
 * bytes codecs by a small code (a switch, not a closure and a try/catch per attribute), and each
 * declared key through its own compiled property read and store.
 */
import type { Codec } from './codec.js';
import { be16, be32, bytes, copyBytes, flag, readS64, readString, readU64, s16, s32, s64, string, u16, u32, u64, u8, unterminatedString } from './codec.js';

/** A value object's read and store of one key. */
export interface KeyAccessors {
  has: (o: Record<string, unknown>) => boolean;
  set: (o: Record<string, unknown>, v: unknown) => void;
}

/** new Function, or undefined where code generation from strings is disallowed (the generic path then). */
export function compile<F>(params: string[], body: string): F | undefined {
  try {
    return new Function(...params, body) as F;
  } catch (e) {
    if (e instanceof EvalError) return undefined;
    throw e;
  }
}

const PLAIN_KEY = /^[A-Za-z_$][\w$]*$/;

/**
 * A value object's read and store of one key, compiled once per attribute: a named property access
 * has its own inline cache, which stays fast where the decoder's one keyed store for every key
 * of every set would go megamorphic and take the slow path for each new property.
 */
export function accessors(key: string): KeyAccessors {
  if (!PLAIN_KEY.test(key) || key === '__proto__') return { has: (o) => o[key] !== undefined, set: (o, v) => void (o[key] = v) };
  // Compiled once per declared attribute, from an identifier (checked above).
  const has = compile<KeyAccessors['has']>(['o'], `return o.${key} !== undefined;`);
  const set = compile<KeyAccessors['set']>(['o', 'v'], `o.${key} = v;`);
  return has && set ? { has, set } : { has: (o) => o[key] !== undefined, set: (o, v) => void (o[key] = v) };
}

/**
 * Codecs the attribute decoder reads inline (a switch on this code instead of a call through the
 * codec, a size check and a try/catch per attribute): [code, exact payload size or -1].
 */
const PRIM = new Map<Codec<any>, readonly [number, number]>([
  [u8, [1, 1]],
  [u16, [2, 2]],
  [s16, [3, 2]],
  [u32, [4, 4]],
  [s32, [5, 4]],
  [be16, [6, 2]],
  [be32, [7, 4]],
  [u64, [8, 8]],
  [s64, [9, 8]],
  [flag, [10, 0]],
  [string, [11, -1]],
  [unterminatedString, [11, -1]],
  [bytes, [12, -1]],
]);

/** PRIM code → exact payload size (-1: any). */
const PRIM_SIZE: number[] = [];
for (const [code, size] of PRIM.values()) PRIM_SIZE[code] = size;

/** The inline code of a codec, or 0 when it is decoded through its own decode(). */
export const primCode = (codec: Codec<any>): number => PRIM.get(codec)?.[0] ?? 0;
/** The exact payload size an inline code needs (-1: any). */
export const primSize = (code: number): number => PRIM_SIZE[code]!;

/** The value of an inline codec's payload at `s`..`t` (its size already checked). */
export function readPrim(prim: number, buf: Buffer, s: number, t: number): unknown {
  switch (prim) {
    case 1:
      return buf[s];
    case 2:
      return buf.readUInt16LE(s);
    case 3:
      return buf.readInt16LE(s);
    case 4:
      return buf.readUInt32LE(s);
    case 5:
      return buf.readInt32LE(s);
    case 6:
      return buf.readUInt16BE(s);
    case 7:
      return buf.readUInt32BE(s);
    case 8:
      return readU64(buf, s);
    case 9:
      return readS64(buf, s);
    case 10:
      return true;
    case 11:
      return readString(buf, s, t);
    default:
      return copyBytes(buf, s, t);
  }
}
