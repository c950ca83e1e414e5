import type { Codec, DecodeOptions } from './codec.js';
import { formatIpv4, formatLladdr, ipv4Bytes, lladdrBytes, readS64, readU64 } from './codec.js';
import { compile } from './attr-read.js';
import { DecodeError, EncodeError } from './errors.js';
import type { Writer } from './writer.js';

/**
 * Declarative C struct layouts: declare the fields once (with explicit padding), get the encoder,
 * the decoder and the TypeScript type. Host-order fields are little-endian; `be16`/`be32` fields
 * are network order and users still see natural numbers.
 */

/** A fixed-size field type. */
export interface FieldType<T> {
  readonly name: string;
  readonly size: number;
  readonly zero: T;
  write(w: Writer, v: T): void;
  read(buf: Buffer, at: number): T;
}

function intField(
  name: string,
  size: number,
  min: number,
  max: number,
  write: (w: Writer, v: number) => void,
  read: (b: Buffer, at: number) => number,
): FieldType<number> {
  return {
    name,
    size,
    zero: 0,
    write(w, v) {
      if (!Number.isInteger(v) || v < min || v > max) throw new EncodeError(`must be an integer in ${min}..${max} (${name}), got ${String(v)}`);
      write(w, v);
    },
    read,
  };
}

function bigField(name: string, signed: boolean): FieldType<bigint> {
  const min = signed ? -(2n ** 63n) : 0n;
  const max = signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
  return {
    name,
    size: 8,
    zero: 0n,
    write(w, v) {
      const b = typeof v === 'number' ? BigInt(v) : v;
      if (typeof b !== 'bigint' || b < min || b > max) throw new EncodeError(`must be a ${name} bigint, got ${String(v)}`);
      if (signed) w.s64(b);
      else w.u64(b);
    },
    read: signed ? readS64 : readU64,
  };
}

/** Field types for struct layouts. */
export const field = Object.freeze({
  u8: intField(
    'u8',
    1,
    0,
    0xff,
    (w, v) => w.u8(v),
    (b, at) => b[at]!,
  ),
  s8: intField(
    's8',
    1,
    -0x80,
    0x7f,
    (w, v) => w.u8(v & 0xff),
    (b, at) => b.readInt8(at),
  ),
  u16: intField(
    'u16',
    2,
    0,
    0xffff,
    (w, v) => w.u16(v),
    (b, at) => b.readUInt16LE(at),
  ),
  s16: intField(
    's16',
    2,
    -0x8000,
    0x7fff,
    (w, v) => w.s16(v),
    (b, at) => b.readInt16LE(at),
  ),
  u32: intField(
    'u32',
    4,
    0,
    0xffffffff,
    (w, v) => w.u32(v),
    (b, at) => b.readUInt32LE(at),
  ),
  s32: intField(
    's32',
    4,
    -0x80000000,
    0x7fffffff,
    (w, v) => w.s32(v),
    (b, at) => b.readInt32LE(at),
  ),
  be16: intField(
    'be16',
    2,
    0,
    0xffff,
    (w, v) => w.be16(v),
    (b, at) => b.readUInt16BE(at),
  ),
  be32: intField(
    'be32',
    4,
    0,
    0xffffffff,
    (w, v) => w.be32(v),
    (b, at) => b.readUInt32BE(at),
  ),
  u64: bigField('u64', false),
  s64: bigField('s64', true),
  /** An IPv4 address stored in network order (e.g. inside a selector), as dotted-quad text. */
  ipv4: {
    name: 'ipv4',
    size: 4,
    zero: '0.0.0.0',
    write: (w: Writer, v: string) => w.bytes(ipv4Bytes(v)),
    read: (b: Buffer, at: number) => formatIpv4(b, at),
  } as FieldType<string>,
  /** A fixed-size link-layer address, as colon-separated hex. */
  lladdr(size: number): FieldType<string> {
    return {
      name: `lladdr[${size}]`,
      size,
      zero: new Array(size).fill('00').join(':'),
      write(w, v) {
        const b = lladdrBytes(v);
        if (b.length !== size) throw new EncodeError(`must be a ${size}-byte address, got ${JSON.stringify(v)}`);
        w.bytes(b);
      },
      read: (b, at) => formatLladdr(b, at, at + size),
    };
  },
  /** Fixed-size raw bytes. */
  bytes(size: number): FieldType<Buffer> {
    return {
      name: `bytes[${size}]`,
      size,
      zero: Buffer.alloc(size),
      write(w, v) {
        if (!(v instanceof Uint8Array) || v.length !== size) throw new EncodeError(`must be ${size} bytes`);
        w.bytes(v);
      },
      read: (b, at) => Buffer.from(b.subarray(at, at + size)),
    };
  },
});

