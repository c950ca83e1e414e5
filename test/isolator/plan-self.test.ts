/**
 * The routing of what a container sends to itself (plan-self.ts), planned: its rules and routes,
 * its own ports' rules, and taking it out of a namespace that outlives the container. Real traffic
 * through it: test/isolator/traffic.test.ts and ipv6.test.ts; its bytes: the SDK's rules
 * (test/golden/rtnl, test/rtnl).
 */
import { describe, expect, it } from 'vitest';
import {
  KERNEL_LOCAL_RULE_PREF,
  SELF_LEAVES_TABLE,
  SELF_RULE_PREF,
  isSelfRoutingRule,
  selfPortRules,
  selfRoutingBase,
  selfRoutingCleanup,
  selfRoutingConflict,
} from '../../src/isolator/plan.js';
import { blockFromBeginEnd } from '../../src/isolator/port-blocks.js';
import type { Rule } from '../../src/rtnl/index.js';
import { FR_ACT, RT_TABLE } from '../../src/rtnl/index.js';

const HOST = { ip: '198.18.0.1', mac: '02:00:00:00:00:01' };
const V6 = { ...HOST, ip6: ['2001:2::1', '2001:2::2'] };
const blocks = [blockFromBeginEnd(32768, 32783), blockFromBeginEnd(31000, 31007)];

/** The rules of a new namespace, as the kernel lists them. */
const kernelRules = (family: 'inet' | 'inet6'): Rule[] => [
  { family, priority: 0, table: RT_TABLE.LOCAL, action: FR_ACT.TO_TBL },
  { family, priority: 32766, table: RT_TABLE.MAIN, action: FR_ACT.TO_TBL },
  ...(family === 'inet' ? [{ family, priority: 32767, table: RT_TABLE.DEFAULT, action: FR_ACT.TO_TBL }] : []),
];

describe('selfRoutingBase', () => {
  it("IPv4: ICMP stays, the host IP and 127.0.0.1 leave through eth0 on-link at the host's MAC, the local rule moves below them", () => {
    const p = selfRoutingBase(HOST, 7);
    expect(p.rules).toEqual([
      { family: 'inet', priority: SELF_RULE_PREF.ICMP, iif: 'lo', ipProto: 1, table: RT_TABLE.LOCAL },
      { family: 'inet', priority: SELF_RULE_PREF.LEAVES, iif: 'lo', dst: HOST.ip, table: SELF_LEAVES_TABLE },
      { family: 'inet', priority: SELF_RULE_PREF.LEAVES, iif: 'lo', dst: '127.0.0.1', table: SELF_LEAVES_TABLE },
      { family: 'inet', priority: SELF_RULE_PREF.LOCAL, table: RT_TABLE.LOCAL },
    ]);
    expect(p.routes).toEqual([
      { dst: `${HOST.ip}/32`, oif: 7, table: SELF_LEAVES_TABLE },
      { dst: '127.0.0.1/32', oif: 7, prefsrc: '127.0.0.1', table: SELF_LEAVES_TABLE },
    ]);
    // Not via the gateway: a frame to the gateway's MAC would be dropped by the host's lo or another container (PACKET_OTHERHOST).
    expect(p.neighbours).toEqual({ addresses: [HOST.ip, '127.0.0.1'], mac: HOST.mac });
    expect(p.localRuleMoved).toEqual([{ family: 'inet', priority: KERNEL_LOCAL_RULE_PREF, table: RT_TABLE.LOCAL }]);
    // The order the kernel tries them in: stays, leaves, then the rest as before.
    expect(SELF_RULE_PREF.ICMP < SELF_RULE_PREF.OWN_PORTS && SELF_RULE_PREF.OWN_PORTS < SELF_RULE_PREF.LEAVES).toBe(true);
    expect(SELF_RULE_PREF.LEAVES < SELF_RULE_PREF.LOCAL && SELF_RULE_PREF.LOCAL < 32766).toBe(true);
  });

  it('IPv6: every host address leaves on-link too, ICMPv6 stays, both local rules move', () => {
    const p = selfRoutingBase(V6, 7);
    const v6 = p.rules.filter((r) => r.family === 'inet6');
    expect(v6.map((r) => `${r.priority} ${r.dst ?? '-'} ${r.ipProto ?? '-'} ${r.table}`)).toEqual([
      `150 2001:2::1 - ${SELF_LEAVES_TABLE}`,
      `150 2001:2::2 - ${SELF_LEAVES_TABLE}`,
      '100 - 58 255',
      '200 - - 255',
    ]);
    expect(p.routes.slice(2)).toEqual([
      { dst: '2001:2::1/128', oif: 7, table: SELF_LEAVES_TABLE },
      { dst: '2001:2::2/128', oif: 7, table: SELF_LEAVES_TABLE },
    ]);
    expect(p.neighbours.addresses).toEqual([HOST.ip, '127.0.0.1', '2001:2::1', '2001:2::2']);
    expect(p.localRuleMoved.map((r) => r.family)).toEqual(['inet', 'inet6']);
  });
});

