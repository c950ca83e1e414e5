/**
 * fq_codel through the SDK on a kernel that has it (Debian's stock kernel in the stock-kernel
 * stage): created with every parameter, listed and decoded (options, statistics, xstats) exactly
 * as `tc -j -s` shows them; changed in place; as the leaf of an HTB class (the isolator's
 * bloat_reduction shape); and classified by u32 filters into flows, which is what unique egress
 * flows build on: a packet no filter classifies is dropped, hence the catch-all.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkSession, Netns } from '../../src/netlink/index.js';
import { RTM_NAMES } from '../../src/rtnl/constants.js';
import { Tc, formatTcHandle, type Qdisc } from '../../src/tc/index.js';
import { ipJson } from '../helpers/lab.js';
import { icmpEcho } from '../helpers/probe.js';
import { quietSnapshot } from '../helpers/quiet-snapshot.js';
import { send, stopAllTraffic } from '../helpers/traffic.js';
import { tcJson, tcRun } from '../tc/helpers.js';
import { assertFqCodel, codelRoundTrip, quietIpv6 } from './helpers.js';
import { Lab, sweepStaleLabs } from '../../src/lab/index.js';

let lab: Lab;
let session: NetlinkSession;
let tc: Tc;
let eth0 = 0;

beforeAll(() => {
  sweepStaleLabs();
  lab = new Lab();
  quietIpv6(lab.host, 'eth0');
  quietIpv6(lab.world, 'eth0');
  assertFqCodel(lab.host);
  eth0 = ipJson<Array<{ ifindex: number }>>(lab.host, 'link', 'show', 'eth0')[0]!.ifindex;
  session = NetlinkSession.open({ netns: Netns.fromName(lab.host), typeNames: RTM_NAMES });
  tc = new Tc(session);
});
afterAll(() => {
  stopAllTraffic();
  session?.close();
  lab?.destroy();
});

const tcQdisc = (dev: string, kind = 'fq_codel') => tcJson<any[]>(lab.host, '-s', 'qdisc', 'show', 'dev', dev).find((q) => q.kind === kind);
const ourQdisc = async (ifindex: number, kind = 'fq_codel') => (await tc.listQdiscs(ifindex)).find((q) => q.kind === kind);

/** Every option tc prints, against what the SDK decoded. */
function expectOptionsAsTc(q: Qdisc, t: any): void {
  expect(formatTcHandle(q.handle)).toBe(t.handle);
  expect({
    limit: q.limitPackets,
    flows: q.flows,
    quantum: q.quantumBytes,
    target: q.targetUs,
    interval: q.intervalUs,
    memory_limit: q.memoryLimitBytes,
    // tc prints "ecn" only when it is on.
    ...(q.ecn ? { ecn: true } : {}),
    drop_batch: q.dropBatch,
    ...(t.options.ce_threshold !== undefined ? { ce_threshold: q.ceThresholdUs } : {}),
  }).toEqual(t.options);
}

/** A fresh fq_codel 5: with every parameter at the root of the lab host's eth0. */
const ALL_PARAMS = {
  kind: 'fq_codel',
  handle: '5:',
  limitPackets: 1000,
  flows: 512,
  quantumBytes: 1514,
  targetUs: 5000,
  intervalUs: 100_000,
  ecn: true,
  ceThresholdUs: 2000,
  memoryLimitBytes: 32 << 20,
  dropBatch: 32,
} as const;
const fresh = () => tc.replaceQdisc({ ...ALL_PARAMS, ifindex: eth0 });

/** Statistics and xstats, against `tc -j -s` read while nothing moves. */
function expectStatsAsTc(q: Qdisc, t: any): void {
  expect(q.stats).toBeDefined();
  expect({
    bytes: Number(q.stats!.bytes),
    packets: Number(q.stats!.packets),
    drops: q.stats!.drops,
    overlimits: q.stats!.overlimits,
    requeues: q.stats!.requeues,
    backlog: q.stats!.backlogBytes,
    qlen: q.stats!.qlen,
  }).toEqual({
    bytes: t.bytes,
    packets: t.packets,
    drops: t.drops,
    overlimits: t.overlimits,
    requeues: t.requeues,
    backlog: t.backlog,
    qlen: t.qlen,
  });
  expect(q.xstats?.type).toBe(0);
  const x = q.xstats!.type === 0 ? q.xstats!.qdisc : undefined;
  const ours: Record<string, number | undefined> = {
    maxpacket: x?.maxpacket,
    drop_overlimit: x?.dropOverlimit,
    new_flow_count: x?.newFlowCount,
    ecn_mark: x?.ecnMark,
    new_flows_len: x?.newFlowsLen,
    old_flows_len: x?.oldFlowsLen,
    ce_mark: x?.ceMark,
    memory_used: x?.memoryUsage,
    drop_overmemory: x?.dropOvermemory,
  };
  // tc 6.1 prints the first six always and the last three only when non-zero.
  for (const k of Object.keys(ours)) if (t[k] !== undefined) expect([k, ours[k]]).toEqual([k, t[k]]);
  for (const k of ['ce_mark', 'memory_used', 'drop_overmemory']) if (t[k] === undefined) expect([k, ours[k] ?? 0]).toEqual([k, 0]);
}

