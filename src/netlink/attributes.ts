import type { Codec, CodecValue, DecodeOptions } from './codec.js';
import { copyBytes, string as stringCodec } from './codec.js';
import type { KeyAccessors } from './attr-read.js';
import { accessors, primCode, primSize, readPrim } from './attr-read.js';
import { compileDecoder, compiledDecoders } from './attr-compile.js';
import type { AttrDecoder } from './attr-compile.js';
import { NLA_F, NLA_HDRLEN, NLA_TYPE_MASK, align4 } from './constants.js';
import { DecodeError, EncodeError } from './errors.js';
import type { Writer } from './writer.js';

/**
 * Attribute (TLV) sets declared as data. One `as const` table per set drives the encoder, the
 * decoder, the TypeScript value type and the names used in error paths:
 *
 *   const IFLA_INFO = attrSet('IFLA_INFO', { kind: [1, string], data: [2, subMessage('kind', {...})] });
 *   type LinkInfo = AttrValues<typeof IFLA_INFO.defs>;
 *
 * Attributes are written in the value object's key order (so decode → encode is byte-exact), and
 * attributes the table does not know are kept in `unknown` and written back after the known ones.
 */

/** An attribute kept as it came: nla_type (flags included) and payload. */
export interface RawAttr {
  type: number;
  data: Buffer;
  /**
   * Where it stood: after the known attribute with this key, or first when null. Decoding records
   * it so that re-encoding is byte-exact; without it the attribute is written last.
   */
  after?: string | null;
}

function writeRaw(w: Writer, raw: RawAttr): void {
  const start = w.beginAttr(raw.type);
  w.bytes(raw.data);
  w.endAttr(start);
}

/** Per-attribute options of a declaration. */
export interface AttrOptions {
  /** The kernel's name, when it is not PREFIX_KEY_IN_SNAKE_CASE. */
  kernelName?: string;
}

/** One attribute of a set: its type number, its codec and options. */
export type AttrDef = readonly [type: number, codec: Codec<any>] | readonly [type: number, codec: Codec<any>, options: AttrOptions];
/** An attribute set declaration: camelCase key → AttrDef. */
export type AttrDefs = { readonly [name: string]: AttrDef };

/** The value object of an attribute set: every attribute optional, plus the unknown ones. */
export type AttrValues<D extends AttrDefs> = { -readonly [K in keyof D]?: CodecValue<D[K][1]> } & { unknown?: RawAttr[] };

interface Entry {
  key: string;
  type: number;
  kernelName: string;
  codec: Codec<any>;
  /** A primCode() when the decoder reads this codec inline, else 0. */
  prim: number;
  /** Whether the value object already has this attribute (a compiled property read). */
  has: KeyAccessors['has'];
  /** Store this attribute's value (a compiled property store). */
  set: KeyAccessors['set'];
}

const snake = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/** decodeEntry's answer for a sub-message whose selector has not come yet. */
const DEFER = Symbol('defer');

/** A declared attribute set. */
export class AttrSet<D extends AttrDefs = AttrDefs> {
  readonly byType: ReadonlyArray<Entry | undefined>;
  readonly byKey: ReadonlyMap<string, Entry>;
  /** This set's compiled decoder (attr-compile.ts), or undefined where it cannot be made. */
  readonly #compiled: AttrDecoder | undefined;

