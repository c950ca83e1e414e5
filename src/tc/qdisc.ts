/**
 * Qdiscs: ingress, clsact, htb, fq_codel, pfifo/bfifo and tbf. A QdiscSpec describes one in
 * user units; qdiscRequest() turns it into the message tc would send; parseQdisc() turns a dumped
 * message back into the same shape, with statistics.
 */
import { encodeBody } from '../netlink/index.js';
import type { NetlinkMessage, Request } from '../netlink/index.js';
import { decodeBody } from '../netlink/index.js';
import { RTM } from '../rtnl/constants.js';
import { TC_H, TC_HTB_PROTOVER } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { parseTcHandle } from './handle.js';
import type { TcHandleInput } from './handle.js';
import { systemPsched, tbfRateParams, xmitsizeBytes } from './rate.js';
import type { Psched } from './rate.js';
import { VERB_FLAGS, checkVerb, tcRequest } from './request.js';
import type { TcMessageInput, TcVerb } from './request.js';
import type { FqCodelXstats } from './schemas/fq-codel.js';
import { tcMessage } from './schemas/tca.js';
import type { TcMessage, TcaAttrs } from './schemas/tca.js';
import { statsFromAttrs } from './stats.js';
import type { TcStats } from './stats.js';

interface QdiscBase {
  /** The device's index. */
  ifindex: number;
  /** Default: 'root' (TC_H_ROOT); ingress and clsact always sit at TC_H_INGRESS. */
  parent?: TcHandleInput;
  /** Default: the kernel picks (ingress and clsact: ffff:). */
  handle?: TcHandleInput;
}

/** `tc qdisc add dev X ingress`: the ingress hook (ffff:), for ingress filters. */
export interface IngressQdiscSpec extends QdiscBase {
  kind: 'ingress';
}
/** `tc qdisc add dev X clsact`: ingress and egress hooks for filters. */
export interface ClsactQdiscSpec extends QdiscBase {
  kind: 'clsact';
}
/** `tc qdisc add dev X root handle 1: htb default N`: a hierarchical token bucket, shaped by its classes. */
export interface HtbQdiscSpec extends QdiscBase {
  kind: 'htb';
  /** Minor number of the class unclassified traffic goes to (tc `default`, which tc reads as hex). 0: none. */
  defaultClass?: number;
  /** Rate-to-quantum divisor (tc `r2q`, default 10). */
  r2q?: number;
  /** Packets queued for the direct (unclassified, no default) path. */
  directQlen?: number;
  /** HTB protocol version (3). */
  version?: number;
}
/** `tc qdisc add … fq_codel`: fair queueing with CoDel; omitted options keep the kernel's defaults. */
export interface FqCodelQdiscSpec extends QdiscBase {
  kind: 'fq_codel';
  /** Queue limit, in packets (`limit`). */
  limitPackets?: number;
  /** Number of flow buckets (`flows`). */
  flows?: number;
  /** Bytes dequeued per flow per round (`quantum`). */
  quantumBytes?: number;
  /** Target queue delay, in microseconds (`target`). */
  targetUs?: number;
  /** CoDel interval, in microseconds (`interval`). */
  intervalUs?: number;
  /** Mark with ECN instead of dropping (`ecn`). */
  ecn?: boolean;
  /** ECN CE-marking threshold, in microseconds (`ce_threshold`). */
  ceThresholdUs?: number;
  /** Memory limit, in bytes (`memory_limit`). */
  memoryLimitBytes?: number;
  /** Packets dropped at once when over limit (`drop_batch`). */
  dropBatch?: number;
}
/** `tc qdisc add … pfifo`: a packet-counted FIFO. */
export interface PfifoQdiscSpec extends QdiscBase {
  kind: 'pfifo';
  /** Queue limit, in packets (default: the device's txqueuelen). */
  limitPackets?: number;
}
/** `tc qdisc add … bfifo`: a byte-counted FIFO. */
export interface BfifoQdiscSpec extends QdiscBase {
  kind: 'bfifo';
  /** Queue limit, in bytes (default: txqueuelen × MTU). */
  limitBytes?: number;
}
/** `tc qdisc add … tbf rate R burst B (limit L | latency T)`: a token bucket filter. */
export interface TbfQdiscSpec extends QdiscBase {
  kind: 'tbf';
  /** Rate, in bytes per second. */
  rateBytesPerSec: number;
  /** Bucket size, in bytes. */
  burstBytes: number;
  /** Queue limit, in bytes (give this or latencyUs). */
  limitBytes?: number;
  /** Maximum queueing delay, in microseconds (turned into a limit as tc does). */
  latencyUs?: number;
  /** Largest packet, in bytes (`mtu`/`minburst`). */
  mtuBytes?: number;
}

/** A qdisc to add, replace or change, by kind. */
export type QdiscSpec = IngressQdiscSpec | ClsactQdiscSpec | HtbQdiscSpec | FqCodelQdiscSpec | PfifoQdiscSpec | BfifoQdiscSpec | TbfQdiscSpec;

