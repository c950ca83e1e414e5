/**
 * Egress shaped on the host (egress_shaping_placement=host, the default) on a kernel with
 * fq_codel: the container's class on the shaper has an fq_codel leaf, nothing of its shaping is in
 * its namespace, traffic flows through it to the world and the host, and bw_limit and
 * bloat_reduction are what `tc -j -s` counts for that class and that leaf.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { tcJson } from '../tc/helpers.js';
import { assertFqCodel, mesosOfTc, tcAt } from './helpers.js';
import { FIXTURE, GATEWAY, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

let lab: IsolatorLab;
let iso: Isolator;
let c: ContainerInfo;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  assertFqCodel(lab.lab.host);
  iso = await lab.open({ ...FIXTURE, egress_rate_limit_per_container: '1MB' });
  c = await iso.create({ id: 'c1', ports: '[31000-31009]' });
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

/** Class 1:2 of the shaper as `tc -s class show` prints it (tc has no JSON for HTB classes): rate and counters. */
function shaperClass(): { rate: string; bytes: number; packets: number; drops: number; overlimits: number } | undefined {
  const text = execFileSync('tc', ['-n', lab.lab.host, '-s', 'class', 'show', 'dev', 'pmi-shape'], { encoding: 'utf8' });
  const m = /class htb 1:2 .*?rate (\S+) .*\n Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(text);
  return m ? { rate: m[1]!, bytes: Number(m[2]), packets: Number(m[3]), drops: Number(m[4]), overlimits: Number(m[5]) } : undefined;
}
const shaperLeaf = () => tcJson<any[]>(lab.lab.host, '-s', 'qdisc', 'show', 'dev', 'pmi-shape').find((q) => q.kind === 'fq_codel' && q.parent === '1:2');

describe('egress shaped on the host, with the fq_codel leaf', () => {
  it("has the container's class and leaf on the shaper, and no shaping in its namespace", () => {
    expect(shaperClass()).toBeDefined();
    expect(shaperLeaf()).toBeDefined();
    const inside = JSON.parse(tcAt(c.netns, '-j', 'qdisc', 'show')) as Array<{ kind: string }>;
    expect(inside.filter((q) => q.kind === 'htb' || q.kind === 'fq_codel')).toEqual([]);
  });

  it('carries traffic to the world and the host through the class, and bw_limit / bloat_reduction count it as tc does', async () => {
    for (const [ns, addr, port] of [
      [lab.lab.world, GATEWAY, 7200],
      [lab.lab.host, HOST_IP, 7201],
    ] as const) {
      const l = await listen(ns, 'tcp', port);
      expect(send(c.netns, 'tcp', addr, port, 'x'.repeat(30_000) + '\n', { timeoutMs: 20_000 })).toBe('ok');
      expect(await until(() => l.received().length > 30_000, 20_000)).toBe(true);
      l.stop();
    }
    const before = { cls: shaperClass()!, leaf: mesosOfTc(shaperLeaf()) };
    const [s] = await iso.stats('c1');
    const after = { cls: shaperClass()!, leaf: mesosOfTc(shaperLeaf()) };
    const entries = s!.statistics.net_traffic_control_statistics as Array<Record<string, number> & { id: string }>;
    expect(entries.map((e) => e.id)).toEqual(['bw_limit', 'bloat_reduction']);
    for (const e of entries) {
      const [lo, hi] = e.id === 'bw_limit' ? [before.cls, after.cls] : [before.leaf, after.leaf];
      for (const k of ['bytes', 'packets', 'drops', 'overlimits'] as const) {
        expect(e[k], `${e.id}.${k}`).toBeGreaterThanOrEqual(lo[k]);
        expect(e[k], `${e.id}.${k}`).toBeLessThanOrEqual(hi[k]);
      }
      expect(e.bytes, e.id).toBeGreaterThan(60_000);
    }
  });

  it('removes the class with the container, and the shaper with cleanup', async () => {
    await iso.destroy('c1');
    expect(shaperClass()).toBeUndefined();
    await iso.cleanup();
    expect(() => execFileSync('ip', ['-n', lab.lab.host, 'link', 'show', 'pmi-shape'], { stdio: 'pipe' })).toThrow();
  });
});
