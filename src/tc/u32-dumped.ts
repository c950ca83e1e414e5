/**
 * Dumped u32 filters and their actions, as classes whose wire form (`raw`) and action counters
 * (`stats`) are decoded on first read. A listing of 10 000 filters then keeps one byte copy per
 * filter instead of the whole decoded tree (header, options, selector, action entries with their
 * stats and timestamps): about a third of the heap, and the young generation no longer copies
 * thousands of objects nobody reads (the bench's `dump` suite has the figures).
 */
import { copyBytes, decodeBody } from '../netlink/index.js';
import type { Action } from './action.js';
import { parseAction, setMirredFields } from './action.js';
import { TC_U32 } from './constants.js';
import type { U32Filter, U32Offset } from './filter.js';
import type { TcaActEntry } from './schemas/action.js';
import { tcMessage } from './schemas/tca.js';
import type { TcMessage } from './schemas/tca.js';
import type { TcU32Sel, U32Attrs, U32Pcnt } from './schemas/u32.js';
import { statsFromAttrs } from './stats.js';
import type { TcStats } from './stats.js';
import { decodeMatches } from './u32-decode.js';
import type { U32Match } from './u32-match.js';

const htons = (x: number): number => ((x & 0xff) << 8) | ((x >>> 8) & 0xff);

/** Where a node's linked table starts, from the selector's offset fields (undefined: no offset). */
export function offsetOf(sel: TcU32Sel): U32Offset | undefined {
  const f = sel.flags;
  if (!(f & (TC_U32.OFFSET | TC_U32.VAROFFSET | TC_U32.EAT))) return undefined;
  const o: U32Offset = {};
  if (f & TC_U32.OFFSET || (f & TC_U32.VAROFFSET && sel.off)) o.plus = sel.off;
  if (f & TC_U32.VAROFFSET) Object.assign(o, { at: sel.offoff, mask: sel.offmask, shift: sel.offshift });
  if (f & TC_U32.EAT) o.eat = true;
  return o;
}

/** A u32 filter node or hash table from a dump; `raw` is decoded again from its bytes when read. */
export class DumpedU32Filter implements U32Filter {
  // Declared, not defined: fields stay absent unless the message has them, as in a plain object.
  declare readonly kind: 'u32';
  declare ifindex: number;
  declare parent: number;
  declare priority: number;
  declare protocol: number;
  declare handle: number;
  declare chain?: number;
  declare matches: U32Match[];
  declare terminal: boolean;
  declare classid?: number;
  declare actions: Action[];
  declare divisor?: number;
  declare link?: number;
  declare hashkey?: { mask: number; at: number };
  declare offset?: U32Offset;
  declare ht?: number;
  declare flags?: number;
  declare counters?: U32Pcnt;
  /** The message's bytes (when built from a dump), or its decoded form (when built from one). */
  #wire: Buffer | undefined;
  #raw: TcMessage | undefined;

  /** `wire`: the message body `m` was decoded from, kept instead of `m`. */
  constructor(m: TcMessage, o: U32Attrs, wire?: Buffer) {
    const info = m.header.info;
    (this as { kind: 'u32' }).kind = 'u32';
    this.ifindex = m.header.ifindex;
    this.parent = m.header.parent;
    this.priority = info >>> 16;
    this.protocol = htons(info & 0xffff);
    this.handle = m.header.handle;
    if (wire) this.#wire = wire;
    else this.#raw = m;
    this.matches = [];
    this.terminal = false;
    this.actions = [];
    if (m.attrs.chain !== undefined) this.chain = m.attrs.chain;
    const sel = o.sel;
    if (sel) {
      this.matches = decodeMatches(sel.keys, this.protocol);
      this.terminal = (sel.flags & TC_U32.TERMINAL) !== 0;
      if (sel.hmask) this.hashkey = { mask: sel.hmask, at: sel.hoff };
      const offset = offsetOf(sel);
      if (offset) this.offset = offset;
    }
    if (o.classid !== undefined) this.classid = o.classid;
    if (o.divisor !== undefined) this.divisor = o.divisor;
    if (o.link !== undefined) this.link = o.link;
    if (o.hash !== undefined) this.ht = o.hash;
    if (o.flags !== undefined) this.flags = o.flags;
    if (o.pcnt) this.counters = o.pcnt;
    if (o.act) this.actions = o.act.map((a, i) => (a.kind === 'mirred' ? new DumpedMirred(a, this, i) : parseAction(a)));
  }

  /** The message as decoded by the schema (decoded once, on first read). */
  get raw(): TcMessage {
    return (this.#raw ??= decodeBody(tcMessage, this.#wire!));
  }
}

/** A mirred action of a dumped u32 filter; `raw` and `stats` are read from the filter's message when asked for. */
export class DumpedMirred implements Action {
  declare kind: string;
  declare index?: number;
  declare direction?: 'egress' | 'ingress';
  declare action?: 'redirect' | 'mirror';
  declare ifindex?: number;
  declare verdict?: number;
  declare refcnt?: number;
  declare bindcnt?: number;
  declare installedTicks?: bigint;
  declare lastUsedTicks?: bigint;
  readonly #filter: DumpedU32Filter;
  readonly #position: number;
  #stats: TcStats | undefined | null = null;

  constructor(a: TcaActEntry, filter: DumpedU32Filter, position: number) {
    this.kind = a.kind ?? '';
    this.#filter = filter;
    this.#position = position;
    if (a.index !== undefined) this.index = a.index;
    setMirredFields(this, a);
  }

  /** The action's TCA_ACT entry in the filter's message. */
  get raw(): TcaActEntry {
    return (this.#filter.raw.attrs.options as U32Attrs).act![this.#position]!;
  }

  /** The action's counters (TCA_ACT_STATS), when the kernel sent them. */
  get stats(): TcStats | undefined {
    if (this.#stats === null) this.#stats = statsFromAttrs(this.raw.stats);
    return this.#stats;
  }
}

/** Decode a filter message body from a dump: u32 filters keep a copy of `payload` and decode it again only for `raw`. */
export function dumpedU32Filter(payload: Buffer): DumpedU32Filter | TcMessage {
  const m = decodeBody(tcMessage, payload);
  const o = m.attrs.options;
  if (m.attrs.kind !== 'u32' || !o || Buffer.isBuffer(o)) return m;
  return new DumpedU32Filter(m, o as U32Attrs, copyBytes(payload, 0, payload.length));
}