/** Which qdisc to delete or get: where it is; the kind is optional. */
export interface QdiscRef {
  /** The device's index. */
  ifindex: number;
  /** Default 'root' ('ingress' for kind ingress or clsact). */
  parent?: TcHandleInput;
  /** Match this handle too. */
  handle?: TcHandleInput;
  /** Match this kind too (and, for a delete, tell the kernel). */
  kind?: string;
}

/** A qdisc as the kernel reports it: the spec fields it maps back to, plus statistics. */
export type Qdisc = {
  ifindex: number;
  handle: number;
  parent: number;
  kind: string;
  /** Reference count (tcm_info). */
  refcnt: number;
  stats?: TcStats;
  /** fq_codel's TCA_XSTATS. */
  xstats?: FqCodelXstats;
  /** HTB: packets sent by the direct path (tc_htb_glob.direct_pkts). */
  directPackets?: number;
  /** TBF: the burst in ticks, as sent. */
  bufferTicks?: number;
  raw: TcMessage;
} & Record<string, unknown>;

/** Options of qdiscRequest. */
export interface QdiscBuildOptions {
  /** Clock parameters for TBF; default this machine's /proc/net/psched. */
  psched?: Psched;
}

const KINDS = new Set(['ingress', 'clsact', 'htb', 'fq_codel', 'pfifo', 'bfifo', 'tbf']);

function u32Opt(what: string, v: number | undefined, min = 0): number | undefined {
  return v === undefined ? undefined : checkInt(what, v, min, 0xffffffff);
}

/** TCA_OPTIONS of a qdisc spec, in the order tc writes them. */
function qdiscOptions(spec: QdiscSpec, psched: () => Psched): TcaAttrs['options'] {
  switch (spec.kind) {
    case 'ingress':
    case 'clsact':
      return undefined;
    case 'htb':
      return htbOptions(spec);
    case 'fq_codel':
      return fqCodelOptions(spec);
    case 'pfifo':
    case 'bfifo': {
      const limit = spec.kind === 'pfifo' ? spec.limitPackets : spec.limitBytes;
      // Without a limit tc sends no options and the kernel uses the device's txqueuelen.
      return limit === undefined ? undefined : { limit: checkInt(`${spec.kind} limit`, limit, 1, 0xffffffff) };
    }
    case 'tbf':
      return tbfOptions(spec, psched);
    default:
      throw new TcInputError(`unsupported qdisc kind ${JSON.stringify((spec as { kind?: unknown }).kind)} (supported: ${[...KINDS].join(', ')})`);
  }
}

function htbOptions(spec: HtbQdiscSpec): TcaAttrs['options'] {
  const init = {
    version: checkInt('htb version', spec.version ?? TC_HTB_PROTOVER, 0, 0xffffffff),
    rate2quantum: checkInt('htb r2q', spec.r2q ?? 10, 1, 0xffffffff),
    defcls: checkInt('htb defaultClass', spec.defaultClass ?? 0, 0, 0xffff),
    debug: 0,
    directPkts: 0,
  };
  const o: Record<string, unknown> = { init };
  if (spec.directQlen !== undefined) o.directQlen = checkInt('htb directQlen', spec.directQlen, 0, 0xffffffff);
  return o as TcaAttrs['options'];
}

function fqCodelOptions(spec: FqCodelQdiscSpec): TcaAttrs['options'] {
  const o: Record<string, unknown> = {};
  const set = (k: string, v: number | undefined, min = 0) => {
    const x = u32Opt(`fq_codel ${k}`, v, min);
    if (x !== undefined) o[k] = x;
  };
  set('limit', spec.limitPackets, 1);
  set('flows', spec.flows, 1);
  if (spec.flows !== undefined && spec.flows > 65536) throw new TcInputError(`fq_codel flows must be in 1..65536, got ${spec.flows}`);
  set('quantum', spec.quantumBytes, 1);
  set('interval', spec.intervalUs, 1);
  set('target', spec.targetUs, 1);
  if (spec.ecn !== undefined) o.ecn = spec.ecn ? 1 : 0;
  set('ceThreshold', spec.ceThresholdUs);
  set('memoryLimit', spec.memoryLimitBytes, 1);
  set('dropBatchSize', spec.dropBatch, 1);
  return o as TcaAttrs['options'];
}

function tbfOptions(spec: TbfQdiscSpec, psched: () => Psched): TcaAttrs['options'] {
  const p = tbfRateParams(psched(), spec);
  const o: Record<string, unknown> = {
    parms: {
      rate: p.rate,
      peakrate: { cellLog: 0, linklayer: 0, overhead: 0, cellAlign: 0, mpu: 0, rate: 0 },
      limit: p.limitBytes,
      buffer: p.bufferTicks,
      mtu: 0,
    },
    burst: p.burstBytes,
  };
  if (p.rate64 !== undefined) o.rate64 = p.rate64;
  o.rtab = p.rtab;
  return o as TcaAttrs['options'];
}