  constructor(
    /** The kernel prefix, e.g. 'IFLA' or 'TCA_U32'. */
    readonly prefix: string,
    readonly defs: D,
  ) {
    const byType: Array<Entry | undefined> = [];
    const byKey = new Map<string, Entry>();
    for (const [key, def] of Object.entries(defs)) {
      const [type, codec, opts] = def;
      if (key === 'unknown') throw new Error(`${prefix}: 'unknown' is reserved`);
      if (byType[type]) throw new Error(`${prefix}: attribute type ${type} declared twice`);
      const entry: Entry = { key, type, codec, kernelName: opts?.kernelName ?? `${prefix}_${snake(key)}`, prim: primCode(codec), ...accessors(key) };
      byType[type] = entry;
      byKey.set(key, entry);
    }
    this.byType = byType;
    this.byKey = byKey;
    this.#compiled = compileDecoder({
      prefix,
      entries: byType,
      nameOf: (type) => this.nameOf(type),
      one: (e, buf, s, t, opts, parent) => this.decodeOne(e as Entry, buf, s, t, opts, parent),
    });
  }

  /** The kernel name of an attribute type: 'IFLA_IFNAME', or 'IFLA_99' when undeclared. */
  nameOf(type: number): string {
    return this.byType[type & NLA_TYPE_MASK]?.kernelName ?? `${this.prefix}_${type & NLA_TYPE_MASK}`;
  }

  /** Write the attributes of `value` (payload of a message or of a nest). */
  encode(w: Writer, value: AttrValues<D>): void {
    const v = value as Record<string, unknown>;
    const unknown = value.unknown;
    if (unknown) for (const raw of unknown) if (raw.after === null) writeRaw(w, raw);
    for (const key in v) {
      const x = v[key];
      if (x === undefined || key === 'unknown') continue;
      const e = this.byKey.get(key);
      if (!e) throw new EncodeError(`unknown attribute '${key}' (known: ${[...this.byKey.keys()].join(', ')})`, [this.prefix]);
      const start = w.beginAttr(e.type | (e.codec.typeFlags ?? 0));
      try {
        e.codec.encode(w, x, v);
      } catch (err) {
        if (err instanceof EncodeError) throw new EncodeError(err.reason, [e.kernelName, ...err.path]);
        if (err instanceof RangeError) throw new EncodeError(err.message, [e.kernelName]);
        throw err;
      }
      w.endAttr(start);
      if (unknown) for (const raw of unknown) if (raw.after === key) writeRaw(w, raw);
    }
    if (unknown) for (const raw of unknown) if (raw.after === undefined || (raw.after !== null && v[raw.after] === undefined)) writeRaw(w, raw);
  }

  /**
   * Read the attributes between `start` and `end`. One pass; integers, strings, flags and bytes
   * are read inline; a sub-message whose selector came first is decoded in place, the others after
   * the pass. Unknown attributes, and repeats of known ones, are kept in `unknown`.
   */
  decode(buf: Buffer, start: number, end: number, opts?: DecodeOptions): AttrValues<D> {
    const compiled = compiledDecoders.enabled ? this.#compiled : undefined;
    return (compiled ? compiled(buf, start, end, opts) : this.decodeInterpreted(buf, start, end, opts)) as AttrValues<D>;
  }

  /**
   * decode() through the table of entries instead of the compiled switch: what runs where code
   * generation is disallowed, and the reference the compiled decoder is tested against.
   */
  decodeInterpreted(buf: Buffer, start: number, end: number, opts: DecodeOptions = {}): AttrValues<D> {
    const out: Record<string, unknown> = {};
    let unknown: RawAttr[] | undefined;
    let deferred: number[] | undefined; // triples: type, payload start, payload end
    let lastKey: string | null = null;
    const byType = this.byType;
    // The header reads below index bytes directly (no range check), so the area must be in the buffer.
    if (end > buf.length) throw new DecodeError(`attribute area ends at ${end}, past the ${buf.length}-byte buffer`, [this.prefix], start);
    let at = start;
    while (at < end) {
      if (end - at < NLA_HDRLEN) {
        // The kernel pads the last attribute; anything else left over is garbage.
        if (buf.subarray(at, end).every((b) => b === 0)) break;
        throw new DecodeError(`${end - at} trailing bytes after the last attribute`, [this.prefix], at);
      }
      const len = buf[at]! | (buf[at + 1]! << 8);
      const rawType = buf[at + 2]! | (buf[at + 3]! << 8);
      if (len < NLA_HDRLEN || at + len > end) {
        throw new DecodeError(`attribute ${this.nameOf(rawType)} has length ${len}, but ${end - at} bytes remain`, [this.prefix], at);
      }
      const e = byType[rawType & NLA_TYPE_MASK];
      const s = at + NLA_HDRLEN;
      const t = at + len;
      if (!e || e.has(out)) {
        if (opts.strict && !e) throw new DecodeError(`unknown attribute type ${rawType & NLA_TYPE_MASK}`, [this.prefix], at);
        (unknown ??= []).push({ type: rawType, data: copyBytes(buf, s, t), after: lastKey });
      } else {
        const v = this.decodeEntry(e, buf, s, t, opts, out);
        if (v === DEFER) (deferred ??= []).push(e.type, s, t);
        e.set(out, v === DEFER ? null : v); // null reserves the key's place until it is decoded below
        lastKey = e.key;
      }
      at += (len + 3) & ~3;
    }
    if (deferred?.length) {
      for (let i = 0; i < deferred.length; i += 3) {
        const e = byType[deferred[i]!]!;
        e.set(out, this.decodeOne(e, buf, deferred[i + 1]!, deferred[i + 2]!, opts, out));
      }
    }
    if (unknown) out.unknown = unknown;
    return out as AttrValues<D>;
  }

  /** One known attribute's value, or DEFER when it is to be decoded after the pass. */
  private decodeEntry(e: Entry, buf: Buffer, s: number, t: number, opts: DecodeOptions, out: Record<string, unknown>): unknown {
    if (e.prim) {
      const size = primSize(e.prim);
      if (size >= 0 && t - s !== size) throw new DecodeError(`${e.codec.name} needs ${size} bytes, got ${t - s}`, [e.kernelName], s);
      return readPrim(e.prim, buf, s, t);
    }
    const c = e.codec;
    if (c.deferred && (c.selector === undefined || out[c.selector] === undefined)) return DEFER;
    return this.decodeOne(e, buf, s, t, opts, out);
  }

  private decodeOne(e: Entry, buf: Buffer, s: number, t: number, opts: DecodeOptions, parent: Record<string, unknown>): unknown {
    try {
      return e.codec.decode(buf, s, t, opts, parent);
    } catch (err) {
      if (err instanceof DecodeError) throw new DecodeError(err.reason, [e.kernelName, ...err.path], err.offset);
      if (err instanceof RangeError) throw new DecodeError(err.message, [e.kernelName], s);
      throw err;
    }
  }
}

