import { isIP } from 'node:net';
import { DecodeError, EncodeError } from './errors.js';
import type { Writer } from './writer.js';

/** Options that change how bytes are read. */
export interface DecodeOptions {
  /** Reject attributes the schema does not know (tests); by default they are kept in `unknown`. */
  strict?: boolean;
}

/**
 * How one attribute payload (or struct field) is written and read. Codecs write the payload only;
 * the attribute header is the attribute set's job. `parent` is the enclosing attribute object, for
 * codecs whose meaning depends on a sibling (kind-keyed sub-messages).
 */
export interface Codec<T> {
  /** A short description for errors and docs: 'u32', 'string', 'nested IFLA_INFO'. */
  readonly name: string;
  /** Bits ORed into nla_type when this codec's attribute is written (NLA_F_NESTED). */
  readonly typeFlags?: number;
  /** Decode after the other attributes of the same set (it reads a sibling). */
  readonly deferred?: boolean;
  /** With `deferred`: the sibling it reads. When that sibling came first, it is decoded in place. */
  readonly selector?: string;
  encode(w: Writer, value: T, parent?: object): void;
  decode(buf: Buffer, start: number, end: number, opts: DecodeOptions, parent?: Record<string, unknown>): T;
}

/** The value type a codec produces (what decode returns). */
export type CodecValue<C> = C extends { decode(...args: any[]): infer T } ? T : never;

function need(name: string, start: number, end: number, size: number): void {
  if (end - start !== size) throw new DecodeError(`${name} needs ${size} bytes, got ${end - start}`, [], start);
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new EncodeError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  }
  return v;
}

