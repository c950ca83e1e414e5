import type { Codec, DecodeOptions } from './codec.js';
import { formatIpv4, formatLladdr, ipv4Bytes, lladdrBytes } from './codec.js';
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
    read: signed ? (b, at) => b.readBigInt64LE(at) : (b, at) => b.readBigUInt64LE(at),
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

/** Explicit padding in a layout: written as zeros, skipped on read. */
export interface Pad {
  readonly pad: number;
}
export const pad = (bytes: number): Pad => ({ pad: bytes });

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
      const out: Record<string, unknown> = {};
      if (have >= size) {
        for (const f of named) out[f.key] = f.type.read(buf, start + f.offset);
      } else {
        for (const f of named) out[f.key] = f.offset + f.type.size <= have ? f.type.read(buf, start + f.offset) : f.type.zero;
      }
      return out as T;
    },
    zero() {
      const out: Record<string, unknown> = {};
      for (const f of named) out[f.key] = f.type.zero;
      return out as T;
    },
  };
  return layout;
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
      const items: E[] = [];
      for (let i = 0; i < count; i++) {
        const at = start + head.size + i * element.size;
        items.push(element.decode(buf, at, at + element.size, opts));
      }
      delete h[countField];
      return { ...h, [arrayKey]: items } as T;
    },
    zero() {
      const h = head.zero() as Record<string, unknown>;
      delete h[countField];
      return { ...h, [arrayKey]: [] } as T;
    },
  };
}
