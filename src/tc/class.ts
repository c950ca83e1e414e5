/**
 * HTB classes: rate, ceil, burst, cburst, quantum, prio and 64-bit rates, encoded with
 * iproute2's arithmetic (rate tables, buffers in ticks) from injectable psched parameters.
 */
import { decodeBody, encodeBody } from '../netlink/index.js';
import type { NetlinkMessage, Request } from '../netlink/index.js';
import { RTM } from '../rtnl/constants.js';
import { TcInputError, checkInt } from './errors.js';
import { parseTcHandle } from './handle.js';
import type { TcHandleInput } from './handle.js';
import { htbRateParams, systemPsched, xmitsizeBytes } from './rate.js';
import type { HtbRateInput, Psched } from './rate.js';
import { VERB_FLAGS, checkVerb, tcRequest } from './request.js';
import type { TcMessageInput, TcVerb } from './request.js';
import type { HtbXstats } from './schemas/htb.js';
import { tcMessage } from './schemas/tca.js';
import type { TcMessage, TcaAttrs } from './schemas/tca.js';
import { statsFromAttrs } from './stats.js';
import type { TcStats } from './stats.js';

/** An HTB class. Rates are bytes per second (tc takes bits: `rate 1mbit` is 125000 here). */
export interface HtbClassSpec extends HtbRateInput {
  kind: 'htb';
  ifindex: number;
  /** The parent qdisc ('1:') or class ('1:1'). */
  parent: TcHandleInput;
  /** This class: major of the qdisc, own minor ('1:10'). */
  classid: TcHandleInput;
  /** Bytes served per round; the kernel derives it from rate/r2q when omitted. */
  quantumBytes?: number;
  /** Priority 0..7 (lower is served first). */
  prio?: number;
}

/** Which class to delete or get. */
export interface ClassRef {
  ifindex: number;
  classid: TcHandleInput;
  parent?: TcHandleInput;
  kind?: string;
}

/** An HTB class as the kernel reports it. */
export interface HtbClass {
  kind: 'htb';
  ifindex: number;
  classid: number;
  parent: number;
  /** Leaf qdisc handle (tcm_info), 0 for inner classes. */
  leaf: number;
  rateBytesPerSec: number;
  ceilBytesPerSec: number;
  /** The buckets in ticks as the kernel holds them, and in bytes as tc prints them. */
  bufferTicks: number;
  cbufferTicks: number;
  burstBytes: number;
  cburstBytes: number;
  quantumBytes: number;
  level: number;
  prio: number;
  stats?: TcStats;
  xstats?: HtbXstats;
  raw: TcMessage;
}

/** Options of classRequest and classMessage. */
export interface ClassBuildOptions {
  /** Clock parameters; default this machine's /proc/net/psched. */
  psched?: Psched;
}

/** The message `tc class <verb> … htb …` sends. */
export function classMessage(verb: TcVerb, spec: HtbClassSpec | ClassRef, options: ClassBuildOptions = {}): TcMessageInput {
  checkVerb(verb);
  checkInt('ifindex', spec.ifindex, 1, 0x7fffffff);
  const classid = parseTcHandle(spec.classid);
  if (!(classid >>> 16) || !(classid & 0xffff)) throw new TcInputError(`a class id needs a major and a non-zero minor number, got ${String(spec.classid)}`);
  const parent = spec.parent === undefined ? 0 : parseTcHandle(spec.parent);
  const header = { ifindex: spec.ifindex, handle: classid, parent };
  if (verb === 'delete') return { header, attrs: spec.kind ? { kind: spec.kind } : {} };
  if (spec.kind !== 'htb') throw new TcInputError(`unsupported class kind ${JSON.stringify(spec.kind)} (supported: htb)`);
  const s = spec as HtbClassSpec;
  if (spec.parent === undefined) throw new TcInputError('an HTB class needs a parent (the qdisc, e.g. "1:", or a class)');
  if (parent >>> 16 !== classid >>> 16) throw new TcInputError(`class ${String(s.classid)} must have the major number of its parent ${String(s.parent)}`);
  const p = htbRateParams(options.psched ?? systemPsched(), s);
  const parms = {
    rate: p.rate,
    ceil: p.ceil,
    buffer: p.bufferTicks,
    cbuffer: p.cbufferTicks,
    quantum: s.quantumBytes === undefined ? 0 : checkInt('HTB quantumBytes', s.quantumBytes, 1, 0xffffffff),
    level: 0,
    prio: s.prio === undefined ? 0 : checkInt('HTB prio', s.prio, 0, 7),
  };
  // tc's order: RATE64, CEIL64, PARMS, RTAB, CTAB.
  const o: Record<string, unknown> = {};
  if (p.rate64 !== undefined) o.rate64 = p.rate64;
  if (p.ceil64 !== undefined) o.ceil64 = p.ceil64;
  o.parms = parms;
  o.rtab = p.rtab;
  o.ctab = p.ctab;
  return { header, attrs: { kind: 'htb', options: o as TcaAttrs['options'] } };
}

/** A Request for `tc class add|replace|change|delete`. */
export function classRequest(verb: TcVerb, spec: HtbClassSpec | ClassRef, options: ClassBuildOptions = {}): Request {
  return tcRequest(verb === 'delete' ? RTM.DELTCLASS : RTM.NEWTCLASS, VERB_FLAGS.class[verb], classMessage(verb, spec, options));
}

/** RTM_GETTCLASS dump of one device's classes. */
export function classDumpRequest(ifindex: number): Request {
  checkInt('ifindex', ifindex, 1, 0x7fffffff);
  return { type: RTM.GETTCLASS, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, { header: { ifindex } }) };
}

/** Decode a dumped HTB class (other kinds come back with only the common fields). */
export function parseClass(m: TcMessage, psched?: Psched): HtbClass {
  const a = m.attrs;
  const o = a.options as Record<string, any> | Buffer | undefined;
  const parms = o && !Buffer.isBuffer(o) ? o.parms : undefined;
  const rate = o && !Buffer.isBuffer(o) && o.rate64 !== undefined ? Number(o.rate64) : (parms?.rate.rate ?? 0);
  const ceil = o && !Buffer.isBuffer(o) && o.ceil64 !== undefined ? Number(o.ceil64) : (parms?.ceil.rate ?? 0);
  const ps = psched ?? systemPsched();
  const out: HtbClass = {
    kind: (a.kind ?? '') as 'htb',
    ifindex: m.header.ifindex,
    classid: m.header.handle,
    parent: m.header.parent,
    leaf: m.header.info,
    rateBytesPerSec: rate,
    ceilBytesPerSec: ceil,
    bufferTicks: parms?.buffer ?? 0,
    cbufferTicks: parms?.cbuffer ?? 0,
    burstBytes: rate ? xmitsizeBytes(ps, rate, parms?.buffer ?? 0) : 0,
    cburstBytes: ceil ? xmitsizeBytes(ps, ceil, parms?.cbuffer ?? 0) : 0,
    quantumBytes: parms?.quantum ?? 0,
    level: parms?.level ?? 0,
    prio: parms?.prio ?? 0,
    raw: m,
  };
  const stats = statsFromAttrs(a.stats2);
  if (stats) out.stats = stats;
  if (a.xstats && out.kind === 'htb' && !Buffer.isBuffer(a.xstats)) out.xstats = a.xstats as HtbXstats;
  return out;
}

/** Decode an RTM_NEWTCLASS message. */
export function decodeClassMessage(msg: NetlinkMessage): HtbClass {
  return parseClass(decodeBody(tcMessage, msg.payload));
}
