/**
 * Turns planned tc objects (plan.ts) into netlink requests through the tc layer's builders
 * (src/tc): the isolator has no encoding of its own.
 */
import type { Request } from '../netlink/index.js';
import { TC_ACT } from '../tc/constants.js';
import { classRequest } from '../tc/class.js';
import { filterRequest } from '../tc/filter.js';
import type { U32FilterSpec } from '../tc/filter.js';
import { qdiscRequest } from '../tc/qdisc.js';
import type { QdiscSpec } from '../tc/qdisc.js';
import type { Psched } from '../tc/rate.js';
import type { ActionSpec } from '../tc/action.js';
import type { HtbClassPlan, PlannedAction, QdiscPlan, TcPlan, U32FilterPlan } from './plan.js';

/** add refuses an existing object; set creates or replaces it; delete removes it. */
export type TcVerb = 'add' | 'set' | 'delete';

export interface TcRequestContext {
  psched: Psched;
  /** MTU of the shaped devices (the host's): the HTB quantum is at least one packet. */
  mtu: number;
}

const FIRST_KERNEL_HTID = 0x800;

function action(a: PlannedAction): ActionSpec {
  if (a.kind === 'redirect') return { kind: 'mirred', action: 'redirect', ifindex: a.to.index };
  return { kind: 'mirred', action: 'mirror', ifindex: a.to.index, ...(a.continue ? { verdict: TC_ACT.UNSPEC } : {}) };
}

function filterSpec(p: U32FilterPlan): U32FilterSpec {
  const spec: U32FilterSpec = { kind: 'u32', ifindex: p.dev.index, parent: p.parent, priority: p.prio, protocol: p.protocol };
  if (p.handle !== undefined) spec.handle = p.handle;
  if (p.divisor !== undefined) return { ...spec, divisor: p.divisor };
  // A node in one of our tables names its table and bucket; the kernel's root tables need nothing.
  if (p.handle !== undefined && p.handle >>> 20 < FIRST_KERNEL_HTID) spec.ht = (p.handle & 0xfffff000) >>> 0;
  spec.matches = p.keys.map((k) => ({ type: 'u32', value: (k.val & k.mask) >>> 0, mask: k.mask >>> 0, at: k.off }));
  if (p.terminal) spec.terminal = true;
  if (p.actions.length) spec.actions = p.actions.map(action);
  if (p.classid !== undefined) spec.classid = p.classid;
  if (p.link !== undefined) spec.link = p.link;
  if (p.hashMask) spec.hashkey = { mask: p.hashMask, at: p.hashOff ?? 0 };
  return spec;
}

function qdiscSpec(p: QdiscPlan): QdiscSpec {
  const base = { ifindex: p.dev.index, parent: p.parent, ...(p.handle ? { handle: p.handle } : {}) };
  switch (p.kind) {
    case 'ingress':
      return { kind: 'ingress', ifindex: p.dev.index };
    case 'htb':
      return { kind: 'htb', ...base, defaultClass: p.defcls ?? 0 };
    case 'fq_codel':
      return { kind: 'fq_codel', ...base };
  }
}

/** HTB quantum chosen so the kernel never clamps it (and so never warns): rate/10 within mtu..200000. */
export const htbQuantum = (rateBytesPerSec: number, mtu: number): number => Math.min(200_000, Math.max(mtu, Math.floor(rateBytesPerSec / 10)));

function classSpec(p: HtbClassPlan, ctx: TcRequestContext) {
  const c = p.config;
  return {
    kind: 'htb' as const,
    ifindex: p.dev.index,
    parent: p.parent,
    classid: p.classid,
    rateBytesPerSec: c.rateBytesPerSec,
    ...(c.ceilBytesPerSec !== undefined ? { ceilBytesPerSec: c.ceilBytesPerSec } : {}),
    ...(c.burstBytes !== undefined ? { burstBytes: c.burstBytes } : {}),
    quantumBytes: htbQuantum(c.rateBytesPerSec, ctx.mtu),
  };
}

/** The request creating (add/set) or removing (delete) one planned object. */
export function tcRequest(p: TcPlan, verb: TcVerb, ctx: TcRequestContext): Request {
  const v = verb === 'set' ? 'replace' : verb;
  switch (p.type) {
    case 'u32':
      if (verb === 'delete') {
        return filterRequest('delete', { kind: 'u32', ifindex: p.dev.index, parent: p.parent, priority: p.prio, protocol: p.protocol, ...(p.handle !== undefined ? { handle: p.handle } : {}) });
      }
      return filterRequest(v, filterSpec(p));
    case 'qdisc':
      if (verb === 'delete') return qdiscRequest('delete', { ifindex: p.dev.index, parent: p.parent, ...(p.handle ? { handle: p.handle } : {}), kind: p.kind });
      return qdiscRequest(v, qdiscSpec(p), { psched: ctx.psched });
    case 'htb-class':
      if (verb === 'delete') return classRequest('delete', { ifindex: p.dev.index, classid: p.classid, parent: p.parent, kind: 'htb' });
      return classRequest(v, classSpec(p, ctx), { psched: ctx.psched });
  }
}
