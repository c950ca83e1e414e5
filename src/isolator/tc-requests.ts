/**
 * Turns planned tc objects (plan.ts) into netlink requests, over the tc layer's message schema.
 * Only what the isolator plans is covered: u32 filters with mirred actions and hash tables, the
 * ingress / HTB / fq_codel qdiscs and HTB classes.
 */
import type { Request } from '../netlink/index.js';
import { NLM_F, encodeBody } from '../netlink/index.js';
import { RTM } from '../rtnl/constants.js';
import { ETH_P, TCA_MIRRED_EACTION, TC_ACT, TC_U32 } from '../tc/constants.js';
import type { Psched } from '../tc/rate.js';
import { htbRateParams } from '../tc/rate.js';
import type { TcaAttrs } from '../tc/schemas/tca.js';
import { tcMessage } from '../tc/schemas/tca.js';
import type { HtbClassPlan, PlannedAction, QdiscPlan, TcPlan, U32FilterPlan } from './plan.js';

export type TcVerb = 'add' | 'set' | 'delete';

const PROTOCOL = { ip: ETH_P.IP, arp: ETH_P.ARP, all: ETH_P.ALL } as const;
const htons = (v: number) => ((v >> 8) | ((v & 0xff) << 8)) & 0xffff;

/** NLM flags per verb: add refuses an existing object, set creates or replaces it. */
const FLAGS: Record<TcVerb, number> = { add: NLM_F.CREATE | NLM_F.EXCL, set: NLM_F.CREATE | NLM_F.REPLACE, delete: 0 };

function mirred(a: PlannedAction) {
  const redirect = a.kind === 'redirect';
  const verdict = redirect ? TC_ACT.STOLEN : a.continue ? TC_ACT.UNSPEC : TC_ACT.PIPE;
  return {
    kind: 'mirred',
    options: {
      parms: { index: 0, capab: 0, action: verdict, refcnt: 0, bindcnt: 0, eaction: redirect ? TCA_MIRRED_EACTION.EGRESS_REDIR : TCA_MIRRED_EACTION.EGRESS_MIRROR, ifindex: a.to.index },
    },
  };
}

function filterBody(p: U32FilterPlan, verb: TcVerb) {
  const header = { ifindex: p.dev.index, handle: p.handle ?? 0, parent: p.parent, info: ((p.prio << 16) | htons(PROTOCOL[p.protocol])) >>> 0 };
  if (verb === 'delete') return { header, attrs: { kind: 'u32' } as TcaAttrs };
  const options: Record<string, unknown> = {};
  if (p.classid !== undefined) options.classid = p.classid;
  if (p.divisor !== undefined) {
    options.divisor = p.divisor;
  } else {
    // A filter in a table of ours names its table and bucket; the root table needs no hash.
    if (p.handle !== undefined && p.handle >>> 20 < 0x800) options.hash = (p.handle & 0xfffff000) >>> 0;
    if (p.link !== undefined) options.link = p.link;
    options.sel = {
      flags: p.terminal ? TC_U32.TERMINAL : 0,
      offshift: 0,
      offmask: 0,
      off: 0,
      offoff: 0,
      hoff: p.hashOff ?? 0,
      hmask: p.hashMask ?? 0,
      keys: p.keys.map((k) => ({ mask: k.mask >>> 0, val: (k.val & k.mask) >>> 0, off: k.off, offmask: 0 })),
    };
    if (p.actions.length) options.act = p.actions.map(mirred);
  }
  return { header, attrs: { kind: 'u32', options } as TcaAttrs };
}

function qdiscBody(p: QdiscPlan) {
  const header = { ifindex: p.dev.index, handle: p.handle, parent: p.parent, info: 0 };
  switch (p.kind) {
    case 'ingress':
      return { header, attrs: { kind: 'ingress', options: {} } as TcaAttrs };
    case 'htb':
      return { header, attrs: { kind: 'htb', options: { init: { version: 3, rate2quantum: 10, defcls: p.defcls ?? 0, debug: 0, directPkts: 0 } } } as TcaAttrs };
    case 'fq_codel':
      return { header, attrs: { kind: 'fq_codel', options: {} } as TcaAttrs };
  }
}

/** HTB quantum chosen so the kernel never clamps it (and so never warns): rate/10 within 1000..200000. */
export const htbQuantum = (rateBytesPerSec: number, mtu: number): number => Math.min(200_000, Math.max(mtu, Math.floor(rateBytesPerSec / 10)));

function classBody(p: HtbClassPlan, psched: Psched, mtu: number) {
  const c = p.config;
  const r = htbRateParams(psched, { rateBytesPerSec: c.rateBytesPerSec, ...(c.ceilBytesPerSec ? { ceilBytesPerSec: c.ceilBytesPerSec } : {}), ...(c.burstBytes ? { burstBytes: c.burstBytes } : {}) });
  const options: Record<string, unknown> = {};
  if (r.rate64 !== undefined) options.rate64 = r.rate64;
  if (r.ceil64 !== undefined) options.ceil64 = r.ceil64;
  options.parms = { rate: r.rate, ceil: r.ceil, buffer: r.bufferTicks, cbuffer: r.cbufferTicks, quantum: htbQuantum(c.rateBytesPerSec, mtu), level: 0, prio: 0 };
  options.rtab = r.rtab;
  options.ctab = r.ctab;
  return { header: { ifindex: p.dev.index, handle: p.classid, parent: p.parent, info: 0 }, attrs: { kind: 'htb', options } as TcaAttrs };
}

export interface TcRequestContext {
  psched: Psched;
  /** MTU of the shaped devices (the host's). */
  mtu: number;
}

/** The request creating (add/set) or removing (delete) one planned object. */
export function tcRequest(p: TcPlan, verb: TcVerb, ctx: TcRequestContext): Request {
  let type: number;
  let body: { header: object; attrs: TcaAttrs };
  if (p.type === 'u32') {
    type = verb === 'delete' ? RTM.DELTFILTER : RTM.NEWTFILTER;
    body = filterBody(p, verb);
  } else if (p.type === 'qdisc') {
    type = verb === 'delete' ? RTM.DELQDISC : RTM.NEWQDISC;
    body = verb === 'delete' ? { header: { ifindex: p.dev.index, handle: p.handle, parent: p.parent, info: 0 }, attrs: {} } : qdiscBody(p);
  } else {
    type = verb === 'delete' ? RTM.DELTCLASS : RTM.NEWTCLASS;
    body = verb === 'delete' ? { header: { ifindex: p.dev.index, handle: p.classid, parent: p.parent, info: 0 }, attrs: {} } : classBody(p, ctx.psched, ctx.mtu);
  }
  return { type, flags: FLAGS[verb], schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, body as never) };
}
