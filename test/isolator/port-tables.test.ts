/**
 * The two levels of the host's port tables (plan.ts), proven with real TCP and UDP traffic from
 * the world to the host IP: a 256-port block steered from level 1, two containers sharing one
 * 4-port level-2 bucket, and a free (managed) port of that bucket dropped and counted, never
 * reaching the host or a container (data path v2; Mesos left it to the host). Also: the filters that
 * send to one device share one mirred action (issue #18).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

let lab: IsolatorLab;
let iso: Isolator;
let a: ContainerInfo;
let b: ContainerInfo;
let big: ContainerInfo;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open();
  a = await iso.create({ id: 'a', ports: '[31000-31001]' }); // 0x7918–0x7919
  b = await iso.create({ id: 'b', ports: '[31002-31002]' }); // 0x791a: the same level-2 bucket 279:6: (31000–31003)
  big = await iso.create({ id: 'big', ports: '[31232-31487]' }); // 0x7a00–0x7aff: level-1 bucket 100:7a:
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

describe.each(['tcp', 'udp'] as const)('%s through both levels', (proto) => {
  it('each port reaches its owner, and a free port of a shared bucket is dropped and counted', async () => {
    const owners: Array<[ContainerInfo, number]> = [
      [a, 31001],
      [b, 31002],
      [big, 31300],
    ];
    const listeners = await Promise.all(owners.map(([c, port]) => listen(c.netns, proto, port)));
    // The same ports in the wrong containers, and the free port on the host and in a container.
    const decoys = [
      await listen(b.netns, proto, 31001),
      await listen(a.netns, proto, 31002),
      await listen(a.netns, proto, 31300),
      await listen(a.netns, proto, 31003),
      await listen(lab.lab.host, proto, 31003),
    ];
    const dropped = (await iso.hostCounters()).unheldPortDroppedPackets;
    try {
      for (const [, port] of owners) send(lab.lab.world, proto, HOST_IP, port, `to-${port}\n`);
      send(lab.lab.world, proto, HOST_IP, 31003, 'to-nobody\n', { timeoutMs: 1000 });
      expect(await until(() => owners.every(([, port], i) => listeners[i]!.received().includes(`to-${port}`)))).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      for (const d of decoys) expect(d.received()).toBe('');
      expect((await iso.hostCounters()).unheldPortDroppedPackets).toBeGreaterThan(dropped);
    } finally {
      for (const l of [...listeners, ...decoys]) l.stop();
    }
  });
});

interface MirredAction {
  mirred_action: 'redirect' | 'mirror';
  to_dev: string;
  index: number;
  bind: number;
}
/** The mirred actions of a namespace (`tc -j actions ls`), run through `prefix` (ip -n or nsenter). */
const mirredActions = (prefix: string[]): MirredAction[] =>
  (
    JSON.parse(execFileSync(prefix[0]!, [...prefix.slice(1), 'tc', '-j', 'actions', 'ls', 'action', 'mirred'], { encoding: 'utf8' })) as Array<{
      actions?: MirredAction[];
    }>
  ).flatMap((x) => x.actions ?? []);

describe('shared mirred actions', () => {
  it('the host holds one redirect per target device and one mirror per veth, each bound by every filter that uses it', () => {
    const host = mirredActions(['ip', 'netns', 'exec', lab.lab.host]);
    const veths = [a.veth, b.veth, big.veth].sort();
    const redirects = host.filter((x) => x.mirred_action === 'redirect');
    expect(redirects.map((x) => x.to_dev).sort()).toEqual(['eth0', 'lo', ...veths].sort());
    // A veth's redirect: its eth0 and lo port filters; eth0's and lo's: every veth's filters.
    for (const r of redirects) expect(r.bind).toBeGreaterThanOrEqual(2);
    // One mirror per veth (the chunk's last one continues), bound by the ARP and the ICMP chunk;
    // and one to the echo fan-out, bound by eth0's copies of echo replies and of ARP replies.
    const mirrors = host.filter((x) => x.mirred_action === 'mirror');
    expect(mirrors.map((x) => x.to_dev).sort()).toEqual(['pmi-echo', ...veths].sort());
    for (const m of mirrors) expect(m.bind).toBe(2);
  });
  it('a container holds none, nor any qdisc: routing rules keep what it sends to itself, route_localnet takes 127.0.0.1 on eth0', () => {
    const inA = (...args: string[]) => execFileSync('nsenter', [`--net=${a.netns}`, ...args], { encoding: 'utf8' });
    expect(mirredActions(['nsenter', `--net=${a.netns}`])).toEqual([]);
    expect(inA('tc', 'qdisc', 'show')).not.toMatch(/ingress|clsact|u32/);
    expect(inA('tc', 'filter', 'show', 'dev', 'lo', 'ingress')).toBe('');
  });
});