function placement(spec: { kind?: string; parent?: TcHandleInput; handle?: TcHandleInput }): { parent: number; handle: number } {
  const hook = spec.kind === 'ingress' || spec.kind === 'clsact';
  const parent = parseTcHandle(spec.parent ?? (hook ? TC_H.INGRESS : TC_H.ROOT));
  const handle = parseTcHandle(spec.handle ?? (hook ? 0xffff0000 : 0));
  if (hook && parent !== TC_H.INGRESS) throw new TcInputError(`${spec.kind} qdiscs sit at parent ffff:fff1 (ingress), not ${String(spec.parent)}`);
  if (handle & 0xffff) throw new TcInputError(`a qdisc handle has no minor number: ${String(spec.handle)} (use e.g. '1:')`);
  return { parent, handle };
}

/** The message tc sends for `tc qdisc <verb> …`: validated now, encoded when sent. */
export function qdiscMessage(verb: TcVerb, spec: QdiscSpec | QdiscRef, options: QdiscBuildOptions = {}): TcMessageInput {
  checkVerb(verb);
  checkInt('ifindex', spec.ifindex, 1, 0x7fffffff);
  const { parent, handle } = placement(spec);
  const header = { ifindex: spec.ifindex, handle, parent };
  if (verb === 'delete') return { header, attrs: spec.kind ? { kind: spec.kind } : {} };
  if (!spec.kind || !KINDS.has(spec.kind)) throw new TcInputError(`unsupported qdisc kind ${JSON.stringify(spec.kind)} (supported: ${[...KINDS].join(', ')})`);
  const attrs: TcaAttrs = { kind: spec.kind };
  const opts = qdiscOptions(spec as QdiscSpec, () => options.psched ?? systemPsched());
  if (opts !== undefined) attrs.options = opts;
  return { header, attrs };
}

/** A Request for `tc qdisc add|replace|change|delete`, usable in session.batch(). */
export function qdiscRequest(verb: TcVerb, spec: QdiscSpec | QdiscRef, options: QdiscBuildOptions = {}): Request {
  const body = qdiscMessage(verb, spec, options);
  return tcRequest(verb === 'delete' ? RTM.DELQDISC : RTM.NEWQDISC, VERB_FLAGS.qdisc[verb], body);
}

/** RTM_GETQDISC dump (every device; filter with ifindex afterwards). */
export function qdiscDumpRequest(): Request {
  return { type: RTM.GETQDISC, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, {}) };
}

/** Decode a dumped qdisc into its spec-shaped form with statistics. */
export function parseQdisc(m: TcMessage, psched?: Psched): Qdisc {
  const a = m.attrs;
  const out: Qdisc = { ifindex: m.header.ifindex, handle: m.header.handle, parent: m.header.parent, kind: a.kind ?? '', refcnt: m.header.info, raw: m };
  const stats = statsFromAttrs(a.stats2);
  if (stats) out.stats = stats;
  const o = a.options as Record<string, any> | Buffer | undefined;
  if (o && !Buffer.isBuffer(o)) {
    switch (out.kind) {
      case 'htb':
        if (o.init) {
          out.defaultClass = o.init.defcls;
          out.r2q = o.init.rate2quantum;
          out.version = o.init.version;
          out.directPackets = o.init.directPkts;
        }
        if (o.directQlen !== undefined) out.directQlen = o.directQlen;
        break;
      case 'fq_codel':
        for (const [k, name] of [
          ['limit', 'limitPackets'],
          ['flows', 'flows'],
          ['quantum', 'quantumBytes'],
          ['target', 'targetUs'],
          ['interval', 'intervalUs'],
          ['ceThreshold', 'ceThresholdUs'],
          ['memoryLimit', 'memoryLimitBytes'],
          ['dropBatchSize', 'dropBatch'],
        ] as const) {
          if (o[k] !== undefined) out[name] = o[k];
        }
        if (o.ecn !== undefined) out.ecn = o.ecn !== 0;
        break;
      case 'pfifo':
        out.limitPackets = o.limit;
        break;
      case 'bfifo':
        out.limitBytes = o.limit;
        break;
      case 'tbf':
        if (o.parms) {
          const rate = o.rate64 !== undefined ? Number(o.rate64) : o.parms.rate.rate;
          out.rateBytesPerSec = rate;
          out.limitBytes = o.parms.limit;
          out.bufferTicks = o.parms.buffer;
          out.burstBytes = xmitsizeBytes(psched ?? systemPsched(), rate, o.parms.buffer);
        }
        break;
    }
  }
  if (a.xstats && out.kind === 'fq_codel' && !Buffer.isBuffer(a.xstats)) out.xstats = a.xstats as FqCodelXstats;
  return out;
}

/** Decode an RTM_NEWQDISC message from a dump or an ECHO. */
export function decodeQdiscMessage(msg: NetlinkMessage): Qdisc {
  return parseQdisc(decodeBody(tcMessage, msg.payload));
}