/** Declare an attribute set. Keys become camelCase names of the kernel's PREFIX_NAME constants. */
export function attrSet<const D extends AttrDefs>(prefix: string, defs: D): AttrSet<D> {
  return new AttrSet(prefix, defs);
}

/** Codecs that contain attributes expose how to name what is inside, for extended-ack paths. */
export interface Container {
  /** The attribute set inside, given the raw sibling attributes of the same level. */
  innerSet(siblings: ReadonlyMap<number, Buffer>): AttrSet | undefined;
  /** Elements are numbered attributes ([1], [2], ...) each holding `element`. */
  indexedElement?: Codec<any>;
}
/** A codec that holds attributes and can name what is inside them. */
export type ContainerCodec<T> = Codec<T> & Container;

const isContainer = (c: Codec<any>): c is ContainerCodec<any> => typeof (c as Partial<Container>).innerSet === 'function';

/** How a nest is flagged when written. */
export interface NestOptions {
  /** Set NLA_F_NESTED on the attribute, as the kernel and newer iproute2 do for some nests. */
  flag?: boolean;
}

/** The raw payload of a nest we do not model, written back with NLA_F_NESTED as the kernel sent it. */
export const nestedBytes: Codec<Buffer> = {
  name: 'nested (raw)',
  typeFlags: NLA_F.NESTED,
  encode(w, v) {
    if (!(v instanceof Uint8Array)) throw new EncodeError(`bytes expected, got ${typeof v}`);
    w.bytes(v);
  },
  decode: copyBytes,
};

/** A nested attribute holding the set `set`. */
export function nested<D extends AttrDefs>(set: AttrSet<D>, opts: NestOptions = {}): ContainerCodec<AttrValues<D>> {
  return {
    name: `nested ${set.prefix}`,
    typeFlags: opts.flag ? NLA_F.NESTED : 0,
    encode(w, v) {
      if (typeof v !== 'object' || v === null) throw new EncodeError(`${set.prefix} attributes expected, got ${String(v)}`);
      set.encode(w, v);
    },
    decode: (buf, start, end, o) => set.decode(buf, start, end, o),
    innerSet: () => set as unknown as AttrSet,
  };
}

/**
 * A nest of numbered attributes 1..n, each holding one `element` (TCA_ACT_PRIO_1.., the tc
 * actions list). Decoded as an array in the order the elements appear.
 */
export function indexed<T>(element: Codec<T>, opts: NestOptions & { elementFlag?: boolean } = {}): ContainerCodec<T[]> {
  return {
    name: `indexed ${element.name}`,
    typeFlags: opts.flag ? NLA_F.NESTED : 0,
    encode(w, items) {
      if (!Array.isArray(items)) throw new EncodeError(`an array expected, got ${typeof items}`);
      items.forEach((item, i) => {
        const start = w.beginAttr((i + 1) | (opts.elementFlag ? NLA_F.NESTED : 0));
        try {
          element.encode(w, item);
        } catch (err) {
          if (err instanceof EncodeError) throw new EncodeError(err.reason, [`[${i + 1}]`, ...err.path]);
          throw err;
        }
        w.endAttr(start);
      });
    },
    decode(buf, start, end, o) {
      const items: T[] = [];
      let at = start;
      while (at + NLA_HDRLEN <= end) {
        const len = buf.readUInt16LE(at);
        if (len < NLA_HDRLEN || at + len > end) throw new DecodeError(`element has length ${len}, but ${end - at} bytes remain`, [], at);
        const index = buf.readUInt16LE(at + 2) & NLA_TYPE_MASK;
        try {
          items.push(element.decode(buf, at + NLA_HDRLEN, at + len, o));
        } catch (err) {
          if (err instanceof DecodeError) throw new DecodeError(err.reason, [`[${index}]`, ...err.path], err.offset);
          throw err;
        }
        at += align4(len);
      }
      return items;
    },
    innerSet: () => undefined,
    indexedElement: element,
  };
}

