/**
 * Actions: mirred (egress/ingress × redirect/mirror), binding an existing action by index, and
 * the standalone action requests (RTM_NEWACTION / DELACTION / GETACTION).
 */
import { NLM_F, encodeBody } from '../netlink/index.js';
import type { Request } from '../netlink/index.js';
import { RTM } from '../rtnl/constants.js';
import { TCA_MIRRED_EACTION, TC_ACT } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { actionMessage } from './schemas/action.js';
import type { MirredOptions, TcMirred, TcaActEntry } from './schemas/action.js';
import { statsFromAttrs } from './stats.js';
import type { TcStats } from './stats.js';

/** A mirred action: send the packet to another device's egress or ingress. */
export interface MirredSpec {
  kind: 'mirred';
  /** Where the packet is sent on the target: its egress (default) or its ingress. */
  direction?: 'egress' | 'ingress';
  /** redirect consumes the packet (verdict STOLEN); mirror sends a copy and continues (PIPE). */
  action: 'redirect' | 'mirror';
  /** Target device. */
  ifindex: number;
  /** Action index; the kernel picks one when omitted. */
  index?: number;
  /** Verdict (TC_ACT_*); defaults as tc: STOLEN for redirect, PIPE for mirror. */
  verdict?: number;
}

/** Use an action that already exists (made with actionRequest or by another filter) by its index. */
export interface BoundActionSpec {
  kind: 'mirred';
  bindIndex: number;
}

/** An action of a filter: a new mirred action, or a bound one by index. */
export type ActionSpec = MirredSpec | BoundActionSpec;

/** An action as the kernel reports it. */
export interface Action {
  kind: string;
  index?: number;
  /** For mirred. */
  direction?: 'egress' | 'ingress';
  action?: 'redirect' | 'mirror';
  ifindex?: number;
  verdict?: number;
  refcnt?: number;
  bindcnt?: number;
  stats?: TcStats;
  /** Installation and last-use times in clock ticks (USER_HZ), when reported. */
  installedTicks?: bigint;
  lastUsedTicks?: bigint;
  /** The wire form, for anything not mapped above. */
  raw: TcaActEntry;
}

/** TCA_EGRESS_REDIR … TCA_INGRESS_MIRROR, or undefined for anything else. */
function mirredEaction(direction: unknown, action: unknown): number | undefined {
  if (direction === 'egress')
    return action === 'redirect' ? TCA_MIRRED_EACTION.EGRESS_REDIR : action === 'mirror' ? TCA_MIRRED_EACTION.EGRESS_MIRROR : undefined;
  if (direction === 'ingress')
    return action === 'redirect' ? TCA_MIRRED_EACTION.INGRESS_REDIR : action === 'mirror' ? TCA_MIRRED_EACTION.INGRESS_MIRROR : undefined;
  return undefined;
}

/** The TCA_ACT attributes of one action, as tc writes them. */
/** struct tc_mirred as a filter's action sends it (capab, refcnt and bindcnt are the kernel's). */
const mirredParms = (index: number, action: number, eaction: number, ifindex: number): TcMirred => ({
  index,
  capab: 0,
  action,
  refcnt: 0,
  bindcnt: 0,
  eaction,
  ifindex,
});

/** The TCA_ACT entry of an action spec, as tc writes it. Throws TcInputError for a bad spec. */
export function actionAttrs(spec: ActionSpec): TcaActEntry {
  if (spec?.kind !== 'mirred') throw new TcInputError(`unsupported action kind ${JSON.stringify((spec as { kind?: unknown })?.kind)} (supported: mirred)`);
  if ('bindIndex' in spec) {
    const options: MirredOptions = { parms: mirredParms(checkInt('bindIndex', spec.bindIndex, 1, 0xffffffff), 0, 0, 0) };
    return { kind: 'mirred', options };
  }
  const direction = spec.direction ?? 'egress';
  const eaction = mirredEaction(direction, spec.action);
  if (eaction === undefined)
    throw new TcInputError(`mirred needs direction egress|ingress and action redirect|mirror, got ${direction}/${String(spec.action)}`);
  checkInt('mirred target ifindex', spec.ifindex, 1, 0x7fffffff);
  const verdict = spec.verdict ?? (spec.action === 'redirect' ? TC_ACT.STOLEN : TC_ACT.PIPE);
  checkInt('mirred verdict', verdict, -1, 0x7fffffff);
  const index = spec.index === undefined ? 0 : checkInt('mirred index', spec.index, 1, 0xffffffff);
  const options: MirredOptions = { parms: mirredParms(index, verdict, eaction, spec.ifindex) };
  return { kind: 'mirred', options };
}

