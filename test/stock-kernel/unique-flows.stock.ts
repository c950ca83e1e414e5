/**
 * --egress_unique_flow_per_container on a kernel with fq_codel: fq_codel at the root of the
 * host's eth0 (1:), ARP and ICMP classified into flow 1:2, everything unclassified into the
 * catch-all flow 1:1, and each container's source ports into its own flow (1:3 upwards) through
 * the u32 flow table 102:. Proven with real traffic and the filters' hit counters as the lab
 * host's admin reads them (`tc -s filter show dev eth0 parent 1:`), and across destroy/create
 * (flow ids and filter handles freed and reused), a crash in the middle of an update, and cleanup.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkSession, Netns } from '../../src/netlink/index.js';
import { RTM_NAMES } from '../../src/rtnl/constants.js';
import { Tc, formatTcHandle, formatU32Handle, type U32Filter } from '../../src/tc/index.js';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import type { IsolatorFlags } from '../../src/isolator/config.js';
import { ip, ipJson } from '../helpers/lab.js';
import { arpResolve, icmpEcho } from '../helpers/probe.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { tcJson, tcRun } from '../tc/helpers.js';
import { assertFqCodel, filterHits, quietIpv6, successesOf, type FilterHits } from './helpers.js';
import { FIXTURE, GATEWAY, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const FLAGS: IsolatorFlags = { ...FIXTURE, egress_unique_flow_per_container: true };
const FLOW_TABLE = 0x102;
const SINK = 7300;

let lab: IsolatorLab;
let iso: Isolator;
let session: NetlinkSession;
let tc: Tc;
let eth0 = 0;
const containers: Record<string, ContainerInfo> = {};

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  // No IPv6 chatter on the lab host's eth0: then every packet it sends is one a test sent.
  quietIpv6(lab.lab.host, 'eth0');
  assertFqCodel(lab.lab.host);
  eth0 = ipJson<Array<{ ifindex: number }>>(lab.lab.host, 'link', 'show', 'eth0')[0]!.ifindex;
  session = NetlinkSession.open({ netns: Netns.fromName(lab.lab.host), typeNames: RTM_NAMES });
  tc = new Tc(session);
  iso = await lab.open(FLAGS);
  containers.c1 = await iso.create({ id: 'c1', ports: '[31000-31009]' });
  containers.c2 = await iso.create({ id: 'c2', ports: '[31010-31019]' });
});
afterAll(async () => {
  stopAllTraffic();
  session?.close();
  await lab?.destroy();
});

const hits = (): FilterHits[] => filterHits(lab.lab.host, 'eth0', '1:');
const flowTableNodes = async (): Promise<U32Filter[]> => (await tc.listU32Nodes(eth0, '1:')).filter((f) => f.handle >>> 20 === FLOW_TABLE);
const fqCodelDrops = async () => (await tc.getQdisc({ ifindex: eth0, parent: 'root' }))!.stats!.drops;

/** The source-port ranges a flow's filters cover, merged: what the kernel classifies into it. */
function coveredRanges(nodes: U32Filter[], flow: number): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  for (const f of nodes.filter((n) => n.classid === (0x10000 | flow))) {
    for (const m of f.matches) {
      if (m.type !== 'srcPort') continue;
      const mask = m.mask ?? 0xffff;
      ranges.push([m.port, m.port | (~mask & 0xffff)]);
      expect(u32Bucket(f.handle), formatU32Handle(f.handle)).toBe(m.port >> 8); // each filter sits in its port's bucket
    }
  }
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}
const u32Bucket = (handle: number) => (handle >>> 12) & 0xff;
function portsOf(c: ContainerInfo): Array<[number, number]> {
  const all: Array<[number, number]> = [[c.ephemeral_ports.begin, c.ephemeral_ports.end], ...c.ports.map(([b, e]): [number, number] => [b, e])];
  return all.sort((a, b) => a[0] - b[0]);
}

/** Send `n` UDP datagrams (each from a new socket, so a new ephemeral source port) and one TCP message. */
function chatter(from: string, n: number): void {
  for (let i = 0; i < n; i++) expect(send(from, 'udp', GATEWAY, SINK, `u${i}\n`)).toBe('ok');
  expect(send(from, 'tcp', GATEWAY, SINK + 1, 'tcp\n')).toBe('ok');
}