function checkBigInt(name: string, v: unknown, min: bigint, max: bigint): bigint {
  const b = typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
  if (typeof b !== 'bigint' || b < min || b > max) throw new EncodeError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`);
  return b;
}

function intCodec(
  name: string,
  size: number,
  min: number,
  max: number,
  write: (w: Writer, v: number) => void,
  read: (b: Buffer, o: number) => number,
): Codec<number> {
  return {
    name,
    encode(w, v) {
      write(w, checkInt(name, v, min, max));
    },
    decode(buf, start, end) {
      need(name, start, end, size);
      return read(buf, start);
    },
  };
}

/** Host-order unsigned and signed integers, range-checked on encode, size-checked on decode. */
export const u8 = intCodec(
  'u8',
  1,
  0,
  0xff,
  (w, v) => w.u8(v),
  (b, o) => b[o]!,
);
/** Host-order u16. */
export const u16 = intCodec(
  'u16',
  2,
  0,
  0xffff,
  (w, v) => w.u16(v),
  (b, o) => b.readUInt16LE(o),
);
/** Host-order s16. */
export const s16 = intCodec(
  's16',
  2,
  -0x8000,
  0x7fff,
  (w, v) => w.s16(v),
  (b, o) => b.readInt16LE(o),
);
/** Host-order u32. */
export const u32 = intCodec(
  'u32',
  4,
  0,
  0xffffffff,
  (w, v) => w.u32(v),
  (b, o) => b.readUInt32LE(o),
);
/** Host-order s32. */
export const s32 = intCodec(
  's32',
  4,
  -0x80000000,
  0x7fffffff,
  (w, v) => w.s32(v),
  (b, o) => b.readInt32LE(o),
);
/** Big-endian (network order) integers: users pass natural values, byte order stays here. */
export const be16 = intCodec(
  'be16',
  2,
  0,
  0xffff,
  (w, v) => w.be16(v),
  (b, o) => b.readUInt16BE(o),
);
/** Network-order u32. */
export const be32 = intCodec(
  'be32',
  4,
  0,
  0xffffffff,
  (w, v) => w.be32(v),
  (b, o) => b.readUInt32BE(o),
);

/** Counters and timestamps are mostly small (idle filters: 0): one shared bigint each, no allocation. */
const SMALL_BIGINTS: readonly bigint[] = Array.from({ length: 1024 }, (_, i) => BigInt(i));

/**
 * 64-bit reads without Buffer's generic BigInt arithmetic: most counters fit in 32 bits, and
 * BigInt(lo) alone is several times cheaper than combining two halves.
 */
export function readU64(b: Buffer, at: number): bigint {
  const lo = b.readUInt32LE(at);
  const hi = b.readUInt32LE(at + 4);
  if (hi === 0) return lo < SMALL_BIGINTS.length ? SMALL_BIGINTS[lo]! : BigInt(lo);
  return (BigInt(hi) << 32n) | BigInt(lo);
}
/** The signed 64-bit counterpart of readU64. */
export function readS64(b: Buffer, at: number): bigint {
  const lo = b.readUInt32LE(at);
  const hi = b.readInt32LE(at + 4);
  if (hi === 0) return lo < SMALL_BIGINTS.length ? SMALL_BIGINTS[lo]! : BigInt(lo);
  return (BigInt(hi) << 32n) + BigInt(lo);
}
/** Bytes `start`..`end` copied out of the receive buffer (one allocation, no intermediate view). */
export function copyBytes(buf: Buffer, start: number, end: number): Buffer {
  const out = Buffer.allocUnsafe(end - start);
  buf.copy(out, 0, start, end);
  return out;
}

/**
 * The text of a NUL-terminated string attribute: up to the first NUL or `end`. Short ASCII names
 * (kinds, interface names) are built directly; anything else goes through Buffer's UTF-8 decoder.
 */
export function readString(buf: Buffer, start: number, end: number): string {
  let stop = start;
  let ascii = true;
  while (stop < end && buf[stop] !== 0) {
    if (buf[stop]! >= 0x80) ascii = false;
    stop++;
  }
  if (!ascii || stop - start > 32) return buf.toString('utf8', start, stop);
  let s = '';
  for (let i = start; i < stop; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

/** 64-bit counters and rates are bigint. */
export const u64: Codec<bigint> = {
  name: 'u64',
  encode(w, v) {
    w.u64(checkBigInt('u64', v, 0n, 0xffffffffffffffffn));
  },
  decode(buf, start, end) {
    need('u64', start, end, 8);
    return readU64(buf, start);
  },
};
/** A signed 64-bit integer, as bigint. */
export const s64: Codec<bigint> = {
  name: 's64',
  encode(w, v) {
    w.s64(checkBigInt('s64', v, -(2n ** 63n), 2n ** 63n - 1n));
  },
  decode(buf, start, end) {
    need('s64', start, end, 8);
    return readS64(buf, start);
  },
};

/** A NUL-terminated string (the terminator is written, and stripped on decode). */
export const string: Codec<string> = {
  name: 'string',
  encode(w, v) {
    if (typeof v !== 'string') throw new EncodeError(`string expected, got ${typeof v}`);
    if (v.includes('\0')) throw new EncodeError('string must not contain NUL');
    w.utf8(v);
    w.u8(0);
  },
  decode: readString,
};

/**
 * A string written without a NUL terminator (iproute2 writes IFLA_INFO_KIND this way); read like
 * `string`.
 */
export const unterminatedString: Codec<string> = {
  name: 'string (no NUL)',
  encode(w, v) {
    if (typeof v !== 'string') throw new EncodeError(`string expected, got ${typeof v}`);
    if (v.includes('\0')) throw new EncodeError('string must not contain NUL');
    w.utf8(v);
  },
  decode: string.decode,
};

/** Raw bytes, copied out of the receive buffer. */
export const bytes: Codec<Buffer> = {
  name: 'bytes',
  encode(w, v) {
    if (!(v instanceof Uint8Array)) throw new EncodeError(`bytes expected, got ${typeof v}`);
    w.bytes(v);
  },
  decode: copyBytes,
};

/** A zero-length attribute whose presence means true. */
export const flag: Codec<true> = {
  name: 'flag',
  encode(_w, v) {
    if (v !== true) throw new EncodeError('flag attributes take the value true (omit the attribute for false)');
  },
  decode(_buf, start, end) {
    need('flag', start, end, 0);
    return true;
  },
};

/** Parse a dotted-quad IPv4 address to its 4 bytes. */
export function ipv4Bytes(s: string): Buffer {
  if (typeof s !== 'string' || isIP(s) !== 4) throw new EncodeError(`invalid IPv4 address ${JSON.stringify(s)}`);
  return Buffer.from(s.split('.').map(Number));
}

/** Parse an IPv6 address (any textual form, including an embedded IPv4 tail) to its 16 bytes. */
export function ipv6Bytes(s: string): Buffer {
  if (typeof s !== 'string' || isIP(s) !== 6 || s.includes('%')) throw new EncodeError(`invalid IPv6 address ${JSON.stringify(s)}`);
  let text = s;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((x) => parseInt(x, 16)));
  const halves = text.split('::');
  const words =
    halves.length === 2
      ? [...parse(halves[0]!), ...new Array<number>(8 - parse(halves[0]!).length - parse(halves[1]!).length).fill(0), ...parse(halves[1]!)]
      : parse(text);
  const out = Buffer.alloc(16);
  words.forEach((word, i) => out.writeUInt16BE(word, i * 2));
  return out;
}

/** Dotted-quad text of the 4 bytes at `at`. */
export function formatIpv4(buf: Buffer, at: number): string {
  return `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
}

