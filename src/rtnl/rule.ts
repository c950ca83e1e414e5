import type { NetlinkSession, Request } from '../netlink/index.js';
import { NLM_F, decodeBody, encodeBody } from '../netlink/index.js';
import { AF, FR_ACT, RTM, RT_TABLE } from './constants.js';
import type { RuleMessage } from './schemas/rule.js';
import { ruleMessage } from './schemas/rule.js';
import { InvalidArgumentError, checkIfName, parsePrefix } from './validate.js';

/** An inclusive port range of a rule (`sport`/`dport`). */
export interface RulePortRange {
  begin: number;
  end: number;
}

/** What a rule matches; absent: anything. */
export interface RuleSelectors {
  /** Source and destination prefixes ('198.18.0.0/15'; an address alone is a host prefix). */
  src?: string;
  dst?: string;
  /** Input / output interface names; `iif lo` matches what the host itself sends. */
  iif?: string;
  oif?: string;
  /** IPPROTO_*, 1..255 (`ipproto`). */
  ipProto?: number;
  sport?: RulePortRange;
  dport?: RulePortRange;
}

/** A routing policy rule (`ip rule`), as the kernel lists it. */
export interface Rule extends RuleSelectors {
  family: 'inet' | 'inet6';
  /** Its preference: rules are tried from the lowest. */
  priority: number;
  /** The routing table looked up (action FR_ACT.TO_TBL), any id up to 2^32-1. */
  table: number;
  /** FR_ACT_*. */
  action: number;
}

/** An RTM_NEWRULE message (a dump's or a notification's) as a Rule. */
export function toRule(m: RuleMessage): Rule {
  const a = m.attrs;
  const h = m.header;
  const r: Rule = { family: h.family === AF.INET6 ? 'inet6' : 'inet', priority: a.priority ?? 0, table: a.table ?? h.table, action: h.action };
  if (a.src !== undefined) r.src = `${a.src}/${h.srcLen}`;
  if (a.dst !== undefined) r.dst = `${a.dst}/${h.dstLen}`;
  if (a.iifname !== undefined) r.iif = a.iifname;
  if (a.oifname !== undefined) r.oif = a.oifname;
  if (a.ipProto !== undefined) r.ipProto = a.ipProto;
  if (a.sportRange) r.sport = { begin: a.sportRange.start, end: a.sportRange.end };
  if (a.dportRange) r.dport = { begin: a.dportRange.start, end: a.dportRange.end };
  return r;
}

/** A rule to add or delete (`ip rule add pref P [from SRC] [to DST] [iif I] [oif O] [ipproto N] [sport A-B] [dport A-B] lookup T`). */
export interface RuleSpec extends RuleSelectors {
  /** Its preference (`pref`); required to add (the kernel would pick one), optional to delete. */
  priority?: number;
  /** Default: the family of src/dst, else 'inet'. */
  family?: 'inet' | 'inet6';
  /** The table to look up (`lookup`); default RT_TABLE.MAIN when adding. */
  table?: number;
  /** FR_ACT_*: default TO_TBL when adding; a delete matches any action unless given. */
  action?: number;
}

function checkPorts(r: RulePortRange | undefined, what: string): { start: number; end: number } | undefined {
  if (r === undefined) return undefined;
  const ok = (p: unknown) => Number.isInteger(p) && (p as number) >= 0 && (p as number) <= 0xffff;
  if (!ok(r.begin) || !ok(r.end) || r.begin > r.end) throw new InvalidArgumentError(`${what} must be ports begin..end within 0..65535, begin ≤ end`);
  return { start: r.begin, end: r.end };
}

