/**
 * bpf filters with classic programs against the real kernel, in a lab (host and world joined by a
 * veth): added by the SDK and dumped back by the SDK and by `tc -j`, added by tc and decoded by the
 * SDK, replaced, fetched and deleted by handle; and the data path with real UDP datagrams: a
 * direct-action program drops exactly the datagrams to its port (the ingress qdisc's drop counter
 * moves by that many), a matching program runs its mirred action on exactly its datagrams.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, NetlinkSession, Netns } from '../../src/netlink/index.js';
import { RTM_NAMES } from '../../src/rtnl/constants.js';
import {
  TCA_CLS_FLAGS,
  TC_ACT,
  Tc,
  TcInputError,
  assemble,
  bpfFilterSpec,
  formatBpfHandle,
  formatBytecode,
  formatTcHandle,
  isBpf,
  jeq,
  ldAbs,
  ldInd,
  ldxMsh,
  parseBytecode,
  protocolName,
  ret,
  type BpfFilter,
  type BpfFilterSpec,
  type CbpfInsn,
} from '../../src/tc/index.js';
import { HOST_IP, Lab, eventually, sweepStaleLabs, until } from '../../src/lab/index.js';
import { ip, ipJson } from '../helpers/lab.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { tcJson, tcRun } from './helpers.js';

let lab: Lab;
let session: NetlinkSession;
let tc: Tc;
let ns: string;
const dev = { eth0: 0, veth1: 0 };

/** IPv4 UDP to `port` (the real IP header length, from ldx msh) → `hit`, else `miss`. */
const udpTo = (port: number, hit: number, miss: number): CbpfInsn[] =>
  assemble([
    ldAbs('h', 12),
    jeq(0x0800, 0, 'miss'),
    ldAbs('b', 23),
    jeq(17, 0, 'miss'),
    ldxMsh(14),
    ldInd('h', 16),
    jeq(port, 0, 'miss'),
    ret(hit),
    { label: 'miss' },
    ret(miss),
  ]);

/** Direct action: UDP to 5000 is dropped, everything else goes on to the next filter. */
const DROP_5000 = udpTo(5000, TC_ACT.SHOT, TC_ACT.UNSPEC);
/** A match: UDP to 5002 matches (-1: the filter's classid), anything else does not (0). */
const MATCH_5002 = udpTo(5002, -1, 0);

const ingress = (priority: number, spec: Omit<BpfFilterSpec, 'kind' | 'ifindex' | 'parent' | 'priority'>): BpfFilterSpec => ({
  kind: 'bpf',
  ifindex: dev.eth0,
  parent: 'ffff:',
  priority,
  ...spec,
});

/** tc's JSON object of the bpf filter at a priority (not the per-priority placeholder). */
const tcFilter = (priority: number) =>
  tcJson<any[]>(ns, '-s', 'filter', 'show', 'dev', 'eth0', 'parent', 'ffff:').find((x) => x.pref === priority && x.options);

async function bpfAt(priority: number): Promise<BpfFilter> {
  const all = await tc.listFilters(dev.eth0, 'ffff:', { priority });
  expect(all).toHaveLength(1);
  expect(isBpf(all[0]!)).toBe(true);
  return all[0] as BpfFilter;
}

async function ingressDrops(): Promise<number> {
  return (await tc.getQdisc({ ifindex: dev.eth0, kind: 'ingress' }))!.stats!.drops;
}

/** Send `n` UDP datagrams from the world to the host's `port`. */
function datagrams(port: number, n: number, text: string): void {
  for (let i = 0; i < n; i++) expect(send(lab.world, 'udp', HOST_IP, port, `${text}${i};`)).toBe('ok');
}

