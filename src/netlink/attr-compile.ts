/**
 * An attribute set's decoder compiled once from its declaration: one function per set with a
 * `switch` on the attribute type, each case storing its own key (a property store with its own
 * inline cache) and reading integers, strings, flags and bytes inline. The interpreted decoder in
 * attributes.ts does the same work through a table of entries, a call per key store and a switch
 * per value; this one is what runs wherever code generation is allowed, and must answer exactly
 * as the interpreted one does, values and errors alike (test/netlink/decoder.test.ts checks both
 * on every golden vector and on mutated ones).
 */
import type { Codec, DecodeOptions } from './codec.js';
import { copyBytes, readS64, readString, readU64 } from './codec.js';
import { compile, primSize } from './attr-read.js';
import { NLA_HDRLEN, NLA_TYPE_MASK } from './constants.js';
import { DecodeError } from './errors.js';

/** Whether decode() uses the compiled decoders (turned off only by withInterpretedDecoders). */
export const compiledDecoders = { enabled: true };

/**
 * Run `fn` with every attribute set decoding through its interpreted decoder: the reference the
 * compiled ones are tested against, and a way to rule them out when chasing a decoding bug.
 */
export function withInterpretedDecoders<T>(fn: () => T): T {
  const was = compiledDecoders.enabled;
  compiledDecoders.enabled = false;
  try {
    return fn();
  } finally {
    compiledDecoders.enabled = was;
  }
}

/** What the compiler needs of one declared attribute. */
export interface CompiledEntry {
  key: string;
  type: number;
  kernelName: string;
  codec: Codec<any>;
  prim: number;
}

/** The decode function of a set: attribute area `start`..`end` of `buf` into a value object. */
export type AttrDecoder = (buf: Buffer, start: number, end: number, opts?: DecodeOptions) => Record<string, unknown>;

/** What the generated code calls: errors, the unknown list, and codecs that are not read inline. */
interface Helpers {
  /** The set's prefix and entries, by type. */
  prefix: string;
  entries: ReadonlyArray<CompiledEntry | undefined>;
  nameOf(type: number): string;
  /** Decode a non-inline entry, naming it in the path of a DecodeError. */
  one(e: CompiledEntry, buf: Buffer, s: number, t: number, opts: DecodeOptions, parent: Record<string, unknown>): unknown;
}

const PLAIN_KEY = /^[A-Za-z_$][\w$]*$/;

/** The inline read of an integer, string, flag or bytes codec (its primCode). */
const READS: Record<number, string> = {
  1: 'b[s]',
  2: 'b.readUInt16LE(s)',
  3: 'b.readInt16LE(s)',
  4: 'b.readUInt32LE(s)',
  5: 'b.readInt32LE(s)',
  6: 'b.readUInt16BE(s)',
  7: 'b.readUInt32BE(s)',
  8: 'RU64(b, s)',
  9: 'RS64(b, s)',
  10: 'true',
  11: 'RSTR(b, s, t)',
  12: 'COPY(b, s, t)',
};

/** The case of one attribute type: a duplicate goes to `unknown`, else the value is stored. */
function caseOf(e: CompiledEntry): string {
  const store = (expr: string) => `o.${e.key} = ${expr}; last = '${e.key}'; break;`;
  const dup = `if (o.${e.key} !== undefined) { u = UNK(u, rawType, b, s, t, last); break; }`;
  let body: string;
  if (e.prim) {
    const size = primSize(e.prim);
    const check = size >= 0 ? `if (t - s !== ${size}) throw SIZE(${e.type}, t - s, s);` : '';
    body = `${check} ${store(READS[e.prim]!)}`;
  } else if (e.codec.deferred) {
    // A sub-message waits for its selector (another key of this set) when that has not come yet.
    const sel = e.codec.selector;
    const wait = sel === undefined ? 'true' : `o.${sel} === undefined`;
    body = `if (${wait}) { (df ??= []).push(${e.type}, s, t); o.${e.key} = null; last = '${e.key}'; break; } ${store(`H.one(E[${e.type}], b, s, t, opts, o)`)}`;
  } else {
    body = store(`H.one(E[${e.type}], b, s, t, opts, o)`);
  }
  return `case ${e.type}: { ${dup} ${body} }`;
}

/** The compiled decoder of a set, or undefined where keys are not identifiers or code generation is disallowed. */
export function compileDecoder(h: Helpers): AttrDecoder | undefined {
  const entries = h.entries.filter((e): e is CompiledEntry => e !== undefined);
  const names = entries.flatMap((e) => [e.key, ...(e.codec.deferred && e.codec.selector !== undefined ? [e.codec.selector] : [])]);
  if (!names.every((k) => PLAIN_KEY.test(k) && k !== '__proto__')) return undefined;
  const body = `
    return function decode(b, start, end, opts) {
      if (opts === undefined) opts = NO_OPTS;
      const o = {};
      let u, df, last = null;
      if (end > b.length) throw new DecodeError('attribute area ends at ' + end + ', past the ' + b.length + '-byte buffer', [H.prefix], start);
      let at = start;
      while (at < end) {
        if (end - at < ${NLA_HDRLEN}) {
          if (b.subarray(at, end).every((x) => x === 0)) break;
          throw new DecodeError((end - at) + ' trailing bytes after the last attribute', [H.prefix], at);
        }
        const len = b[at] | (b[at + 1] << 8);
        const rawType = b[at + 2] | (b[at + 3] << 8);
        if (len < ${NLA_HDRLEN} || at + len > end)
          throw new DecodeError('attribute ' + H.nameOf(rawType) + ' has length ' + len + ', but ' + (end - at) + ' bytes remain', [H.prefix], at);
        const s = at + ${NLA_HDRLEN};
        const t = at + len;
        switch (rawType & ${NLA_TYPE_MASK}) {
          ${entries.map(caseOf).join('\n          ')}
          default:
            if (opts.strict) throw new DecodeError('unknown attribute type ' + (rawType & ${NLA_TYPE_MASK}), [H.prefix], at);
            u = UNK(u, rawType, b, s, t, last);
        }
        at += (len + 3) & ~3;
      }
      if (df !== undefined) for (let i = 0; i < df.length; i += 3) { const e = E[df[i]]; o[e.key] = H.one(e, b, df[i + 1], df[i + 2], opts, o); }
      if (u !== undefined) o.unknown = u;
      return o;
    };`;
  const make = compile<(...deps: unknown[]) => AttrDecoder>(['H', 'E', 'DecodeError', 'NO_OPTS', 'UNK', 'SIZE', 'RU64', 'RS64', 'RSTR', 'COPY'], body);
  if (!make) return undefined;
  const unknownAttr = (list: unknown[] | undefined, type: number, b: Buffer, s: number, t: number, after: string | null) => {
    (list ??= []).push({ type, data: copyBytes(b, s, t), after });
    return list;
  };
  const sizeError = (type: number, got: number, s: number) => {
    const e = h.entries[type]!;
    return new DecodeError(`${e.codec.name} needs ${primSize(e.prim)} bytes, got ${got}`, [e.kernelName], s);
  };
  return make(h, h.entries, DecodeError, Object.freeze({}), unknownAttr, sizeError, readU64, readS64, readString, copyBytes);
}