function body(spec: RuleSpec, deleting: boolean) {
  const src = spec.src !== undefined ? parsePrefix(spec.src, 'rule source') : undefined;
  const dst = spec.dst !== undefined ? parsePrefix(spec.dst, 'rule destination') : undefined;
  const fromPrefixes = src?.family ?? dst?.family;
  const family = spec.family ?? (fromPrefixes === 6 ? 'inet6' : 'inet');
  for (const p of [src, dst]) if (p && (p.family === 6) !== (family === 'inet6')) throw new InvalidArgumentError('rule prefixes must be of the rule family');
  if (!deleting && spec.priority === undefined) throw new InvalidArgumentError('a rule to add needs a priority');
  if (spec.priority !== undefined && (!Number.isInteger(spec.priority) || spec.priority < 0 || spec.priority > 0xffffffff))
    throw new InvalidArgumentError(`invalid rule priority ${String(spec.priority)}`);
  const table = spec.table ?? (deleting ? RT_TABLE.UNSPEC : RT_TABLE.MAIN);
  if (!Number.isInteger(table) || table < 0 || table > 0xffffffff) throw new InvalidArgumentError(`invalid routing table ${String(spec.table)}`);
  if (spec.ipProto !== undefined && (!Number.isInteger(spec.ipProto) || spec.ipProto < 1 || spec.ipProto > 255))
    throw new InvalidArgumentError(`invalid rule ipproto ${String(spec.ipProto)}`);
  const header = {
    family: family === 'inet6' ? AF.INET6 : AF.INET,
    dstLen: dst?.prefixlen ?? 0,
    srcLen: src?.prefixlen ?? 0,
    table: table < 256 ? table : RT_TABLE.UNSPEC,
    action: spec.action ?? (deleting ? FR_ACT.UNSPEC : FR_ACT.TO_TBL),
  };
  // The order `ip rule add pref P from S to D iif I oif O ipproto N sport A-B dport A-B lookup T` writes them in.
  const attrs: RuleMessage['attrs'] = {};
  if (spec.priority !== undefined) attrs.priority = spec.priority;
  if (src) attrs.src = src.address;
  if (dst) attrs.dst = dst.address;
  if (spec.iif !== undefined) attrs.iifname = checkIfName(spec.iif, 'rule iif');
  if (spec.oif !== undefined) attrs.oifname = checkIfName(spec.oif, 'rule oif');
  if (spec.ipProto !== undefined) attrs.ipProto = spec.ipProto;
  const sport = checkPorts(spec.sport, 'rule sport');
  if (sport) attrs.sportRange = sport;
  const dport = checkPorts(spec.dport, 'rule dport');
  if (dport) attrs.dportRange = dport;
  if (table >= 256) attrs.table = table;
  return { header, attrs };
}

/**
 * The rule requests, built but not sent (for NetlinkSession.request/requestSync/batch). They
 * throw InvalidArgumentError for bad input, before anything is sent.
 */
export const ruleRequests = {
  /** RTM_NEWRULE with CREATE|EXCL: refused with EEXIST when the same rule is there. */
  add(spec: RuleSpec): Request {
    const b = body(spec, false);
    return { type: RTM.NEWRULE, flags: NLM_F.CREATE | NLM_F.EXCL, schema: ruleMessage, encode: (w) => encodeBody(w, ruleMessage, b) };
  },
  /** RTM_DELRULE: deletes the first rule that matches what is given (as `ip rule del`); ENOENT when none does. */
  delete(spec: RuleSpec): Request {
    const b = body(spec, true);
    return { type: RTM.DELRULE, flags: 0, schema: ruleMessage, encode: (w) => encodeBody(w, ruleMessage, b) };
  },
  /** RTM_GETRULE dump of one family's rules. */
  dump(family: 'inet' | 'inet6' = 'inet'): Request {
    const header = { family: family === 'inet6' ? AF.INET6 : AF.INET };
    return { type: RTM.GETRULE, flags: 0, schema: ruleMessage, encode: (w) => encodeBody(w, ruleMessage, { header }) };
  },
};

/**
 * Routing policy rules bound to one namespace's session (`Rtnl.rules`). Bad input throws
 * InvalidArgumentError before anything is sent; the kernel's refusals reject with NetlinkError.
 */
export class Rules {
  /** Verbs on `session`'s namespace. */
  constructor(private readonly session: NetlinkSession) {}
  /** One family's rules, in the order they are tried (`ip rule show`). */
  async list(family: 'inet' | 'inet6' = 'inet'): Promise<Rule[]> {
    return this.session.dump(ruleRequests.dump(family), { decode: (m) => toRule(decodeBody(ruleMessage, m.payload)) });
  }
  /** Add a rule (`ip rule add`); NetlinkError EEXIST when the same rule is there. */
  async add(spec: RuleSpec): Promise<void> {
    await this.session.request(ruleRequests.add(spec));
  }
  /** Delete the first rule matching `spec` (`ip rule del`); NetlinkError ENOENT when none does. */
  async delete(spec: RuleSpec): Promise<void> {
    await this.session.request(ruleRequests.delete(spec));
  }
}
