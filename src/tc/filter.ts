/**
 * Filters: the requests of every kind and the decoding of dumps; u32 filters whole (typed
 * matches, classid/flowid, actions, protocol and priority, and the hash table life cycle: a
 * table with a divisor, a link from a parent with a hash key, filters placed in `ht:bucket`);
 * bpf filters' own part in bpf-filter.ts. filterRequest() builds what tc sends; parseFilter()
 * decodes a dump back into the same shapes.
 */
export type { BpfFilter, BpfFilterSpec } from './bpf-filter.js';
export { bpfFilterSpec, isBpf } from './bpf-filter.js';
import { encodeBody } from '../netlink/index.js';
import type { NetlinkMessage, Request, Writer } from '../netlink/index.js';
import { RTM } from '../rtnl/constants.js';
import { actionEntries, actionSpecOf } from './action.js';
import type { Action, ActionSpec } from './action.js';
import { bpfFields, bpfOptions } from './bpf-filter.js';
import type { BpfFilter, BpfFilterSpec } from './bpf-filter.js';
import { ETH_P, TC_U32 } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { parseBpfHandle, parseTcHandle, parseU32Handle, u32HandleParts } from './handle.js';
import type { TcHandleInput, U32HandleInput } from './handle.js';
import { VERB_FLAGS, checkVerb, tcRequest } from './request.js';
import type { TcMessageInput, TcVerb } from './request.js';
import type { BpfAttrs } from './schemas/bpf.js';
import { tcMessage } from './schemas/tca.js';
import type { TcMessage, TcaAttrs } from './schemas/tca.js';
import type { TcU32Sel, U32Attrs, U32Pcnt } from './schemas/u32.js';
import { DumpedU32Filter, dumpedU32Filter } from './u32-dumped.js';
import { packMatches } from './u32-match.js';
import { writeU32FilterBody } from './u32-wire.js';
import type { U32Match } from './u32-match.js';

/** A filter protocol: a name tc knows, or any ethertype. */
export type FilterProtocol = 'ip' | 'arp' | 'all' | 'ipv6' | '802.1Q' | number;

const PROTOCOLS: Record<string, number> = { ip: ETH_P.IP, arp: ETH_P.ARP, all: ETH_P.ALL, ipv6: ETH_P.IPV6, '802.1q': ETH_P['8021Q'] };

/** The ethertype of a protocol name or number. */
export function filterProtocol(p: FilterProtocol): number {
  if (typeof p === 'number') return checkInt('filter protocol', p, 0, 0xffff);
  const v = typeof p === 'string' ? PROTOCOLS[p.toLowerCase()] : undefined;
  if (v === undefined) throw new TcInputError(`unknown filter protocol ${JSON.stringify(p)} (ip, arp, all, ipv6, 802.1Q or an ethertype number)`);
  return v;
}

/** The name tc prints for an ethertype ('ip', 'arp', 'all', 'ipv6', '802.1Q'), else hex. */
export function protocolName(ethertype: number): string {
  for (const [k, v] of Object.entries(PROTOCOLS)) if (v === ethertype) return k === '802.1q' ? '802.1Q' : k;
  return `0x${ethertype.toString(16).padStart(4, '0')}`;
}

const htons = (p: number) => ((p & 0xff) << 8) | (p >>> 8);

/** tcm_info of a filter: (priority << 16) | htons(protocol). */
export function filterInfo(priority: number, protocol: number): number {
  return ((priority << 16) | htons(protocol)) >>> 0;
}

/** Which filter: the device, the parent, the priority and protocol, and (for one node) its handle. */
export interface FilterRef {
  ifindex: number;
  /** The qdisc or class the filter hangs off ('ffff:' for ingress, '1:' ...). */
  parent: TcHandleInput;
  /** tc `pref`/`prio`: 1..65535, lower is tried first. */
  priority: number;
  /** Default 'ip'. */
  protocol?: FilterProtocol;
  /**
   * The filter's handle: a u32 node ('800::801') for u32, a plain number (1, '0x1') for bpf;
   * omitted, the kernel chooses (add) or the whole priority goes (delete).
   */
  handle?: U32HandleInput;
  chain?: number;
  kind?: 'u32' | 'bpf';
}