describe('the shared layout on the host eth0', () => {
  it('fq_codel sits at the root of eth0 with handle 1:, as the SDK and tc see it', async () => {
    const t = tcJson<any[]>(lab.lab.host, '-s', 'qdisc', 'show', 'dev', 'eth0').find((q) => q.kind === 'fq_codel');
    expect(t).toMatchObject({ handle: '1:', root: true });
    const q = (await tc.getQdisc({ ifindex: eth0, parent: 'root' }))!;
    expect(q).toMatchObject({ kind: 'fq_codel', handle: 0x10000 });
    expect({
      limit: q.limitPackets,
      flows: q.flows,
      quantum: q.quantumBytes,
      target: q.targetUs,
      interval: q.intervalUs,
      memory_limit: q.memoryLimitBytes,
      ecn: q.ecn,
      drop_batch: q.dropBatch,
    }).toEqual(t.options);
    expect(q.flows).toBeGreaterThanOrEqual(1023); // every flow id the isolator hands out exists
  });

  it('ARP and ICMP go to flow 1:2, the catch-all (any protocol) to 1:1, IPv4 on to the flow table 102:', async () => {
    const all = await tc.listFilters(eth0, '1:');
    const nodes = all.filter((f): f is U32Filter => f.kind === 'u32' && 'matches' in f);
    const at = (prio: number) => nodes.filter((f) => f.priority === prio && f.divisor === undefined && f.handle >>> 20 !== FLOW_TABLE);
    expect(at(258).map((f) => [f.protocol, f.classid, f.terminal])).toEqual([[0x0806, 0x10002, true]]);
    expect(at(514).map((f) => [f.protocol, f.classid, f.matches])).toEqual([[0x0800, 0x10002, [{ type: 'ipProto', protocol: 1 }]]]);
    expect(at(1026).map((f) => [f.protocol, f.classid])).toEqual([[0x0003, 0x10001]]);
    const table = nodes.find((f) => f.handle === FLOW_TABLE << 20)!;
    expect(table.divisor).toBe(256);
    const link = at(771).find((f) => f.link !== undefined)!;
    expect([link.link, link.hashkey]).toEqual([FLOW_TABLE << 20, { mask: 0xff000000, at: 20 }]);
    // Priorities in the order the kernel tries them: ARP, ICMP, containers, catch-all.
    expect([...new Set(nodes.map((f) => f.priority))]).toEqual([258, 514, 771, 1026]);
    // tc shows the same flow ids.
    const h = hits();
    expect(h.filter((x) => x.pref === 258).map((x) => x.flowid)).toEqual(['1:2']);
    expect(h.filter((x) => x.pref === 514).map((x) => x.flowid)).toEqual(['1:2']);
    expect(h.filter((x) => x.pref === 1026).map((x) => x.flowid)).toEqual(['1:1']);
  });

  it("each container's source ports (ephemeral block and ports) are classified into its own flow, 1:3 and 1:4", async () => {
    const nodes = await flowTableNodes();
    expect(coveredRanges(nodes, 3)).toEqual(portsOf(containers.c1!));
    expect(coveredRanges(nodes, 4)).toEqual(portsOf(containers.c2!));
    expect(new Set(nodes.map((f) => f.classid))).toEqual(new Set([0x10003, 0x10004]));
    for (const f of nodes) expect(f.terminal).toBe(true);
    // As tc lists them: the same handles with the same flow ids.
    const t = hits().filter((x) => x.pref === 771 && x.flowid);
    expect(t.map((x) => `${x.handle} ${x.flowid}`).sort()).toEqual(nodes.map((f) => `${formatU32Handle(f.handle)} ${formatTcHandle(f.classid!)}`).sort());
  });
});