describe('selfPortRules', () => {
  it('TCP and UDP to each of its blocks stay, per family', () => {
    const text = (h: { ip6?: string[] }) =>
      selfPortRules(h, blocks).map((r) => `${r.family} ${r.priority} ${r.iif} ${r.ipProto} ${r.dport!.begin}-${r.dport!.end} ${r.table}`);
    expect(text({})).toEqual([
      'inet 110 lo 6 32768-32783 255',
      'inet 110 lo 17 32768-32783 255',
      'inet 110 lo 6 31000-31007 255',
      'inet 110 lo 17 31000-31007 255',
    ]);
    expect(text({ ip6: ['2001:2::1'] })).toHaveLength(8);
    expect(selfPortRules({}, [])).toEqual([]);
  });
});

describe('taking it out of a namespace that outlives the container', () => {
  const ours = (family: 'inet' | 'inet6'): Rule[] =>
    [...selfRoutingBase(V6, 7).rules, ...selfPortRules(V6, blocks)]
      .filter((r) => r.family === family)
      .map((r) => ({ action: FR_ACT.TO_TBL, ...r, family, priority: r.priority!, table: r.table! }));
  const user: Rule = { family: 'inet', priority: 1000, table: 100, action: FR_ACT.TO_TBL, src: '198.18.9.0/24' };

  it('puts the local rule back at 0 first, then removes every rule of ours and none of the rest', () => {
    const found = [...kernelRules('inet').slice(1), ...ours('inet'), user, ...kernelRules('inet6').slice(1), ...ours('inet6')];
    const { restore, remove } = selfRoutingCleanup(found);
    expect(restore).toEqual([
      { family: 'inet', priority: 0, table: RT_TABLE.LOCAL },
      { family: 'inet6', priority: 0, table: RT_TABLE.LOCAL },
    ]);
    expect(remove).toHaveLength(ours('inet').length + ours('inet6').length);
    expect(remove.some((r) => r.priority === user.priority || r.table === RT_TABLE.MAIN)).toBe(false);
  });

  it('a half-built namespace (the local rule still at 0) gets only its rules removed; a clean one, nothing', () => {
    const half = [...kernelRules('inet'), ...ours('inet').slice(0, 2)];
    expect(selfRoutingCleanup(half)).toEqual({ restore: [], remove: ours('inet').slice(0, 2) });
    expect(selfRoutingCleanup([...kernelRules('inet'), user])).toEqual({ restore: [], remove: [] });
  });

  it('a rule is ours by its table, or by one of our preferences with the local table', () => {
    expect(isSelfRoutingRule({ family: 'inet', priority: 5, table: SELF_LEAVES_TABLE, action: FR_ACT.TO_TBL })).toBe(true);
    expect(isSelfRoutingRule({ family: 'inet', priority: SELF_RULE_PREF.LOCAL, table: RT_TABLE.LOCAL, action: FR_ACT.TO_TBL })).toBe(true);
    expect(isSelfRoutingRule({ family: 'inet', priority: SELF_RULE_PREF.LOCAL, table: RT_TABLE.MAIN, action: FR_ACT.TO_TBL })).toBe(false);
    expect(isSelfRoutingRule({ family: 'inet', priority: 0, table: RT_TABLE.LOCAL, action: FR_ACT.TO_TBL })).toBe(false);
  });
});

describe('a namespace we are given', () => {
  it('is taken with the rules of a new namespace, and others of the user’s', () => {
    expect(selfRoutingConflict([...kernelRules('inet'), { family: 'inet', priority: 1000, table: 100, action: FR_ACT.TO_TBL }], ['inet'])).toBeUndefined();
  });
  it('is refused with rules of ours in it, or its local rule moved', () => {
    const leftover: Rule = { family: 'inet', priority: SELF_RULE_PREF.LEAVES, table: SELF_LEAVES_TABLE, action: FR_ACT.TO_TBL, dst: '198.18.0.1/32' };
    expect(selfRoutingConflict([...kernelRules('inet'), leftover], ['inet'])).toMatch(/routing rules the isolator would own \(preferences 150/);
    expect(selfRoutingConflict(kernelRules('inet').slice(1), ['inet'])).toMatch(/inet rule "lookup local" is not at preference 0/);
    expect(selfRoutingConflict(kernelRules('inet'), ['inet', 'inet6'])).toMatch(/inet6 rule/);
  });
});