beforeAll(async () => {
  sweepStaleLabs();
  lab = new Lab();
  ns = lab.host;
  ip(ns, 'link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'veth1p');
  ip(ns, 'link', 'set', 'veth1', 'up');
  ip(ns, 'link', 'set', 'veth1p', 'up');
  dev.eth0 = ipJson<Array<{ ifindex: number }>>(ns, 'link', 'show', 'eth0')[0]!.ifindex;
  dev.veth1 = ipJson<Array<{ ifindex: number }>>(ns, 'link', 'show', 'veth1')[0]!.ifindex;
  session = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  tc = new Tc(session);
  await tc.addQdisc({ kind: 'ingress', ifindex: dev.eth0 });
});
afterAll(() => {
  stopAllTraffic();
  session?.close();
  lab?.destroy();
});

describe('bpf filters with classic programs, through the kernel', () => {
  it('a direct-action program: added, echoed and dumped back as sent, shown by tc -j with the same bytecode and flags', async () => {
    const created = (await tc.addFilter(ingress(5, { handle: 1, program: DROP_5000, directAction: true }))) as BpfFilter;
    expect(isBpf(created)).toBe(true);
    expect(created).toMatchObject({ kind: 'bpf', handle: 1, priority: 5, protocol: 0x0800, directAction: true, program: DROP_5000, actions: [] });
    const f = await bpfAt(5);
    expect(f).toMatchObject({ handle: 1, directAction: true, program: DROP_5000, actions: [] });
    expect(f.classid).toBeUndefined();
    expect(f.name).toBeUndefined();
    expect(f.genFlags).toBe(TCA_CLS_FLAGS.NOT_IN_HW);
    const t = tcFilter(5);
    expect([t.kind, t.protocol, t.options.handle]).toEqual(['bpf', protocolName(f.protocol), formatBpfHandle(f.handle)]);
    expect(t.options['direct-action']).toBe(true);
    expect(t.options.not_in_hw).toBe(true);
    expect(t.options.bytecode).toEqual({ length: f.program.length, insns: f.program });
    expect(t.options.flowid).toBeUndefined();
    expect(tcRun(ns, 'filter', 'show', 'dev', 'eth0', 'parent', 'ffff:', 'prio', '5')).toContain(
      `direct-action not_in_hw bytecode '${formatBytecode(DROP_5000)}'`,
    );
  });

  it('it drops exactly the UDP datagrams to its port: the ingress qdisc counts each drop; other ports pass', async () => {
    const dropped = await listen(ns, 'udp', 5000);
    const passed = await listen(ns, 'udp', 5001);
    try {
      datagrams(5001, 1, 'warm'); // ARP resolved, the path warm
      expect(await until(() => passed.received() === 'warm0;')).toBe(true);
      const before = await ingressDrops();
      datagrams(5000, 5, 'x');
      datagrams(5001, 3, 'p');
      expect(await until(() => passed.received() === 'warm0;p0;p1;p2;')).toBe(true);
      // Exactly 5: counted a little later at most (another CPU's backlog), and never more.
      const after = await eventually(async () => {
        const n = await ingressDrops();
        expect(n - before).toBe(5);
        return n;
      });
      expect(dropped.received()).toBe('');
      const q = tcJson<any[]>(ns, '-s', 'qdisc', 'show', 'dev', 'eth0').find((x) => x.kind === 'ingress');
      expect(q.drops).toBe(after);
    } finally {
      dropped.stop();
      passed.stop();
    }
  });

  it('a matching program with a classid and a mirred action: the action runs once per matching datagram, as tc counts it', async () => {
    await tc.addFilter(ingress(6, { handle: 2, program: MATCH_5002, classid: '1:1', actions: [{ kind: 'mirred', action: 'mirror', ifindex: dev.veth1 }] }));
    const f = await bpfAt(6);
    expect(f).toMatchObject({ handle: 2, directAction: false, classid: 0x10001, program: MATCH_5002 });
    expect(f.actions).toMatchObject([{ kind: 'mirred', direction: 'egress', action: 'mirror', ifindex: dev.veth1, verdict: TC_ACT.PIPE }]);
    const matched = await listen(ns, 'udp', 5002);
    const other = await listen(ns, 'udp', 5001);
    try {
      datagrams(5002, 4, 'm');
      datagrams(5001, 2, 'o');
      // Mirror copies and lets the packet go on: both listeners get theirs.
      expect(await until(() => matched.received() === 'm0;m1;m2;m3;' && other.received() === 'o0;o1;')).toBe(true);
      const after = await bpfAt(6);
      expect(after.actions[0]!.stats!.packets).toBe(4n);
      const t = tcFilter(6);
      expect(t.options.flowid).toBe(formatTcHandle(after.classid!));
      expect(t.options['direct-action']).toBeUndefined();
      expect(t.options.bytecode.insns).toEqual(after.program);
      expect(t.options.actions.map((a: any) => [a.kind, a.mirred_action, a.direction, a.to_dev, a.index, BigInt(a.stats.packets)])).toEqual(
        after.actions.map((a) => [a.kind, a.action, a.direction, 'veth1', a.index, a.stats!.packets]),
      );
    } finally {
      matched.stop();
      other.stop();
    }
  });

  it('a filter added by tc is decoded by the SDK into the program, classid and redirect tc was given', async () => {
    const text = '4,40 0 0 12,21 0 1 2054,6 0 0 4294967295,6 0 0 0';
    tcRun(
      ns,
      'filter',
      'add',
      'dev',
      'eth0',
      'parent',
      'ffff:',
      'protocol',
      'all',
      'prio',
      '7',
      'handle',
      '0x20',
      'bpf',
      'bytecode',
      text,
      'classid',
      '1:7',
      'action',
      'mirred',
      'egress',
      'redirect',
      'dev',
      'veth1',
    );
    const f = await bpfAt(7);
    expect(f).toMatchObject({ handle: 0x20, protocol: 0x0003, directAction: false, classid: 0x10007, program: parseBytecode(text) });
    expect(f.actions).toMatchObject([{ kind: 'mirred', direction: 'egress', action: 'redirect', ifindex: dev.veth1, verdict: TC_ACT.STOLEN }]);
    // The spec made from the dump sends the same filter again: replace keeps it as it was.
    await tc.replaceFilter(bpfFilterSpec(f));
    const again = await bpfAt(7);
    expect([again.handle, again.program, again.classid, again.actions.map((a) => [a.action, a.ifindex])]).toEqual([
      f.handle,
      f.program,
      f.classid,
      [['redirect', dev.veth1]],
    ]);
  });

  it('replace changes the program in place; get finds a filter by its plain handle; delete by prio and handle removes only that one', async () => {
    const spec = ingress(8, { handle: 3, program: [ret(TC_ACT.UNSPEC)] });
    await tc.addFilter(spec);
    await tc.addFilter({ ...spec, handle: 0x1000, program: [ret(0)] }); // 0x1000: a plain number, not a u32 hash table
    const dup = await tc.addFilter(spec).catch((e) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup.code).toBe('EEXIST');
    await tc.replaceFilter({ ...spec, program: DROP_5000, directAction: true });
    const got = (await tc.getFilter({ kind: 'bpf', ifindex: dev.eth0, parent: 'ffff:', priority: 8, protocol: 'ip', handle: 3 })) as BpfFilter;
    expect(got).toMatchObject({ handle: 3, program: DROP_5000, directAction: true });
    expect((await tc.listFilters(dev.eth0, 'ffff:', { priority: 8 })).map((f) => f.handle).sort()).toEqual([3, 0x1000]);
    await tc.deleteFilter({ kind: 'bpf', ifindex: dev.eth0, parent: 'ffff:', priority: 8, protocol: 'ip', handle: 3 });
    expect((await tc.listFilters(dev.eth0, 'ffff:', { priority: 8 })).map((f) => f.handle)).toEqual([0x1000]);
    expect(await tc.getFilter({ kind: 'bpf', ifindex: dev.eth0, parent: 'ffff:', priority: 8, protocol: 'ip', handle: 3 })).toBeUndefined();
    expect(await tc.removeFilterIfExists({ kind: 'bpf', ifindex: dev.eth0, parent: 'ffff:', priority: 8, protocol: 'ip', handle: 3 })).toBe(false);
    await tc.deleteFilter({ ifindex: dev.eth0, parent: 'ffff:', priority: 8 });
    expect(await tc.listFilters(dev.eth0, 'ffff:', { priority: 8 })).toEqual([]);
  });

  it('refusals: ours before sending, the kernel’s typed (an opcode our field checks cannot know)', async () => {
    const before = tcRun(ns, 'filter', 'show', 'dev', 'eth0', 'parent', 'ffff:');
    await expect(tc.addFilter(ingress(9, { program: [ldAbs('h', 12)] }))).rejects.toThrow(/last instruction must be a ret/);
    await expect(
      tc.addFilter(ingress(9, { program: DROP_5000, directAction: true, actions: [{ kind: 'mirred', action: 'mirror', ifindex: dev.veth1 }] })),
    ).rejects.toThrow(TcInputError);
    await expect(tc.addFilter(ingress(9, { handle: '800::1', program: DROP_5000 }))).rejects.toThrow(/invalid bpf filter handle/);
    expect(session.pendingCount).toBe(0);
    const err = await tc.addFilter(ingress(9, { program: [{ code: 0xffff, jt: 0, jf: 0, k: 0 }, ret(0)] })).catch((e) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.code).toBe('EINVAL');
    expect(tcRun(ns, 'filter', 'show', 'dev', 'eth0', 'parent', 'ffff:')).toBe(before);
  });

  it('kernel quirks: a classic program keeps no name; actions given to a direct-action program are kept but never run', async () => {
    // TCA_BPF_NAME is stored for eBPF programs only.
    await tc.addFilter(ingress(10, { handle: 1, program: [ret(TC_ACT.UNSPEC)], name: 'pass' }));
    expect((await bpfAt(10)).name).toBeUndefined();
    await tc.deleteFilter({ ifindex: dev.eth0, parent: 'ffff:', priority: 10 });
    // tc sends actions with `da`; the kernel takes them; the verdict (OK: accept) comes from the program and the mirror never runs.
    tcRun(
      ns,
      'filter',
      'add',
      'dev',
      'eth0',
      'parent',
      'ffff:',
      'protocol',
      'ip',
      'prio',
      '1',
      'handle',
      '1',
      'bpf',
      'bytecode',
      '1,6 0 0 0',
      'da',
      'action',
      'mirred',
      'egress',
      'mirror',
      'dev',
      'veth1',
    );
    const f = await bpfAt(1);
    expect(f.directAction).toBe(true);
    expect(f.actions).toHaveLength(1);
    const l = await listen(ns, 'udp', 5000);
    try {
      const drops = await ingressDrops();
      datagrams(5000, 3, 'ok'); // accepted at prio 1: the drop program at prio 5 never sees them
      expect(await until(() => l.received() === 'ok0;ok1;ok2;')).toBe(true);
      expect((await bpfAt(1)).actions[0]!.stats!.packets).toBe(0n);
      expect(await ingressDrops()).toBe(drops);
    } finally {
      l.stop();
      await tc.deleteFilter({ ifindex: dev.eth0, parent: 'ffff:', priority: 1 });
    }
  });
});