describe('real traffic', () => {
  let udp: Awaited<ReturnType<typeof listen>>;
  let tcp: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    udp = await listen(lab.lab.world, 'udp', SINK);
    tcp = await listen(lab.lab.world, 'tcp', SINK + 1);
  });
  afterAll(() => {
    udp?.stop();
    tcp?.stop();
  });

  it("a container's traffic is counted by its own flow's filters only, and arrives", async () => {
    const drops = await fqCodelDrops();
    const h0 = hits();
    chatter(containers.c1!.netns, 4);
    expect(await until(() => (udp.received().match(/^u\d$/gm) ?? []).length >= 4 && tcp.received().includes('tcp'), 5000)).toBe(true);
    const h1 = hits();
    expect(successesOf(h1, '1:3') - successesOf(h0, '1:3')).toBeGreaterThanOrEqual(4 + 3); // 4 datagrams, a TCP handshake and data
    expect(successesOf(h1, '1:4')).toBe(successesOf(h0, '1:4'));
    expect(successesOf(h1, '1:1')).toBe(successesOf(h0, '1:1'));
    chatter(containers.c2!.netns, 3);
    const h2 = hits();
    expect(successesOf(h2, '1:4') - successesOf(h1, '1:4')).toBeGreaterThanOrEqual(3 + 3);
    expect(successesOf(h2, '1:3')).toBe(successesOf(h1, '1:3'));
    expect(successesOf(h2, '1:1')).toBe(successesOf(h1, '1:1'));
    expect(await fqCodelDrops()).toBe(drops);
    // The SDK reads the same counters as tc.
    for (const f of await flowTableNodes()) {
      const t = hits().find((x) => x.handle === formatU32Handle(f.handle))!;
      expect([f.counters?.rcnt, f.counters?.rhit]).toEqual([BigInt(t.hit), BigInt(t.success)]);
    }
  });

  it("a container's server answers (source port = one of its ports) go into its flow too", async () => {
    const server = await listen(containers.c1!.netns, 'tcp', 31001);
    try {
      const h0 = hits();
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31001, 'to-c1\n')).toBe('ok');
      expect(await until(() => server.received().includes('to-c1'))).toBe(true);
      const h1 = hits();
      const portFilter = (h: FilterHits[]) => h.filter((x) => x.flowid === '1:3' && x.handle.startsWith('102:79:')).reduce((a, x) => a + x.success, 0);
      expect(portFilter(h1) - portFilter(h0)).toBeGreaterThanOrEqual(2); // SYN-ACK and ACKs from port 31001 (bucket 0x79)
      expect(successesOf(h1, '1:4')).toBe(successesOf(h0, '1:4'));
    } finally {
      server.stop();
    }
  });

  it("the host's own traffic goes to the catch-all flow 1:1", async () => {
    const h0 = hits();
    for (let i = 0; i < 3; i++) expect(send(lab.lab.host, 'udp', GATEWAY, SINK, `h${i}\n`, { sourcePort: 40000 + i })).toBe('ok');
    expect(await until(() => (udp.received().match(/^h\d$/gm) ?? []).length >= 3)).toBe(true);
    const h1 = hits();
    expect(successesOf(h1, '1:1') - successesOf(h0, '1:1')).toBeGreaterThanOrEqual(3);
    expect(successesOf(h1, '1:3')).toBe(successesOf(h0, '1:3'));
    expect(successesOf(h1, '1:4')).toBe(successesOf(h0, '1:4'));
  });

  it('ARP and ICMP, from the host and from containers, go to flow 1:2', async () => {
    const arp = (h: FilterHits[]) => h.filter((x) => x.pref === 258).reduce((a, x) => a + x.success, 0);
    const icmp = (h: FilterHits[]) => h.filter((x) => x.pref === 514).reduce((a, x) => a + x.success, 0);
    const h0 = hits();
    expect(icmpEcho(lab.lab.host, GATEWAY, { count: 3 })).toMatchObject({ sent: 3, received: 3 });
    expect(icmpEcho(containers.c1!.netns, GATEWAY, { count: 2 })).toMatchObject({ sent: 2, received: 2 });
    const h1 = hits();
    expect(icmp(h1) - icmp(h0)).toBeGreaterThanOrEqual(5);
    ip(lab.lab.host, 'neigh', 'flush', 'dev', 'eth0');
    expect(icmpEcho(lab.lab.host, GATEWAY)).toMatchObject({ sent: 1, received: 1 }); // resolves the gateway again
    expect(arpResolve(containers.c2!.netns, 'eth0', GATEWAY).replies).toBe(1);
    const h2 = hits();
    expect(arp(h2) - arp(h1)).toBeGreaterThanOrEqual(2);
    expect(successesOf(h2, '1:2') - successesOf(h0, '1:2')).toBe(arp(h2) - arp(h0) + icmp(h2) - icmp(h0));
    for (const flow of ['1:1', '1:3', '1:4']) expect(successesOf(h2, flow), flow).toBe(successesOf(h0, flow));
  });
});

