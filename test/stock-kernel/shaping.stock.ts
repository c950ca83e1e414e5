/**
 * The isolator's full topology on a kernel with fq_codel: egress and ingress limits shape with
 * HTB and an fq_codel leaf (Mesos' bloat_reduction), traffic flows both ways through it, and the
 * statistics carry bw_limit and bloat_reduction (egress) and their ingress_ twins, equal to what
 * `tc -j -s` counts for those qdiscs.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkSession, Netns } from '../../src/netlink/index.js';
import { RTM_NAMES } from '../../src/rtnl/constants.js';
import { Tc, formatTcHandle } from '../../src/tc/index.js';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { tcJson, tcRun } from '../tc/helpers.js';
import { assertFqCodel, mesosOfTc, tcAt } from './helpers.js';
import { FIXTURE, GATEWAY, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const LIMIT = 1024 * 1024; // 1MB/s: shaped, yet fast enough for the transfers below

let lab: IsolatorLab;
let iso: Isolator;
let c: ContainerInfo;
let cEth0 = 0;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  assertFqCodel(lab.lab.host);
  iso = await lab.open({ ...FIXTURE, egress_rate_limit_per_container: '1MB', ingress_rate_limit_per_container: '1MB', egress_shaping_placement: 'container' });
  c = await iso.create({ id: 'c1', ports: '[31000-31009]' });
  cEth0 = JSON.parse(execFileSync('nsenter', [`--net=${c.netns}`, 'ip', '-j', 'link', 'show', 'eth0'], { encoding: 'utf8' }))[0].ifindex;
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

/** Qdiscs of the container's eth0, as tc shows them. */
const containerQdiscs = () => JSON.parse(tcAt(c.netns, '-j', '-s', 'qdisc', 'show', 'dev', 'eth0')) as any[];
const vethQdiscs = () => tcJson<any[]>(lab.lab.host, '-s', 'qdisc', 'show', 'dev', c.veth);

async function withTc<T>(netns: Netns, fn: (tc: Tc) => Promise<T>): Promise<T> {
  const s = NetlinkSession.open({ netns, typeNames: RTM_NAMES });
  try {
    return await fn(new Tc(s));
  } finally {
    s.close();
  }
}