/** How the compiled reader reads the built-in integer fields inline: an expression of `b` and an offset. */
const INLINE_READS = new Map<FieldType<any>, (at: string) => string>([
  [field.u8, (at) => `b[${at}]`],
  [field.u16, (at) => `b[${at}] | (b[${at} + 1] << 8)`],
  [field.s16, (at) => `((b[${at}] | (b[${at} + 1] << 8)) << 16) >> 16`],
  [field.u32, (at) => `(b[${at}] | (b[${at} + 1] << 8) | (b[${at} + 2] << 16)) + b[${at} + 3] * 0x1000000`],
  [field.s32, (at) => `b[${at}] | (b[${at} + 1] << 8) | (b[${at} + 2] << 16) | (b[${at} + 3] << 24)`],
  [field.be16, (at) => `(b[${at}] << 8) | b[${at} + 1]`],
  [field.be32, (at) => `b[${at}] * 0x1000000 + ((b[${at} + 1] << 16) | (b[${at} + 2] << 8) | b[${at} + 3])`],
]);

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** A name that is safe to write as an object-literal key in generated source. */
const isPlainKey = (k: string) => IDENTIFIER.test(k) && k !== '__proto__';

type Reader = (buf: Buffer, start: number, have: number) => unknown;

/**
 * A struct's reader, compiled once per layout: one object literal with every field, so each
 * decoded value of a layout shares one hidden class and no per-field closure runs for integers.
 * `have` < size reads the fields that fit and zeroes the rest (minSize structs). Only names that
 * are plain identifiers reach the generated source; anything else takes the generic loop.
 */
function compileReader(named: ReadonlyArray<{ key: string; type: FieldType<any>; offset: number }>, size: number): Reader {
  const generic: Reader = (buf, start, have) => {
    const out: Record<string, unknown> = {};
    for (const f of named) out[f.key] = f.offset + f.type.size <= have ? f.type.read(buf, start + f.offset) : f.type.zero;
    return out;
  };
  if (!named.every((f) => isPlainKey(f.key))) return generic;
  const reads = named.map((f) => f.type.read);
  const zeros = named.map((f) => f.type.zero);
  const props = named.map((f, i) => {
    const at = `s + ${f.offset}`;
    const inline = INLINE_READS.get(f.type);
    const expr = inline ? inline(at) : `R[${i}](b, ${at})`;
    return `${f.key}: n >= ${f.offset + f.type.size} ? ${expr} : Z[${i}]`;
  });
  const full = named.map((f, i) => {
    const inline = INLINE_READS.get(f.type);
    return `${f.key}: ${inline ? inline(`s + ${f.offset}`) : `R[${i}](b, s + ${f.offset})`}`;
  });
  const body = `return n >= ${size} ? { ${full.join(', ')} } : { ${props.join(', ')} };`;
  // Compiled once per layout, from declared identifiers only (isPlainKey).
  const make = compile<(r: unknown[], z: unknown[]) => Reader>(['R', 'Z'], `return (b, s, n) => { ${body} };`);
  return make ? make(reads, zeros) : generic;
}

/** Explicit padding in a layout: written as zeros, skipped on read. */
export interface Pad {
  readonly pad: number;
}
/** `bytes` of padding at this point of a layout. */
export const pad = (bytes: number): Pad => ({ pad: bytes });

/** One entry of a layout: a named field or padding. */
export type FieldEntry = readonly [string, FieldType<any>] | Pad;

/** The value type of a layout's fields: `{ family: number; index: number; ... }`. */
export type StructValue<F extends readonly FieldEntry[]> = {
  -readonly [E in F[number] as E extends readonly [infer N extends string, FieldType<any>] ? N : never]: E extends readonly [string, FieldType<infer T>]
    ? T
    : never;
};

/** A struct layout, which is also a codec for attribute payloads. */
export interface StructLayout<T> extends Codec<T> {
  /** The C name, e.g. 'ifinfomsg'. */
  readonly name: string;
  /** sizeof(struct). */
  readonly size: number;
  /** Write a value; missing fields are written as zero. */
  encode(w: Writer, value: Partial<T>): void;
  /** Read a value at `start`; fails unless at least `size` bytes are there. */
  decode(buf: Buffer, start: number, end: number, opts?: DecodeOptions): T;
  /** A value with every field zero. */
  zero(): T;
}

