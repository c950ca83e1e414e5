/**
 * Isolation proven with real TCP/UDP/ICMP/ARP traffic in a lab (Mesos §9.1 and the gaps of §9.3):
 * the lab's world plays the network and the gateway; two containers share the host's IP.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { arpResolve, icmpEcho } from '../helpers/probe.js';
import { listen, peerPortServer, send, stopAllTraffic } from '../helpers/traffic.js';
import { GATEWAY, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

/** Packets a container's eth0 has sent: what stays inside it does not count here. */
const eth0Sent = (netns: string): number =>
  (
    JSON.parse(execFileSync('nsenter', [`--net=${netns}`, 'ip', '-j', '-s', 'link', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{
      stats64: { tx: { packets: number } };
    }>
  )[0]!.stats64.tx.packets;

/** The TCP port ranges a container's rules keep in it (`iif lo ipproto tcp dport … lookup local`, as `ip -j rule` lists them). */
const ownTcpPorts = (netns: string): Array<[number, number]> =>
  (
    JSON.parse(execFileSync('nsenter', [`--net=${netns}`, 'ip', '-j', 'rule', 'show'], { encoding: 'utf8' })) as Array<{
      iif?: string;
      ipproto?: string;
      table: string;
      dport?: number;
      dport_start?: number;
      dport_end?: number;
    }>
  )
    .filter((r) => r.iif === 'lo' && r.ipproto === 'tcp' && r.table === 'local')
    .map((r) => [r.dport ?? r.dport_start!, r.dport ?? r.dport_end!]);

const VALID = 31001;
const INVALID = 32502;

let lab: IsolatorLab;
let iso: Isolator;
let c1: ContainerInfo;
let c2: ContainerInfo;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open();
  c1 = await iso.create({ id: 'c1', ports: '[31000-31499]' });
  c2 = await iso.create({ id: 'c2', ports: '[31500-32000]' });
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

describe.each(['tcp', 'udp'] as const)('%s steering', (proto) => {
  it('container to container: in-range data arrives via 127.0.0.1 and the host IP, out-of-range never does', async () => {
    const valid = await listen(c1.netns, proto, VALID);
    const invalid = await listen(c1.netns, proto, INVALID);
    try {
      send(c2.netns, proto, '127.0.0.1', VALID, 'hello1\n');
      send(c2.netns, proto, '127.0.0.1', INVALID, 'hello2\n');
      send(c2.netns, proto, HOST_IP, VALID, 'hello3\n');
      send(c2.netns, proto, HOST_IP, INVALID, 'hello4\n');
      expect(await until(() => valid.received().includes('hello1') && valid.received().includes('hello3'))).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(valid.received().split('\n').filter(Boolean).sort()).toEqual(['hello1', 'hello3']);
      expect(invalid.received()).toBe('');
    } finally {
      valid.stop();
      invalid.stop();
    }
  });

  it("a container to itself: its own ports via 127.0.0.1 and the host IP stay in it, other ports there are the host's", async () => {
    const own = await listen(c1.netns, proto, VALID);
    const decoy = await listen(c1.netns, proto, INVALID);
    const onHost = await listen(lab.lab.host, proto, INVALID);
    try {
      const all = (l: { received(): string }, ms: string[]) => ms.every((m) => l.received().includes(m));
      const before = eth0Sent(c1.netns);
      for (let i = 0; i < 3; i++) {
        send(c1.netns, proto, '127.0.0.1', VALID, `self1-${i}\n`);
        send(c1.netns, proto, HOST_IP, VALID, `self2-${i}\n`);
      }
      expect(await until(() => all(own, ['self1-2', 'self2-2']))).toBe(true);
      // Round through the host they would arrive too: what shows they stayed is its eth0 sending none of them (≥ 6 packets if they left).
      expect(eth0Sent(c1.netns) - before).toBeLessThanOrEqual(1);
      send(c1.netns, proto, '127.0.0.1', INVALID, 'host1\n');
      send(c1.netns, proto, HOST_IP, INVALID, 'host2\n');
      expect(await until(() => all(onHost, ['host1', 'host2']))).toBe(true);
      expect(eth0Sent(c1.netns)).toBeGreaterThanOrEqual(before + 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(decoy.received()).toBe('');
    } finally {
      own.stop();
      decoy.stop();
      onHost.stop();
    }
  });

  it("host to container: in-range arrives, out-of-range is the host stack's", async () => {
    const valid = await listen(c1.netns, proto, VALID);
    const invalid = await listen(c1.netns, proto, INVALID);
    try {
      expect(send(lab.lab.host, proto, '127.0.0.1', VALID, 'hello1\n')).toBe('ok');
      expect(send(lab.lab.host, proto, HOST_IP, VALID, 'hello3\n')).toBe('ok');
      const refused = send(lab.lab.host, proto, HOST_IP, INVALID, 'hello4\n');
      if (proto === 'tcp') expect(refused).toMatch(/^fail: .*Connection refused/);
      expect(await until(() => valid.received().includes('hello1') && valid.received().includes('hello3'))).toBe(true);
      await new Promise((r) => setTimeout(r, 200));
      expect(invalid.received()).toBe('');
    } finally {
      valid.stop();
      invalid.stop();
    }
  });

  it('world to the host IP: an in-range port reaches the container, an out-of-range one reaches the host', async () => {
    const inContainer = await listen(c2.netns, proto, 31600);
    const onHost = await listen(lab.lab.host, proto, INVALID);
    const decoy = await listen(c2.netns, proto, INVALID);
    try {
      send(lab.lab.world, proto, HOST_IP, 31600, 'to-container\n');
      send(lab.lab.world, proto, HOST_IP, INVALID, 'to-host\n');
      expect(await until(() => inContainer.received().includes('to-container') && onHost.received().includes('to-host'))).toBe(true);
      expect(decoy.received()).toBe('');
    } finally {
      inContainer.stop();
      onHost.stop();
      decoy.stop();
    }
  });

  it("a container's outgoing traffic uses source ports of its own ephemeral block, and answers come back", async () => {
    const server = await peerPortServer(lab.lab.world, proto, 7000);
    try {
      for (const c of [c1, c2]) {
        // UDP has no retransmission: on a loaded machine a datagram or its answer may be late; ask again.
        let reply = '';
        for (let i = 0; i < 3 && !/^\d+$/.test(reply); i++) reply = send(c.netns, proto, GATEWAY, 7000, 'x\n', { reply: true });
        const port = Number(reply);
        expect(port).toBeGreaterThanOrEqual(c.ephemeral_ports.begin);
        expect(port).toBeLessThanOrEqual(c.ephemeral_ports.end);
      }
    } finally {
      server.stop();
    }
  });
});

it('a container sending from a source port outside its ranges gets nothing through', async () => {
  const server = await listen(lab.lab.world, 'tcp', 7001);
  try {
    expect(send(c1.netns, 'tcp', GATEWAY, 7001, 'own\n', { sourcePort: 31010 })).toBe('ok');
    expect(send(c1.netns, 'tcp', GATEWAY, 7001, 'stolen\n', { sourcePort: 31510 })).toMatch(/^fail/); // c2's port
    expect(send(c1.netns, 'tcp', GATEWAY, 7001, 'unowned\n', { sourcePort: 45000 })).toMatch(/^fail/);
    expect(await until(() => server.received().includes('own'))).toBe(true);
    expect(server.received()).not.toMatch(/stolen|unowned/);
  } finally {
    server.stop();
  }
});

describe('ICMP and ARP', () => {
  it('a container pings the gateway, 127.0.0.1 and the host IP (itself)', () => {
    for (const addr of [GATEWAY, '127.0.0.1', HOST_IP]) expect(icmpEcho(c1.netns, addr), addr).toEqual({ sent: 1, received: 1, duplicates: 0 });
  });
  it('a container resolves the gateway with ARP', () => {
    expect(arpResolve(c2.netns, 'eth0', GATEWAY).replies).toBe(1);
  });
  it('the world pings the host IP and gets one answer, from the host (Mesos §9.3 had one more from each container)', () => {
    // Data path v2: echo requests are the host's; only echo replies are copied to containers.
    expect(icmpEcho(lab.lab.world, HOST_IP, { dupWaitMs: 1000 })).toEqual({ sent: 1, received: 1, duplicates: 0 });
  });
});

describe('the container side', () => {
  it("writes the ephemeral block to the container's ip_local_port_range and shares the host's IP and MAC", () => {
    const range = execFileSync('nsenter', [`--net=${c1.netns}`, 'cat', '/proc/sys/net/ipv4/ip_local_port_range'], { encoding: 'utf8' })
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(range).toEqual([c1.ephemeral_ports.begin, c1.ephemeral_ports.end]);
    const addr = JSON.parse(execFileSync('nsenter', [`--net=${c1.netns}`, 'ip', '-j', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }))[0];
    const hostEth0 = JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show', 'eth0'], { encoding: 'utf8' }))[0];
    expect(addr.addr_info.find((a: any) => a.family === 'inet').local).toBe(HOST_IP);
    expect(addr.address).toBe(hostEth0.address);
    expect(addr.mtu).toBe(hostEth0.mtu);
    const route = JSON.parse(execFileSync('nsenter', [`--net=${c1.netns}`, 'ip', '-j', 'route', 'show', 'default'], { encoding: 'utf8' }))[0];
    expect(route.gateway).toBe(GATEWAY);
  });
  it('gives the two containers disjoint, aligned ephemeral blocks from the pool', () => {
    expect(c1.ephemeral_ports).toEqual({ begin: 30016, end: 30031 });
    expect(c2.ephemeral_ports).toEqual({ begin: 30032, end: 30047 });
  });
});

describe('statistics', () => {
  it('counts traffic on the veth, in the Mesos shape', async () => {
    const [before] = await iso.stats('c1');
    const l = await listen(c1.netns, 'tcp', 31002);
    try {
      for (let i = 0; i < 3; i++) send(lab.lab.world, 'tcp', HOST_IP, 31002, 'x'.repeat(1000) + '\n');
      await until(() => l.received().length >= 3000);
    } finally {
      l.stop();
    }
    const [after] = await iso.stats('c1');
    const b = before!.statistics as Record<string, any>;
    const a = after!.statistics as Record<string, any>;
    expect(after!.container_id).toBe('c1');
    expect(a.net_rx_bytes - b.net_rx_bytes).toBeGreaterThan(3000);
    expect(a.net_tx_packets).toBeGreaterThan(b.net_tx_packets);
    expect(a.net_ephemeral_ports).toEqual(c1.ephemeral_ports);
    expect(a.timestamp).toBeGreaterThan(b.timestamp);
    const all = await iso.stats();
    expect(all.map((s) => s.container_id).sort()).toEqual(['c1', 'c2']);
  });

  it('reads every container from one RTM_GETSTATS dump the same counters as one at a time', async () => {
    const counters = (s: { statistics: Record<string, any> } | undefined) =>
      ['net_rx_bytes', 'net_rx_packets', 'net_tx_bytes', 'net_tx_packets', 'net_rx_dropped', 'net_tx_dropped'].map((k) => s?.statistics[k]);
    let checked = 0;
    for (let tries = 0; tries < 10 && checked < 2; tries++) {
      for (const id of ['c1', 'c2']) {
        const [one] = await iso.stats(id);
        const fromDump = (await iso.stats()).find((s) => s.container_id === id);
        const [again] = await iso.stats(id);
        if (JSON.stringify(counters(one)) !== JSON.stringify(counters(again))) continue; // a packet crossed: try again
        expect(counters(fromDump), id).toEqual(counters(one));
        expect(counters(one).every((v) => typeof v === 'number')).toBe(true);
        checked++;
      }
    }
    expect(checked, 'the counters never stood still across three reads (10 tries)').toBeGreaterThanOrEqual(2);
  });
});

describe('update', () => {
  it('adds and removes ranges on a live container: traffic proves both, other ports keep working', async () => {
    await iso.update('c2', '[31500-31599,31800-31899]'); // drops 31600-31799 and 31900-32000
    const added = await listen(c2.netns, 'tcp', 31850);
    const removed = await listen(c2.netns, 'tcp', 31700);
    const kept = await listen(c2.netns, 'tcp', 31550);
    try {
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31850, 'added\n')).toBe('ok');
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31550, 'kept\n')).toBe('ok');
      // A managed port nobody holds now: dropped (and counted), no answer from anyone.
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31700, 'removed\n', { timeoutMs: 1000 })).toMatch(/^fail: timeout/);
      expect(await until(() => added.received().includes('added') && kept.received().includes('kept'))).toBe(true);
      expect(removed.received()).toBe('');
      // Its rules follow: what it sends to 31850 (added) and 31550 (kept) stays in it, to 31700 (removed) no longer.
      const own = ownTcpPorts(c2.netns);
      expect([31850, 31550, 31700].map((p) => own.some(([b, e]) => b <= p && p <= e))).toEqual([true, true, false]);
      // c1 may now take the freed ports
      await iso.update('c1', '[31000-31499,31700-31701]');
    } finally {
      added.stop();
      removed.stop();
      kept.stop();
    }
    const freed = await listen(c1.netns, 'tcp', 31701);
    try {
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31701, 'moved\n')).toBe('ok');
      expect(await until(() => freed.received().includes('moved'))).toBe(true);
    } finally {
      freed.stop();
    }
  });

  it('refuses ports held by another container or outside the managed ports, and changes nothing', async () => {
    await expect(iso.update('c1', '[31500-31510]')).rejects.toThrow(/already held by another container/);
    await expect(iso.update('c1', '[40000-40010]')).rejects.toThrow(/not managed/);
    await expect(iso.update('nope', '[31000-31001]')).rejects.toThrow(/Unknown container nope/);
    expect((await iso.list()).find((c) => c.id === 'c1')!.ports).toEqual([
      [31000, 31499],
      [31700, 31701],
    ]);
  });
});