describe('shaping with the fq_codel leaf (bloat_reduction)', () => {
  it("egress: the container's eth0 has HTB 1: (default 1:1), class 1:1 at the limit and an fq_codel leaf under it, as the SDK and tc list them", async () => {
    const t = containerQdiscs();
    const htb = t.find((q) => q.kind === 'htb');
    const fq = t.find((q) => q.kind === 'fq_codel');
    expect(htb).toMatchObject({ handle: '1:', root: true, options: { default: '0x1' } });
    expect(fq).toMatchObject({ parent: '1:1' });
    // tc 6.1 prints HTB classes as text only.
    expect(tcAt(c.netns, 'class', 'show', 'dev', 'eth0')).toContain(`class htb 1:1 root leaf ${fq.handle} `);
    const ours = await withTc(Netns.fromPath(c.netns), (tc) => tc.listQdiscs(cEth0));
    const leaf = ours.find((q) => q.kind === 'fq_codel')!;
    expect(formatTcHandle(leaf.handle)).toBe(fq.handle);
    expect(formatTcHandle(leaf.parent)).toBe('1:1');
    expect({
      limit: leaf.limitPackets,
      flows: leaf.flows,
      quantum: leaf.quantumBytes,
      target: leaf.targetUs,
      interval: leaf.intervalUs,
      memory_limit: leaf.memoryLimitBytes,
      ecn: leaf.ecn,
      drop_batch: leaf.dropBatch,
    }).toEqual(fq.options);
    const rate = await withTc(Netns.fromPath(c.netns), (tc) => tc.getClass(cEth0, '1:1'));
    expect(rate).toMatchObject({ rateBytesPerSec: LIMIT });
  });

  it('ingress: the host veth has the same HTB + fq_codel shape at the ingress limit', async () => {
    const t = vethQdiscs();
    const fq = t.find((q) => q.kind === 'fq_codel');
    expect(t.find((q) => q.kind === 'htb')).toMatchObject({ handle: '1:', root: true });
    expect(fq).toMatchObject({ parent: '1:1' });
    expect(tcRun(lab.lab.host, 'class', 'show', 'dev', c.veth)).toContain(`class htb 1:1 root leaf ${fq.handle} `);
    const vethIndex = JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show', c.veth], { encoding: 'utf8' }))[0].ifindex as number;
    const [qdiscs, cls] = await withTc(
      Netns.fromName(lab.lab.host),
      async (tc) => [await tc.listQdiscs(vethIndex), await tc.getClass(vethIndex, '1:1')] as const,
    );
    const leaf = qdiscs.find((q) => q.kind === 'fq_codel')!;
    expect(formatTcHandle(leaf.handle)).toBe(fq.handle);
    expect(formatTcHandle(leaf.parent)).toBe('1:1');
    expect(cls).toMatchObject({ rateBytesPerSec: LIMIT });
  });

  it('traffic passes both ways through the leaves: world → container port, container → world', async () => {
    const inbound = await listen(c.netns, 'tcp', 31001);
    const outbound = await listen(lab.lab.world, 'tcp', 7200);
    const payload = 'y'.repeat(20_000) + '\n';
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31001, payload, { timeoutMs: 20_000 })).toBe('ok');
    expect(send(c.netns, 'tcp', GATEWAY, 7200, payload, { timeoutMs: 20_000 })).toBe('ok');
    expect(await until(() => inbound.received().length >= payload.length && outbound.received().length >= payload.length, 20_000)).toBe(true);
    inbound.stop();
    outbound.stop();
    const egressLeaf = containerQdiscs().find((q) => q.kind === 'fq_codel');
    const ingressLeaf = vethQdiscs().find((q) => q.kind === 'fq_codel');
    expect(egressLeaf.bytes).toBeGreaterThan(20_000);
    expect(ingressLeaf.bytes).toBeGreaterThan(20_000);
  });

  it('statistics: net_traffic_control_statistics has bw_limit and bloat_reduction (and ingress_*), as tc counts them', async () => {
    // Read tc, then the statistics, then tc again: counters only grow, so ours lie in between.
    const before = { egress: containerQdiscs(), ingress: vethQdiscs() };
    const [s] = await iso.stats('c1');
    const after = { egress: containerQdiscs(), ingress: vethQdiscs() };
    const st = s!.statistics as Record<string, any>;
    expect(st.net_tx_rate_limit).toBe(LIMIT);
    expect(st.net_rx_rate_limit).toBe(LIMIT);
    const entries = st.net_traffic_control_statistics as Array<Record<string, number> & { id: string }>;
    expect(entries.map((e) => e.id)).toEqual(['bw_limit', 'bloat_reduction', 'ingress_bw_limit', 'ingress_bloat_reduction']);
    const pick = (side: 'egress' | 'ingress', when: typeof before, kind: string) => mesosOfTc(when[side].find((q: any) => q.kind === kind));
    for (const e of entries) {
      const side = e.id.startsWith('ingress_') ? 'ingress' : 'egress';
      const kind = e.id.endsWith('bw_limit') ? 'htb' : 'fq_codel';
      const lo = pick(side, before, kind);
      const hi = pick(side, after, kind);
      expect(Object.keys(e).sort()).toEqual(['backlog', 'bytes', 'drops', 'id', 'overlimits', 'packets', 'qlen', 'ratebps', 'ratepps', 'requeues']);
      for (const k of ['bytes', 'packets', 'drops', 'overlimits', 'requeues'] as const) {
        expect(e[k], `${e.id}.${k}`).toBeGreaterThanOrEqual(lo[k]);
        expect(e[k], `${e.id}.${k}`).toBeLessThanOrEqual(hi[k]);
      }
      expect(e.bytes, e.id).toBeGreaterThan(20_000);
    }
    // One class, default 1:1: everything HTB sent went through its fq_codel leaf.
    const byId = Object.fromEntries(entries.map((e) => [e.id, e]));
    expect(byId.bloat_reduction!.packets).toBe(byId.bw_limit!.packets);
    expect(byId.ingress_bloat_reduction!.packets).toBe(byId.ingress_bw_limit!.packets);
  });
});