describe('flow ids across destroy and create', () => {
  it('are freed on destroy and reused, with the same filter handles, by the next container', async () => {
    const before = await flowTableNodes();
    const c1Handles = before
      .filter((f) => f.classid === 0x10003)
      .map((f) => f.handle)
      .sort();
    expect(await iso.destroy('c1')).toBe(true);
    let nodes = await flowTableNodes();
    expect(nodes.filter((f) => f.classid === 0x10003)).toEqual([]);
    expect(tcRun(lab.lab.host, 'filter', 'show', 'dev', 'eth0', 'parent', '1:')).not.toContain('flowid 1:3 ');
    expect(coveredRanges(nodes, 4)).toEqual(portsOf(containers.c2!));
    // c3 takes c1's ports, ephemeral block and flow: the same filters come back.
    containers.c3 = await iso.create({ id: 'c3', ports: '[31000-31009]' });
    nodes = await flowTableNodes();
    expect(coveredRanges(nodes, 3)).toEqual(portsOf(containers.c3));
    expect(
      nodes
        .filter((f) => f.classid === 0x10003)
        .map((f) => f.handle)
        .sort(),
    ).toEqual(c1Handles);
    containers.c4 = await iso.create({ id: 'c4', ports: '[31020-31029]' });
    nodes = await flowTableNodes();
    expect(coveredRanges(nodes, 5)).toEqual(portsOf(containers.c4));
  });

  it("the reused flow carries the new container's traffic", async () => {
    const udp = await listen(lab.lab.world, 'udp', SINK + 2);
    try {
      const h0 = hits();
      for (let i = 0; i < 3; i++) expect(send(containers.c3!.netns, 'udp', GATEWAY, SINK + 2, `c3-${i}\n`)).toBe('ok');
      expect(await until(() => (udp.received().match(/^c3-\d$/gm) ?? []).length >= 3)).toBe(true);
      const h1 = hits();
      expect(successesOf(h1, '1:3') - successesOf(h0, '1:3')).toBeGreaterThanOrEqual(3);
      for (const flow of ['1:4', '1:5']) expect(successesOf(h1, flow), flow).toBe(successesOf(h0, flow));
    } finally {
      udp.stop();
    }
  });

  it('the lowest free flow is handed out first', async () => {
    await iso.destroy('c2');
    await iso.destroy('c3');
    containers.c5 = await iso.create({ id: 'c5', ports: '[31030-31039]' });
    const nodes = await flowTableNodes();
    expect(coveredRanges(nodes, 3)).toEqual(portsOf(containers.c5));
    expect(new Set(nodes.map((f) => formatTcHandle(f.classid!)))).toEqual(new Set(['1:3', '1:5']));
  });
});

describe('crash and cleanup', () => {
  it('a crash in the middle of an update leaves no stray flow filter after recover, and the ports can be used again', async () => {
    // c5 grows from [31030-31039] to [31030-31049]; the child is killed once the new filters exist.
    const child = join(import.meta.dirname, 'update-crash-child.ts');
    const r = spawnSync(process.execPath, ['--import', 'tsx', child, lab.lab.host, lab.workDir, 'c5', '[31030-31049]', JSON.stringify(FLAGS)], {
      env: { ...process.env, PORTMAP_ISOLATOR_CRASH_AT: 'add' },
      timeout: 120_000,
      encoding: 'utf8',
    });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    const report = await iso.recover();
    expect(report.errors).toEqual([]);
    expect(report.recovered).toContain('c5');
    expect((await iso.list()).find((c) => c.id === 'c5')!.ports).toEqual([[31030, 31039]]);
    // What the kernel classifies into c5's flow is exactly what c5 owns.
    const nodes = await flowTableNodes();
    expect(coveredRanges(nodes, 3)).toEqual(portsOf({ ...containers.c5!, ports: [[31030, 31039]] }));
    // The ports the interrupted update wanted go to another container, into that one's flow.
    const c6 = await iso.create({ id: 'c6', ports: '[31040-31049]' });
    const flow6 = [
      ...new Set(
        (await flowTableNodes()).filter((f) => coveredRanges([f], f.classid! & 0xffff).some(([b]) => b === 31040)).map((f) => formatTcHandle(f.classid!)),
      ),
    ];
    expect(flow6).toHaveLength(1);
    const server = await listen(c6.netns, 'tcp', 31045);
    try {
      const h0 = hits();
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31045, 'to-c6\n')).toBe('ok');
      expect(await until(() => server.received().includes('to-c6'))).toBe(true);
      expect(successesOf(hits(), flow6[0]!) - successesOf(h0, flow6[0]!)).toBeGreaterThanOrEqual(2);
    } finally {
      server.stop();
    }
  });

  it('cleanup removes the fq_codel qdisc and every classifier from eth0', async () => {
    const r = await iso.cleanup();
    expect(r.errors).toEqual([]);
    expect(tcJson<any[]>(lab.lab.host, 'qdisc', 'show', 'dev', 'eth0').some((q) => q.kind === 'fq_codel')).toBe(false);
    expect(await tc.listFilters(eth0, '1:').catch(() => [])).toEqual([]);
    expect(tcRun(lab.lab.host, 'filter', 'show', 'dev', 'eth0')).toBe('');
  });
});