/**
 * Where the next table's keys start, when a u32 node follows its `link` (tc `offset [plus N]
 * [at AT mask M shift S] [eat]`; tc_u32_sel.off, offoff, offmask, offshift and the flags
 * TC_U32_OFFSET, TC_U32_VAROFFSET, TC_U32_EAT). The kernel (cls_u32.c u32_classify) computes
 * `off2 = (plus + ((be16 at AT & mask) >> shift) + 3) & ~3` — rounded up to a whole word — and
 * with `eat` moves the base of every key of the linked table on by off2; without `eat` only
 * matches with `nexthdr: true` see it (at off + key offset + off2). Only a node with a link uses
 * it, so the SDK refuses it without `link` (tc does not).
 *
 * The hash key of the same node (`hashkey`) is read at the node's own base plus `hashkey.at`,
 * before `eat` moves the base: an IPv6 link with `hashkey: { mask: 0x0000ff00, at: 40 }` and
 * `offset: { plus: 20, eat: true }` picks its bucket by the IPv6 destination port's high byte and
 * lets that bucket's filters read the ports at 20, as in IPv4 tables without IP options. (A key of
 * those filters that reads past the packet's end ends the whole classification: no later filter
 * is tried.) Like the matches, the offset is part of the selector, which the kernel keeps when a
 * node is replaced: to change it, delete the node and add it again.
 */
export interface U32Offset {
  /** A constant number of bytes (0..65532, a multiple of 4: the kernel would round it up); sets TC_U32_OFFSET. */
  plus?: number;
  /** Variable part: the big-endian 16 bits at this even offset (from the node's base; default 0) … */
  at?: number;
  /** … under this mask (1..0xffff; required for a variable part) … */
  mask?: number;
  /** … shifted right by this many bits (0..15): e.g. `at: 0, mask: 0x0f00, shift: 6` is the IPv4 header length in bytes. Any of at/mask/shift sets TC_U32_VAROFFSET. */
  shift?: number;
  /** Move the linked table's base on by the offset (TC_U32_EAT). */
  eat?: boolean;
}

/** A u32 filter node, a hash table (with `divisor`), or a link into one. */
export interface U32FilterSpec extends FilterRef {
  kind: 'u32';
  /** Keys the packet must match, packed as tc packs them. */
  matches?: U32Match[];
  /** The class/flow chosen on a match (tc `classid`/`flowid`); sets TC_U32_TERMINAL. */
  classid?: TcHandleInput;
  /** End classification on a match even without classid or actions. */
  terminal?: boolean;
  actions?: ActionSpec[];
  /** Create a hash table with this many buckets (a power of two ≤ 256); `handle` is the table ('2:'). */
  divisor?: number;
  /** On a match, continue in this hash table ('2:'). */
  link?: U32HandleInput;
  /** With `link`: which bits choose the bucket: the word at `at` (a multiple of 4) under `mask`, read before `offset` eats. */
  hashkey?: { mask: number; at: number };
  /** With `link`: where the linked table's keys start (tc `offset … [eat]`). */
  offset?: U32Offset;
  /** Place this node in a table's bucket (tc `ht 2:7a:`). */
  ht?: U32HandleInput;
}

/** A u32 filter as the kernel reports it. */
export interface U32Filter {
  kind: 'u32';
  ifindex: number;
  parent: number;
  priority: number;
  protocol: number;
  handle: number;
  chain?: number;
  matches: U32Match[];
  terminal: boolean;
  classid?: number;
  actions: Action[];
  divisor?: number;
  link?: number;
  hashkey?: { mask: number; at: number };
  /** Set when the selector has any of TC_U32_OFFSET, TC_U32_VAROFFSET, TC_U32_EAT. */
  offset?: U32Offset;
  /** The table and bucket this node is in (TCA_U32_HASH). */
  ht?: number;
  /** TCA_U32_FLAGS (TCA_CLS_FLAGS_*). */
  flags?: number;
  /** Hit counters, when the kernel was built with CONFIG_CLS_U32_PERF. */
  counters?: U32Pcnt;
  raw: TcMessage;
}

/** A filter of another kind: only the common fields. */
export interface OtherFilter {
  kind: string;
  ifindex: number;
  parent: number;
  priority: number;
  protocol: number;
  handle: number;
  chain?: number;
  raw: TcMessage;
}

/** A dumped filter: typed when it is u32 or bpf, the common fields otherwise. */
export type Filter = U32Filter | BpfFilter | OtherFilter;

/** Whether a dumped filter is a u32 filter with typed matches and actions. */
export const isU32 = (f: Filter): f is U32Filter => f.kind === 'u32' && 'matches' in f;