/** RFC 5952 text of a 16-byte IPv6 address. */
export function formatIpv6(buf: Buffer, at: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(at + i * 2));
  // longest run of ≥2 zero words becomes '::'
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** A 4-byte IPv4 address as dotted-quad text. */
export const ipv4: Codec<string> = {
  name: 'ipv4',
  encode(w, v) {
    w.bytes(ipv4Bytes(v));
  },
  decode(buf, start, end) {
    need('ipv4', start, end, 4);
    return formatIpv4(buf, start);
  },
};

/** A 16-byte IPv6 address as RFC 5952 text. */
export const ipv6: Codec<string> = {
  name: 'ipv6',
  encode(w, v) {
    w.bytes(ipv6Bytes(v));
  },
  decode(buf, start, end) {
    need('ipv6', start, end, 16);
    return formatIpv6(buf, start);
  },
};

/** An IPv4 or IPv6 address, by length (route and address attributes of either family). */
export const ipAddr: Codec<string> = {
  name: 'ip address',
  encode(w, v) {
    w.bytes(typeof v === 'string' && v.includes(':') ? ipv6Bytes(v) : ipv4Bytes(v));
  },
  decode(buf, start, end) {
    if (end - start === 4) return formatIpv4(buf, start);
    if (end - start === 16) return formatIpv6(buf, start);
    throw new DecodeError(`an IP address needs 4 or 16 bytes, got ${end - start}`, [], start);
  },
};

const LLADDR_RE = /^[0-9a-f]{2}(:[0-9a-f]{2})*$/i;

/** Parse 'aa:bb:cc:dd:ee:ff' (any number of octets) to bytes. */
export function lladdrBytes(s: string): Buffer {
  if (typeof s !== 'string' || !LLADDR_RE.test(s)) throw new EncodeError(`invalid link-layer address ${JSON.stringify(s)}`);
  return Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
}

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Lower-case colon-separated hex of bytes `start`..`end` (a table lookup per byte: links carry several). */
export function formatLladdr(buf: Buffer, start: number, end: number): string {
  if (end <= start) return '';
  let s = HEX2[buf[start]!]!;
  for (let i = start + 1; i < end; i++) s += `:${HEX2[buf[i]!]!}`;
  return s;
}

/** A link-layer (MAC) address of any length, as lower-case colon-separated hex. */
export const lladdr: Codec<string> = {
  name: 'lladdr',
  encode(w, v) {
    w.bytes(lladdrBytes(v));
  },
  decode(buf, start, end) {
    return formatLladdr(buf, start, end);
  },
};

/** A codec of a fixed-size C struct, usable as an attribute payload. */
export function fixed<T>(name: string, size: number, inner: Codec<T>): Codec<T> {
  return {
    name,
    encode: (w, v, p) => inner.encode(w, v, p),
    decode(buf, start, end, opts, parent) {
      need(name, start, end, size);
      return inner.decode(buf, start, end, opts, parent);
    },
  };
}