describe('an egress qdisc that was already there', () => {
  it('an fq_codel at the root of eth0 is reused as it is, and cleanup leaves it (without our classifiers)', async () => {
    const other = new IsolatorLab();
    try {
      quietIpv6(other.lab.host, 'eth0');
      execFileSync('tc', ['-n', other.lab.host, 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'fq_codel', 'flows', '2048']);
      const iso2 = await other.open(FLAGS);
      await iso2.create({ id: 'a', ports: '[31000-31009]' });
      const fq = () => tcJson<any[]>(other.lab.host, 'qdisc', 'show', 'dev', 'eth0').find((q) => q.kind === 'fq_codel');
      expect(fq()).toMatchObject({ handle: '1:', root: true, options: { flows: 2048 } });
      expect(filterHits(other.lab.host, 'eth0', '1:').some((h) => h.flowid === '1:3')).toBe(true);
      const r = await iso2.cleanup();
      expect(r.errors).toEqual([]);
      expect(fq()).toMatchObject({ handle: '1:', root: true, options: { flows: 2048 } });
      expect(tcRun(other.lab.host, 'filter', 'show', 'dev', 'eth0', 'parent', '1:')).toBe('');
    } finally {
      await other.destroy();
    }
  });

  it('another kind of qdisc at the root of eth0 is refused, naming eth0, and keeps no classifier of ours', async () => {
    const other = new IsolatorLab();
    try {
      execFileSync('tc', ['-n', other.lab.host, 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'htb', 'default', '1']);
      const iso2 = await other.open(FLAGS);
      const err = await iso2.create({ id: 'a', ports: '[31000-31009]' }).then(
        () => undefined,
        (e: Error) => e,
      );
      const left = tcRun(other.lab.host, 'filter', 'show', 'dev', 'eth0', 'parent', '1:');
      expect(err, `create succeeded with an HTB 1: at the root of eth0, and hung these classifiers on it:\n${left}`).toBeInstanceOf(Error);
      expect(err!.message).toMatch(/eth0/);
      expect(left).toBe('');
      expect(tcJson<any[]>(other.lab.host, 'qdisc', 'show', 'dev', 'eth0').find((q) => q.root)).toMatchObject({ kind: 'htb', handle: '1:' });
    } finally {
      await other.destroy();
    }
  });

  it('with --egress_flow_classifier_parent=1:1 the fq_codel is 2: under that class, and the flows are 2:N', async () => {
    const other = new IsolatorLab();
    try {
      quietIpv6(other.lab.host, 'eth0');
      execFileSync('tc', ['-n', other.lab.host, 'qdisc', 'add', 'dev', 'eth0', 'root', 'handle', '1:', 'htb', 'default', '1']);
      execFileSync('tc', ['-n', other.lab.host, 'class', 'add', 'dev', 'eth0', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '100mbit']);
      const iso2 = await other.open({ ...FLAGS, egress_flow_classifier_parent: '1:1' });
      const a = await iso2.create({ id: 'a', ports: '[31000-31009]' });
      expect(tcJson<any[]>(other.lab.host, 'qdisc', 'show', 'dev', 'eth0').find((q) => q.kind === 'fq_codel')).toMatchObject({ handle: '2:', parent: '1:1' });
      const flows = () => filterHits(other.lab.host, 'eth0', '2:');
      expect(
        flows()
          .filter((h) => h.pref === 1026)
          .map((h) => h.flowid),
      ).toEqual(['2:1']);
      const udp = await listen(other.lab.world, 'udp', SINK);
      try {
        const h0 = flows();
        for (let i = 0; i < 3; i++) expect(send(a.netns, 'udp', GATEWAY, SINK, `a${i}\n`)).toBe('ok');
        expect(await until(() => (udp.received().match(/^a\d$/gm) ?? []).length >= 3)).toBe(true);
        expect(successesOf(flows(), '2:3') - successesOf(h0, '2:3')).toBeGreaterThanOrEqual(3);
      } finally {
        udp.stop();
      }
      expect((await iso2.cleanup()).errors).toEqual([]);
      const left = tcJson<any[]>(other.lab.host, 'qdisc', 'show', 'dev', 'eth0');
      expect(left.some((q) => q.kind === 'fq_codel')).toBe(false);
      expect(left.find((q) => q.root)).toMatchObject({ kind: 'htb', handle: '1:' });
    } finally {
      stopAllTraffic();
      await other.destroy();
    }
  });
});