/** Options of a struct layout. */
export interface StructOptions {
  /**
   * For structs the kernel has grown over time (rtnl_link_stats64): accept payloads this short
   * and read the missing trailing fields as zero.
   */
  minSize?: number;
}

/** Declare a C struct layout. */
export function struct<const F extends readonly FieldEntry[]>(name: string, fields: F, options: StructOptions = {}): StructLayout<StructValue<F>> {
  type T = StructValue<F>;
  const named: Array<{ key: string; type: FieldType<any>; offset: number }> = [];
  const pads: Array<{ offset: number; size: number }> = [];
  let size = 0;
  for (const f of fields) {
    if ('pad' in f) {
      pads.push({ offset: size, size: f.pad });
      size += f.pad;
    } else {
      named.push({ key: f[0], type: f[1], offset: size });
      size += f[1].size;
    }
  }
  const minSize = options.minSize ?? size;
  const read = compileReader(named, size);
  const layout: StructLayout<T> = {
    name,
    size,
    encode(w, value) {
      const v = (value ?? {}) as Record<string, unknown>;
      for (const f of fields) {
        if ('pad' in f) {
          w.zeros(f.pad);
          continue;
        }
        const x = v[f[0]];
        try {
          f[1].write(w, x === undefined ? f[1].zero : x);
        } catch (e) {
          if (e instanceof EncodeError) throw new EncodeError(`${name}.${f[0]} ${e.reason}`, e.path);
          throw e;
        }
      }
    },
    decode(buf, start, end) {
      const have = end - start;
      if (have < minSize) throw new DecodeError(`${name} needs ${minSize} bytes, got ${have}`, [], start);
      return read(buf, start, have) as T;
    },
    zero() {
      const out: Record<string, unknown> = {};
      for (const f of named) out[f.key] = f.type.zero;
      return out as T;
    },
  };
  return layout;
}

/** The head's fields without the count, then the array: one literal, not a delete and a spread. */
function compileWithArray(keys: string[], countField: string, arrayKey: string): (h: Record<string, unknown>, items: unknown[]) => object {
  const kept = keys.filter((k) => k !== countField && k !== arrayKey);
  const generic = (h: Record<string, unknown>, items: unknown[]) => {
    const out: Record<string, unknown> = {};
    for (const k of kept) out[k] = h[k];
    out[arrayKey] = items;
    return out;
  };
  if (!kept.every(isPlainKey) || !isPlainKey(arrayKey)) return generic;
  const body = `return { ${kept.map((k) => `${k}: h.${k}`).join(', ')}, ${arrayKey}: items };`;
  // Compiled once per layout, from declared identifiers only (isPlainKey).
  return compile<typeof generic>(['h', 'items'], body) ?? generic;
}

/**
 * A struct followed by a counted array of another struct, e.g. tc_u32_sel and its nkeys keys.
 * The count field is filled in from the array's length on encode.
 */
export function structWithArray<H, E, const K extends string, C extends keyof H & string>(
  head: StructLayout<H>,
  countField: C,
  arrayKey: K,
  element: StructLayout<E>,
): StructLayout<Omit<H, C> & { [P in C]?: number } & { [P in K]: E[] }> {
  type T = Omit<H, C> & { [P in C]?: number } & { [P in K]: E[] };
  const withArray = compileWithArray(Object.keys(head.zero() as object), countField, arrayKey);
  return {
    name: head.name,
    size: head.size,
    encode(w, value) {
      const items = ((value as Record<string, unknown>)[arrayKey] ?? []) as E[];
      head.encode(w, { ...(value as object), [countField]: items.length } as Partial<H>);
      for (const item of items) element.encode(w, item as Partial<E>);
    },
    decode(buf, start, end, opts) {
      const h = head.decode(buf, start, end, opts) as Record<string, unknown>;
      const count = h[countField] as number;
      const need = head.size + count * element.size;
      if (end - start < need) throw new DecodeError(`${head.name} with ${count} ${arrayKey} needs ${need} bytes, got ${end - start}`, [], start);
      const items: E[] = new Array<E>(count);
      for (let i = 0; i < count; i++) {
        const at = start + head.size + i * element.size;
        items[i] = element.decode(buf, at, at + element.size, opts);
      }
      return withArray(h, items) as T;
    },
    zero() {
      const h = head.zero() as Record<string, unknown>;
      delete h[countField];
      return { ...h, [arrayKey]: [] } as T;
    },
  };
}
