/**
 * --egress_unique_flow_per_container on a dual-stack host (--ipv6) and a kernel with fq_codel:
 * a container's IPv6 TCP and UDP go into its own flow through the same flow table as its IPv4
 * (the IPv6 links move u32's offset on), ICMPv6 into flow 1:2; counted by the filters' hit
 * counters as the lab host's admin reads them (`tc -s filter show dev eth0 parent 1:`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { PRIO } from '../../src/isolator/plan.js';
import { FIXTURE, GATEWAY6, HOST_IP6, IsolatorLab, eventually, sweepStaleLabs } from '../../src/lab/index.js';
import { datapath6 } from '../helpers/probe.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { assertFqCodel, filterHits, successesOf } from './helpers.js';

let lab: IsolatorLab;
let iso: Isolator;
let c1: ContainerInfo;
let c2: ContainerInfo;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab(undefined, { ipv6: true });
  assertFqCodel(lab.lab.host);
  iso = await lab.open({ ...FIXTURE, egress_unique_flow_per_container: true });
  c1 = await iso.create({ id: 'c1', ports: '[31000-31009]' });
  c2 = await iso.create({ id: 'c2', ports: '[31010-31019]' });
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

const hits = () => filterHits(lab.lab.host, 'eth0', '1:');

describe('unique flows with IPv6', () => {
  it("a container's IPv6 TCP and UDP go into its own flow, and arrive; its ICMPv6 into 1:2", async () => {
    const udp = await listen(lab.lab.world, 'udp', 7400, { ipv6: true });
    const tcp = await listen(lab.lab.world, 'tcp', 7401, { ipv6: true });
    try {
      const h0 = hits();
      for (let i = 0; i < 4; i++) expect(send(c1.netns, 'udp', GATEWAY6, 7400, `u${i}\n`)).toBe('ok');
      expect(send(c1.netns, 'tcp', GATEWAY6, 7401, 'tcp')).toBe('ok');
      await eventually(() => expect((udp.received().match(/^u\d$/gm) ?? []).length).toBe(4));
      await eventually(() => expect(tcp.received()).toBe('tcp'));
      const h1 = hits();
      expect(successesOf(h1, '1:3') - successesOf(h0, '1:3')).toBeGreaterThanOrEqual(4 + 3);
      expect(successesOf(h1, '1:4')).toBe(successesOf(h0, '1:4'));
      expect(datapath6(c2.netns, 'ping6', GATEWAY6, 2, 100, 2000, 200)).toMatchObject({ received: 2 });
      const h2 = hits();
      // The ICMPv6 classifier's own counter (its priority, 515), not ARP's or ICMP's into the same flow.
      const icmp6 = (h: typeof h1) =>
        successesOf(
          h.filter((x) => x.pref === PRIO.IP6_ICMP),
          '1:2',
        );
      expect(icmp6(h2) - icmp6(h1)).toBeGreaterThanOrEqual(2);
      expect(successesOf(h2, '1:4')).toBe(successesOf(h1, '1:4'));
      // And the world reaches the container over IPv6 through the port tables as ever.
      const inC2 = await listen(c2.netns, 'tcp', 31011, { ipv6: true });
      expect(send(lab.lab.world, 'tcp', HOST_IP6, 31011, 'in')).toBe('ok');
      await eventually(() => expect(inC2.received()).toBe('in'));
      inC2.stop();
    } finally {
      udp.stop();
      tcp.stop();
    }
  });
});