/** The handle of a filter reference, parsed by its kind's syntax (bpf: a plain u32; otherwise u32-classifier). */
function filterHandle(spec: FilterRef): number {
  if (spec.handle === undefined) return 0;
  return spec.kind === 'bpf' ? parseBpfHandle(spec.handle as number | string) : parseU32Handle(spec.handle);
}

function header(spec: FilterRef, handle: number) {
  checkInt('ifindex', spec.ifindex, 1, 0x7fffffff);
  const priority = checkInt('filter priority', spec.priority, 1, 0xffff);
  const protocol = filterProtocol(spec.protocol ?? 'ip');
  return { ifindex: spec.ifindex, handle, parent: parseTcHandle(spec.parent), info: filterInfo(priority, protocol) };
}

function u32Options(spec: U32FilterSpec, handle: number): U32Attrs {
  const o: U32Attrs = {};
  if (spec.divisor !== undefined) {
    const d = checkInt('divisor', spec.divisor, 1, TC_U32.MAX_DIVISOR);
    if (d & (d - 1)) throw new TcInputError(`divisor ${d} is not a power of two`);
    const parts = u32HandleParts(handle);
    if (!parts.htid || parts.hash || parts.node)
      throw new TcInputError(`a hash table is created with a table handle like '2:' (htid only), got ${String(spec.handle)}`);
    if (spec.matches?.length || spec.actions?.length || spec.link !== undefined || spec.classid !== undefined) {
      throw new TcInputError('a hash table (divisor) takes no matches, actions, link or classid');
    }
    o.divisor = d;
    return o;
  }
  let terminal = spec.terminal === true;
  // tc's order: classid, link, actions (as given on its command line), then hash, then the selector.
  if (spec.classid !== undefined) {
    o.classid = parseTcHandle(spec.classid);
    terminal = true;
  }
  if (spec.link !== undefined) {
    const link = parseU32Handle(spec.link);
    if (link & 0xfff) throw new TcInputError(`link must name a hash table ('2:'), not a node: ${String(spec.link)}`);
    o.link = link;
  }
  if (spec.actions?.length) {
    o.act = actionEntries(spec.actions);
    terminal = true;
  }
  if (spec.ht !== undefined) {
    const ht = parseU32Handle(spec.ht);
    if (ht & 0xfff) throw new TcInputError(`ht must name a table and bucket ('2:7a:'), not a node: ${String(spec.ht)}`);
    if (handle >>> 20 && handle >>> 20 !== ht >>> 20) throw new TcInputError(`handle ${String(spec.handle)} is not in hash table ${String(spec.ht)}`);
    o.hash = ht;
  }
  if (spec.hashkey && spec.link === undefined) throw new TcInputError('hashkey only means something with link');
  if (spec.offset && spec.link === undefined) throw new TcInputError('offset only means something with link: the kernel applies it when it follows the link');
  const keys = packMatches(spec.matches ?? []);
  const sel: TcU32Sel = { flags: terminal ? TC_U32.TERMINAL : 0, offshift: 0, offmask: 0, off: 0, offoff: 0, hoff: 0, hmask: 0, keys };
  if (spec.hashkey) {
    sel.hmask = checkInt('hashkey mask', spec.hashkey.mask, 1, 0xffffffff);
    sel.hoff = checkInt('hashkey at', spec.hashkey.at, -0x8000, 0x7fff);
    if (sel.hoff % 4) throw new TcInputError(`hashkey at ${sel.hoff} is not a multiple of 4`);
  }
  if (spec.offset) packOffset(sel, spec.offset);
  o.sel = sel;
  return o;
}

/** tc's parse_offset: plus sets TC_U32_OFFSET; at, mask or shift TC_U32_VAROFFSET; eat TC_U32_EAT. */
function packOffset(sel: TcU32Sel, o: U32Offset): void {
  if (o.plus !== undefined) {
    sel.off = checkInt('offset plus', o.plus, 0, 0xfffc);
    if (sel.off % 4) throw new TcInputError(`offset plus ${sel.off} is not a multiple of 4 (the kernel would round it up)`);
    sel.flags |= TC_U32.OFFSET;
  }
  if (o.at !== undefined || o.mask !== undefined || o.shift !== undefined) {
    sel.offoff = checkInt('offset at', o.at ?? 0, -0x8000, 0x7ffe);
    if (sel.offoff % 2) throw new TcInputError(`offset at ${sel.offoff} is not even`);
    if (o.mask === undefined) throw new TcInputError('offset at/shift need a mask: the variable part is (16 bits at `at` & mask) >> shift');
    sel.offmask = checkInt('offset mask', o.mask, 1, 0xffff);
    sel.offshift = checkInt('offset shift', o.shift ?? 0, 0, 15);
    sel.flags |= TC_U32.VAROFFSET;
  }
  if (o.eat !== undefined && typeof o.eat !== 'boolean') throw new TcInputError(`offset eat must be a boolean, got ${String(o.eat)}`);
  if (o.eat) sel.flags |= TC_U32.EAT;
  if (!(sel.flags & (TC_U32.OFFSET | TC_U32.VAROFFSET | TC_U32.EAT))) throw new TcInputError('offset needs plus, a mask (with at and shift) or eat');
}