afterEach(async () => {
  await tc.removeQdiscIfExists({ ifindex: eth0, parent: 'root' });
});

describe('fq_codel on a real kernel', () => {
  it('is created with every parameter; listed and decoded as `tc -j -s` shows it (codel times in 1024 ns units)', async () => {
    await tc.addQdisc({ ...ALL_PARAMS, ifindex: eth0 });
    const q = (await ourQdisc(eth0))!;
    expect(q).toMatchObject({
      kind: 'fq_codel',
      parent: 0xffffffff,
      handle: 0x50000,
      limitPackets: 1000,
      flows: 512,
      quantumBytes: 1514,
      ecn: true,
      memoryLimitBytes: 32 << 20,
      dropBatch: 32,
    });
    expect([q.targetUs, q.intervalUs, q.ceThresholdUs]).toEqual([codelRoundTrip(5000), codelRoundTrip(100_000), codelRoundTrip(2000)]);
    expect([q.targetUs, q.intervalUs, q.ceThresholdUs]).toEqual([4999, 99_999, 1999]);
    const t = tcQdisc('eth0');
    expect(t.root).toBe(true);
    expectOptionsAsTc(q, t);
    expectStatsAsTc(q, t);
    // The one-line text tc prints shows the same qdisc.
    expect(tcRun(lab.host, 'qdisc', 'show', 'dev', 'eth0')).toMatch(
      /qdisc fq_codel 5: root refcnt \d+ limit 1000p flows 512 quantum 1514 target 5ms ce_threshold 2ms interval 100ms memory_limit 32Mb ecn drop_batch 32/,
    );
  });

  it('counts real traffic: statistics and xstats equal `tc -j -s`', async () => {
    await fresh();
    expect(icmpEcho(lab.host, '198.18.0.1', { count: 5, intervalMs: 50, sizeBytes: 1200, waitMs: 1000 })).toMatchObject({ sent: 5, received: 5 });
    const q = (await ourQdisc(eth0))!;
    const t = tcQdisc('eth0');
    expect(Number(q.stats!.packets)).toBeGreaterThanOrEqual(5);
    expect(Number(q.stats!.bytes)).toBeGreaterThan(5 * 1200);
    expectStatsAsTc(q, t);
  });

  it('is changed in place (same handle, counters kept), as tc then shows it', async () => {
    await fresh();
    expect(icmpEcho(lab.host, '198.18.0.1', { count: 2, intervalMs: 50, waitMs: 1000 })).toMatchObject({ sent: 2, received: 2 });
    const before = (await ourQdisc(eth0))!;
    await tc.changeQdisc({ kind: 'fq_codel', ifindex: eth0, handle: '5:', limitPackets: 2000, targetUs: 10_000, intervalUs: 200_000, ecn: false });
    const q = (await ourQdisc(eth0))!;
    expect(q).toMatchObject({ handle: 0x50000, limitPackets: 2000, ecn: false, flows: 512, quantumBytes: 1514 });
    expect([q.targetUs, q.intervalUs]).toEqual([codelRoundTrip(10_000), codelRoundTrip(200_000)]);
    expect(q.stats!.packets).toBe(before.stats!.packets);
    expect(q.stats!.packets).toBeGreaterThanOrEqual(2n);
    expectOptionsAsTc(q, tcQdisc('eth0'));
    await tc.deleteQdisc({ ifindex: eth0, parent: 'root' });
    expect(await ourQdisc(eth0)).toBeUndefined();
  });

  it('is the leaf of an HTB class with a kernel-chosen handle (the bloat_reduction shape), listed as tc lists it', async () => {
    await tc.addQdisc({ kind: 'htb', ifindex: eth0, handle: '1:', defaultClass: 1 });
    // 10 kB/s: a burst of 1.2 kB pings queues in the leaf, so its xstats move too.
    await tc.addClass({ kind: 'htb', ifindex: eth0, parent: '1:', classid: '1:1', rateBytesPerSec: 10_000, burstBytes: 1600 });
    await tc.addQdisc({ kind: 'fq_codel', ifindex: eth0, parent: '1:1' });
    // 6 × 1.2 kB at once queue in the leaf; codel may drop some of them, the others are answered.
    const echo = icmpEcho(lab.host, '198.18.0.1', { count: 6, intervalMs: 2, sizeBytes: 1200, waitMs: 3000 });
    expect(echo.sent).toBe(6);
    expect(echo.received).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 1500)); // the queue drains at 10 kB/s
    // Ours and tc's across a moment no packet crossed (the lab's IPv6 chatter goes through eth0 too).
    const { ours: q, theirs: t } = await quietSnapshot(
      async () => (await tc.getQdisc({ ifindex: eth0, parent: '1:1' }))!,
      () => tcJson<any[]>(lab.host, '-s', 'qdisc', 'show', 'dev', 'eth0').find((x) => x.kind === 'fq_codel'),
      (o) => JSON.stringify([o.stats, o.xstats], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    );
    expect(q.kind).toBe('fq_codel');
    expect(q.handle >>> 16).toBeGreaterThan(0);
    expect(formatTcHandle(q.parent)).toBe(t.parent);
    expectOptionsAsTc(q, t);
    expectStatsAsTc(q, t);
    expect(Number(q.stats!.packets)).toBeGreaterThanOrEqual(3);
    expect(q.xstats?.type === 0 ? q.xstats.qdisc.maxpacket : 0).toBeGreaterThanOrEqual(1200);
    expect(q.xstats?.type === 0 ? q.xstats.qdisc.newFlowCount : 0).toBeGreaterThanOrEqual(1);
    // What HTB sent, the leaf sent.
    const htb = (await ourQdisc(eth0, 'htb'))!;
    expect(htb.stats!.packets).toBe(q.stats!.packets);
  });

  it('classifies by u32 filters into flows; what no filter classifies is dropped, so a catch-all is needed', async () => {
    // One UDP datagram from the host (sent, then dropped or not by the qdisc: nothing listens at the world).
    const sink = (port: number) => expect(send(lab.host, 'udp', '198.18.0.1', port, 'x\n')).toBe('ok');
    await tc.addQdisc({ kind: 'fq_codel', ifindex: eth0, handle: '1:' });
    // ICMP into flow 2 only.
    await tc.addFilter({
      kind: 'u32',
      ifindex: eth0,
      parent: '1:',
      priority: 514,
      protocol: 'ip',
      matches: [{ type: 'ipProto', protocol: 'icmp' }],
      classid: '1:2',
    });
    expect(icmpEcho(lab.host, '198.18.0.1', { count: 2, intervalMs: 50, waitMs: 1000 })).toMatchObject({ sent: 2, received: 2 });
    const drops0 = (await ourQdisc(eth0))!.stats!.drops;
    for (let i = 0; i < 3; i++) sink(9);
    const dropped = (await ourQdisc(eth0))!;
    expect(dropped.stats!.drops - drops0).toBeGreaterThanOrEqual(3); // UDP matched nothing: dropped
    const icmp = (await tc.listU32Nodes(eth0, '1:', { priority: 514 }))[0]!;
    expect(icmp.classid).toBe(0x10002);
    expect(icmp.counters!.rhit).toBeGreaterThanOrEqual(2n);
    // A catch-all into flow 1: nothing is dropped any more.
    await tc.addFilter({
      kind: 'u32',
      ifindex: eth0,
      parent: '1:',
      priority: 1026,
      protocol: 'all',
      matches: [{ type: 'u32', value: 0, mask: 0, at: 0 }],
      classid: '1:1',
    });
    const drops1 = (await ourQdisc(eth0))!.stats!.drops;
    for (let i = 0; i < 3; i++) sink(9);
    expect((await ourQdisc(eth0))!.stats!.drops).toBe(drops1);
    const all = (await tc.listU32Nodes(eth0, '1:', { priority: 1026 }))[0]!;
    expect(all.counters!.rhit).toBeGreaterThanOrEqual(3n);
    // The SDK's counters are tc's "rule hit … success …".
    const text = tcRun(lab.host, '-s', 'filter', 'show', 'dev', 'eth0', 'parent', '1:');
    for (const f of [icmp, all]) {
      const now = (await tc.listU32Nodes(eth0, '1:', { priority: f.priority }))[0]!;
      expect(text).toContain(`*flowid ${formatTcHandle(now.classid!)} not_in_hw (rule hit ${now.counters!.rcnt} success ${now.counters!.rhit})`);
    }
  });
});