/**
 * A payload whose layout is chosen by a sibling attribute, e.g. IFLA_INFO_DATA by IFLA_INFO_KIND
 * or TCA_OPTIONS by TCA_KIND. Unknown selectors keep the raw bytes (a Buffer).
 */
export function subMessage<const V extends Record<string, Codec<any>>>(
  selector: string,
  variants: V,
  opts: NestOptions & { selectorType?: number } = {},
): ContainerCodec<CodecValue<V[keyof V]> | Buffer> {
  return {
    name: `sub-message by ${selector}`,
    deferred: true,
    selector,
    get typeFlags() {
      return opts.flag ? NLA_F.NESTED : 0;
    },
    encode(w, v, parent) {
      const kind = (parent as Record<string, unknown> | undefined)?.[selector];
      if (v instanceof Uint8Array) {
        w.bytes(v);
        return;
      }
      const codec = typeof kind === 'string' ? variants[kind] : undefined;
      if (!codec) throw new EncodeError(`no layout for ${selector} ${JSON.stringify(kind)}; pass the payload as a Buffer`);
      codec.encode(w, v, parent);
    },
    decode(buf, start, end, o, parent) {
      const kind = parent?.[selector];
      const codec = typeof kind === 'string' ? variants[kind] : undefined;
      return codec ? codec.decode(buf, start, end, o, parent) : copyBytes(buf, start, end);
    },
    innerSet(siblings) {
      if (opts.selectorType === undefined) return undefined;
      const raw = siblings.get(opts.selectorType);
      if (!raw) return undefined;
      const kind = stringCodec.decode(raw, 0, raw.length, {});
      const codec = variants[kind];
      return codec && isContainer(codec) ? codec.innerSet(new Map()) : undefined;
    },
  };
}

/**
 * Name the attribute at byte `offset` of an encoded attribute area, from the outside in:
 * ['TCA_OPTIONS', 'TCA_U32_SEL']. Used to explain the kernel's NLMSGERR_ATTR_OFFS.
 */
export function attributePathAt(set: AttrSet, buf: Buffer, start: number, end: number, offset: number): string[] {
  const siblings = new Map<number, Buffer>();
  const attrs: Array<{ at: number; len: number; type: number }> = [];
  for (let at = start; at + NLA_HDRLEN <= end;) {
    const len = buf.readUInt16LE(at);
    if (len < NLA_HDRLEN || at + len > end) break;
    const type = buf.readUInt16LE(at + 2) & NLA_TYPE_MASK;
    siblings.set(type, buf.subarray(at + NLA_HDRLEN, at + len));
    attrs.push({ at, len, type });
    at += align4(len);
  }
  for (const a of attrs) {
    if (offset < a.at || offset >= a.at + Math.max(a.len, NLA_HDRLEN)) continue;
    const name = set.nameOf(a.type);
    if (offset < a.at + NLA_HDRLEN) return [name];
    const codec = set.byType[a.type]?.codec;
    if (!codec || !isContainer(codec)) return [name];
    if (codec.indexedElement) {
      return [name, ...indexedPathAt(codec.indexedElement, buf, a.at + NLA_HDRLEN, a.at + a.len, offset)];
    }
    const inner = codec.innerSet(siblings);
    return inner ? [name, ...attributePathAt(inner, buf, a.at + NLA_HDRLEN, a.at + a.len, offset)] : [name];
  }
  return [];
}

function indexedPathAt(element: Codec<any>, buf: Buffer, start: number, end: number, offset: number): string[] {
  for (let at = start; at + NLA_HDRLEN <= end;) {
    const len = buf.readUInt16LE(at);
    if (len < NLA_HDRLEN || at + len > end) break;
    if (offset >= at && offset < at + len) {
      const name = `[${buf.readUInt16LE(at + 2) & NLA_TYPE_MASK}]`;
      const inner = isContainer(element) ? element.innerSet(new Map()) : undefined;
      return offset >= at + NLA_HDRLEN && inner ? [name, ...attributePathAt(inner, buf, at + NLA_HDRLEN, at + len, offset)] : [name];
    }
    at += align4(len);
  }
  return [];
}