/** The message `tc filter <verb> … u32|bpf …` sends. */
export function filterMessage(verb: TcVerb, spec: U32FilterSpec | BpfFilterSpec | FilterRef): TcMessageInput {
  checkVerb(verb);
  const handle = filterHandle(spec);
  const h = header(spec, handle);
  const attrs: TcaAttrs = {};
  if (spec.chain !== undefined) attrs.chain = checkInt('chain', spec.chain, 0, 0xffffffff);
  if (verb === 'delete') {
    if (spec.kind) attrs.kind = spec.kind;
    else if (handle) throw new TcInputError('deleting one filter by handle needs its kind (u32 or bpf)');
    return { header: h, attrs };
  }
  if (spec.kind === 'bpf') {
    attrs.kind = 'bpf';
    attrs.options = bpfOptions(spec as BpfFilterSpec) as TcaAttrs['options'];
    return { header: h, attrs };
  }
  if (spec.kind !== 'u32') throw new TcInputError(`unsupported filter kind ${JSON.stringify(spec.kind)} (supported: u32, bpf)`);
  if (handle && !(handle & 0xfff) && (spec as U32FilterSpec).divisor === undefined) {
    throw new TcInputError(`filter handle ${String(spec.handle)} names a hash table; a filter node needs a node id (e.g. '800::801' or '::801')`);
  }
  attrs.kind = 'u32';
  attrs.options = u32Options(spec as U32FilterSpec, handle) as TcaAttrs['options'];
  return { header: h, attrs };
}

/** A Request for `tc filter add|replace|change|delete`, usable in session.batch(). */
export function filterRequest(verb: TcVerb, spec: U32FilterSpec | BpfFilterSpec | FilterRef): Request {
  const body = filterMessage(verb, spec);
  if (verb === 'delete') return tcRequest(RTM.DELTFILTER, VERB_FLAGS.filter[verb], body);
  return new NewFilterRequest(VERB_FLAGS.filter[verb], body);
}

/** RTM_NEWTFILTER of a prepared message (a class: no closure is made per filter of a bulk install). */
class NewFilterRequest implements Request {
  readonly type = RTM.NEWTFILTER;
  readonly schema = tcMessage;
  constructor(
    readonly flags: number,
    private readonly body: TcMessageInput,
  ) {}
  encode(w: Writer): void {
    // The direct writer covers the u32 messages filterMessage() builds; the declarative encoder does the rest (bpf).
    if (!writeU32FilterBody(w, this.body)) encodeBody(w, tcMessage, this.body);
  }
}

/** RTM_GETTFILTER of one filter node (priority, protocol, handle and kind are needed). */
export function filterGetRequest(ref: FilterRef & { handle: U32HandleInput }): Request {
  const handle = filterHandle(ref);
  return tcRequest(RTM.GETTFILTER, 0, { header: header(ref, handle), attrs: { kind: ref.kind ?? 'u32' } });
}

/** RTM_GETTFILTER dump of the filters on one parent of one device. */
export function filterDumpRequest(ifindex: number, parent: TcHandleInput, chain?: number): Request {
  checkInt('ifindex', ifindex, 1, 0x7fffffff);
  const attrs: TcaAttrs = chain === undefined ? {} : { chain: checkInt('chain', chain, 0, 0xffffffff) };
  return { type: RTM.GETTFILTER, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, { header: { ifindex, parent: parseTcHandle(parent) }, attrs }) };
}

/**
 * A u32 node as the kernel lists it, without typed decoding of its matches and actions: for scans
 * of thousands of filters (handles and keys only).
 */