const EACTION_NAMES: Record<number, [MirredSpec['direction'], MirredSpec['action']]> = {
  [TCA_MIRRED_EACTION.EGRESS_REDIR]: ['egress', 'redirect'],
  [TCA_MIRRED_EACTION.EGRESS_MIRROR]: ['egress', 'mirror'],
  [TCA_MIRRED_EACTION.INGRESS_REDIR]: ['ingress', 'redirect'],
  [TCA_MIRRED_EACTION.INGRESS_MIRROR]: ['ingress', 'mirror'],
};

/** Decode one dumped action. */
export function parseAction(a: TcaActEntry): Action {
  const out: Action = { kind: a.kind ?? '', raw: a };
  if (a.index !== undefined) out.index = a.index;
  const stats = statsFromAttrs(a.stats);
  if (stats) out.stats = stats;
  if (a.kind === 'mirred') setMirredFields(out, a);
  return out;
}

/** The typed fields of a dumped mirred action (direction, action, index, target, verdict, counts, times) onto `out`. */
export function setMirredFields(out: Omit<Action, 'raw'>, a: TcaActEntry): void {
  const o = a.options as MirredOptions | Buffer | undefined;
  if (!o || Buffer.isBuffer(o) || !o.parms) return;
  const p = o.parms;
  const names = EACTION_NAMES[p.eaction];
  if (names) [out.direction, out.action] = names;
  out.index = p.index;
  out.ifindex = p.ifindex;
  out.verdict = p.action;
  out.refcnt = p.refcnt;
  out.bindcnt = p.bindcnt;
  if (o.tm) {
    out.installedTicks = o.tm.install;
    out.lastUsedTicks = o.tm.lastuse;
  }
}

/** A standalone action to create (it then lives until deleted, and filters bind it by index). */
export type StandaloneActionSpec = MirredSpec & { index: number };

/** Which standalone action: its kind and index. */
export interface ActionRef {
  kind: 'mirred';
  index: number;
}

/** RTM_NEWACTION (add/replace) or RTM_DELACTION (delete) of standalone actions. */
export function actionRequest(verb: 'add' | 'replace', specs: StandaloneActionSpec | StandaloneActionSpec[]): Request;
export function actionRequest(verb: 'delete', refs: ActionRef | ActionRef[]): Request;
export function actionRequest(verb: 'add' | 'replace' | 'delete', specs: StandaloneActionSpec | ActionRef | Array<StandaloneActionSpec | ActionRef>): Request {
  const list = (Array.isArray(specs) ? specs : [specs]) as StandaloneActionSpec[];
  if (!list.length) throw new TcInputError('actionRequest needs at least one action');
  const tab: TcaActEntry[] =
    verb === 'delete'
      ? list.map((s) => ({ kind: s.kind, index: checkInt('action index', s.index, 1, 0xffffffff) }))
      : list.map((s) => {
          if (s.index === undefined) throw new TcInputError('a standalone action needs an index, so filters can bind it');
          return actionAttrs(s);
        });
  const type = verb === 'delete' ? RTM.DELACTION : RTM.NEWACTION;
  const flags = verb === 'add' ? NLM_F.CREATE | NLM_F.EXCL : verb === 'replace' ? NLM_F.CREATE | NLM_F.REPLACE : 0;
  return { type, flags, schema: actionMessage, encode: (w) => encodeBody(w, actionMessage, { attrs: { tab } }) };
}

/** RTM_GETACTION of one action by kind and index (the answer is an RTM_NEWACTION). */
export function actionGetRequest(kind: 'mirred', index: number): Request {
  const tab: TcaActEntry[] = [{ kind, index: checkInt('action index', index, 1, 0xffffffff) }];
  return { type: RTM.GETACTION, schema: actionMessage, encode: (w) => encodeBody(w, actionMessage, { attrs: { tab } }) };
}

/** RTM_GETACTION dump of every action of a kind. */
export function actionDumpRequest(kind: 'mirred'): Request {
  return { type: RTM.GETACTION, schema: actionMessage, encode: (w) => encodeBody(w, actionMessage, { attrs: { tab: [{ kind }] } }) };
}

/** TCA_*_ACT of a filter's action specs, as tc writes them. */
export function actionEntries(actions: readonly ActionSpec[]): TcaActEntry[] {
  const act: TcaActEntry[] = [];
  for (let i = 0; i < actions.length; i++) {
    try {
      act.push(actionAttrs(actions[i]!));
    } catch (e) {
      if (e instanceof TcInputError) throw new TcInputError(`action ${i + 1}: ${e.reason}`);
      throw e;
    }
  }
  return act;
}

/** The spec of a dumped mirred action: the same target and verdict, or a binding by index. */
export function actionSpecOf(a: Action): ActionSpec {
  return a.kind === 'mirred' && a.direction && a.action && a.ifindex
    ? { kind: 'mirred', direction: a.direction, action: a.action, ifindex: a.ifindex, verdict: a.verdict }
    : { kind: 'mirred', bindIndex: a.index ?? 0 };
}