export interface U32NodeKeys {
  handle: number;
  priority: number;
  /** The ethertype (host order). */
  protocol: number;
  /** The selector's keys as the kernel holds them: 32-bit words at `off` from the network header. */
  keys: Array<{ off: number; val: number; mask: number }>;
  /** A hash table: its bucket count (it has no keys). */
  divisor?: number;
}

/** The handle, priority, protocol and keys of a dumped u32 node; undefined for other kinds and the kernel's per-priority placeholders. */
export function parseU32Keys(m: TcMessage): U32NodeKeys | undefined {
  if (m.attrs.kind !== 'u32' || m.header.handle === 0) return undefined;
  const o = m.attrs.options as { divisor?: number; sel?: { keys: Array<{ off: number; val: number; mask: number }> } } | undefined;
  const info = m.header.info;
  const out: U32NodeKeys = {
    handle: m.header.handle,
    priority: info >>> 16,
    protocol: htons(info & 0xffff),
    keys: o?.sel ? o.sel.keys.map((k) => ({ off: k.off, val: k.val, mask: k.mask })) : [],
  };
  if (o?.divisor !== undefined) out.divisor = o.divisor;
  return out;
}

/**
 * Decode a dumped filter: u32 filters come back with typed matches and actions, bpf filters with
 * their program, flags and actions. Throws DecodeError for options that contradict themselves.
 */
export function parseFilter(m: TcMessage): Filter {
  const o = m.attrs.options as U32Attrs | Buffer | undefined;
  if (m.attrs.kind !== 'u32' || !o || Buffer.isBuffer(o)) return m.attrs.kind === 'bpf' ? bpfFilter(m) : otherFilter(m);
  return new DumpedU32Filter(m, o);
}

/** Decode an RTM_NEWTFILTER body (a dump's payload, which may be reused after): u32 filters keep a copy of it for `raw`. */
export function decodeFilterPayload(payload: Buffer): Filter {
  const d = dumpedU32Filter(payload);
  return d instanceof DumpedU32Filter ? d : parseFilter(d);
}

function bpfFilter(m: TcMessage): Filter {
  const o = m.attrs.options as BpfAttrs | Buffer | undefined;
  // The kernel's per-priority placeholder (handle 0) has no options.
  if (!o || Buffer.isBuffer(o)) return otherFilter(m);
  const info = m.header.info;
  const f: BpfFilter = {
    kind: 'bpf',
    ifindex: m.header.ifindex,
    parent: m.header.parent,
    priority: info >>> 16,
    protocol: htons(info & 0xffff),
    handle: m.header.handle,
    raw: m,
    ...bpfFields(o),
  };
  if (m.attrs.chain !== undefined) f.chain = m.attrs.chain;
  return f;
}

function otherFilter(m: TcMessage): OtherFilter {
  const info = m.header.info;
  const f: OtherFilter = {
    kind: m.attrs.kind ?? '',
    ifindex: m.header.ifindex,
    parent: m.header.parent,
    priority: info >>> 16,
    protocol: htons(info & 0xffff),
    handle: m.header.handle,
    raw: m,
  };
  if (m.attrs.chain !== undefined) f.chain = m.attrs.chain;
  return f;
}

/** Decode an RTM_NEWTFILTER message. */
export function decodeFilterMessage(msg: NetlinkMessage): Filter {
  return decodeFilterPayload(msg.payload);
}

/**
 * The spec that recreates a dumped u32 filter node (its matches, classid, actions, link with its
 * hash key and offset, and placement), e.g. to change its actions with `replace`.
 */
export function u32FilterSpec(f: U32Filter): U32FilterSpec {
  const spec: U32FilterSpec = {
    kind: 'u32',
    ifindex: f.ifindex,
    parent: f.parent,
    priority: f.priority,
    protocol: f.protocol,
    handle: f.handle,
    matches: f.matches,
  };
  if (f.chain !== undefined) spec.chain = f.chain;
  if (f.divisor !== undefined)
    return { kind: 'u32', ifindex: f.ifindex, parent: f.parent, priority: f.priority, protocol: f.protocol, handle: f.handle, divisor: f.divisor };
  if (f.classid !== undefined) spec.classid = f.classid;
  if (f.terminal && f.classid === undefined && !f.actions.length) spec.terminal = true;
  if (f.link !== undefined) spec.link = f.link;
  if (f.hashkey) spec.hashkey = f.hashkey;
  if (f.offset) spec.offset = f.offset;
  if (f.ht !== undefined) spec.ht = f.ht;
  spec.actions = f.actions.map(actionSpecOf);
  return spec;
}
