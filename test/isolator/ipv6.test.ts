/**
 * IPv6 (issue #19): containers share the host's IPv6 address as they share its IPv4 one, proven
 * with real IPv6 traffic in a dual-stack lab (the host 2001:2::2/64, the world 2001:2::1/64 and
 * its gateway; a "far" network 2001:2:0:1::/64 behind the world over a link of MTU 1280).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { ContainerInfo, Isolator } from '../../src/isolator/engine.js';
import { FIXTURE, GATEWAY6, HOST_IP, HOST_IP6, IsolatorLab, eventually, sweepStaleLabs, until } from '../../src/lab/index.js';
import { compareTopologies, containerTopology } from '../../bench/equivalence.js';
import { datapath6, sniff6During } from '../helpers/probe.js';
import { listen, peerPortServer, send, sendBytes, stopAllTraffic } from '../helpers/traffic.js';

const FAR = '2001:2:0:1::2';

let lab: IsolatorLab;
let iso: Isolator;
let cs: ContainerInfo[];
let far: string;

const inNs = (netns: string, ...cmd: string[]) =>
  execFileSync('nsenter', [`--net=${netns.startsWith('/') ? netns : `/run/netns/${netns}`}`, ...cmd], { encoding: 'utf8', timeout: 10_000 });
const ipJson = <T>(netns: string, ...args: string[]): T => JSON.parse(inNs(netns, 'ip', '-j', ...args)) as T;
/** Packets a container's eth0 has sent: what stays inside it does not count here. */
const eth0Sent = (netns: string): number => ipJson<Array<{ stats64: { tx: { packets: number } } }>>(netns, '-s', 'link', 'show', 'eth0')[0]!.stats64.tx.packets;
const denied = async (id: string): Promise<number> => Number((await iso.stats(id))[0]!.statistics.net_tx_denied_packets);
/** One counter of /proc/net/snmp6 in a namespace. */
const snmp6 = (netns: string, key: string): number => {
  const line = inNs(netns, 'cat', '/proc/net/snmp6')
    .split('\n')
    .find((l) => l.split(/\s+/)[0] === key);
  return Number(line?.split(/\s+/)[1] ?? NaN);
};
const worldMac = () => readMac(lab.lab.world);
const readMac = (ns: string) => ipJson<Array<{ address: string }>>(ns, 'link', 'show', 'eth0')[0]!.address;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab(undefined, { ipv6: true });
  // A network behind the world, over a link of MTU 1280 (the world routes; the host's default route goes there).
  far = lab.lab.addNamespace('far');
  const w = lab.lab.world;
  execFileSync('ip', ['-n', w, 'link', 'add', 'tofar', 'mtu', '1280', 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', '1280', 'netns', far]);
  for (const [ns, dev, addr] of [
    [w, 'tofar', '2001:2:0:1::1/64'],
    [far, 'eth0', `${FAR}/64`],
  ] as const) {
    execFileSync('ip', ['-n', ns, 'addr', 'add', addr, 'dev', dev, 'nodad']);
    execFileSync('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  execFileSync('ip', ['-n', far, 'link', 'set', 'lo', 'up']);
  execFileSync('ip', ['-n', far, '-6', 'route', 'add', 'default', 'via', '2001:2:0:1::1']);
  execFileSync('ip', ['netns', 'exec', w, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1']);
  // The host knows the gateway before the isolator starts: containers get it as a permanent neighbour.
  expect(datapath6(lab.lab.host, 'ping6', GATEWAY6, 1, 100, 2000, 0)).toMatchObject({ received: 1 });
  iso = await lab.open();
  cs = [];
  for (const [i, ports] of ['[31000-31099]', '[31100-31199]', '[31200-31299]'].entries()) cs.push(await iso.create({ id: `c${i + 1}`, ports }));
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

describe('addressing', () => {
  it("a container has the host's IPv6 address (no link-local, no DAD), its default route and the gateway as a permanent neighbour", () => {
    const c = cs[0]!;
    expect(c.ipv6_addresses).toEqual([`${HOST_IP6}/64`]);
    const addrs = ipJson<Array<{ ifname: string; addr_info: Array<{ local: string; prefixlen: number; scope: string; tentative?: boolean }> }>>(
      c.netns,
      '-6',
      'addr',
      'show',
    );
    const eth0 = addrs.find((a) => a.ifname === 'eth0')!;
    expect(eth0.addr_info.map((a) => `${a.local}/${a.prefixlen} ${a.scope}${a.tentative ? ' tentative' : ''}`)).toEqual([`${HOST_IP6}/64 global`]);
    const routes = ipJson<Array<{ dst: string; gateway?: string }>>(c.netns, '-6', 'route', 'show', 'default');
    expect(routes.map((r) => r.gateway)).toEqual([GATEWAY6]);
    const neigh = ipJson<Array<{ dst: string; lladdr: string; state: string[] }>>(c.netns, '-6', 'neigh', 'show', GATEWAY6);
    expect(neigh).toEqual([expect.objectContaining({ dst: GATEWAY6, lladdr: worldMac(), state: ['PERMANENT'] })]);
    // Its ephemeral block applies to IPv6 sockets too (the one sysctl is both families').
    expect(inNs(c.netns, 'cat', '/proc/sys/net/ipv4/ip_local_port_range').trim().split(/\s+/).map(Number)).toEqual([
      c.ephemeral_ports.begin,
      c.ephemeral_ports.end,
    ]);
  });

  it('list and /monitor/statistics show it', async () => {
    expect((await iso.list()).map((c) => c.ipv6_addresses)).toEqual(cs.map(() => [`${HOST_IP6}/64`]));
    expect((await iso.stats('c2'))[0]!.ipv6_addresses).toEqual([`${HOST_IP6}/64`]);
  });
});

describe('TCP and UDP to [host IPv6]:port', () => {
  for (const proto of ['tcp', 'udp'] as const) {
    it(`${proto}: from the world, the host and another container, each reaches the owner only`, async () => {
      const [c1, c2, c3] = cs;
      const own = await listen(c1!.netns, proto, 31010, { ipv6: true });
      const other = await listen(c2!.netns, proto, 31010, { ipv6: true });
      const onHost = await listen(lab.lab.host, proto, 31010, { ipv6: true });
      try {
        for (const [who, ns] of [
          ['world', lab.lab.world],
          ['host', lab.lab.host],
          ['c3', c3!.netns],
        ] as const) {
          expect(send(ns, proto, HOST_IP6, 31010, `${who};`), who).toBe('ok');
        }
        await eventually(() => expect(own.received()).toBe('world;host;c3;'));
        expect(other.received()).toBe('');
        expect(onHost.received()).toBe('');
        // And IPv4 to the same port still reaches the same owner.
        expect(send(lab.lab.world, proto, HOST_IP, 31010, 'v4;')).toBe('ok');
        await eventually(() => expect(own.received()).toBe('world;host;c3;v4;'));
      } finally {
        own.stop();
        other.stop();
        onHost.stop();
      }
    });
  }

  it('a managed port nobody holds is dropped and counted; a port outside every block reaches the host', async () => {
    const onHost = await listen(lab.lab.host, 'udp', 31500, { ipv6: true });
    const hostService = await listen(lab.lab.host, 'udp', 5000, { ipv6: true });
    try {
      const before = (await iso.hostCounters()).unheldPortDroppedPackets;
      for (let i = 0; i < 3; i++) expect(send(lab.lab.world, 'udp', HOST_IP6, 31500, 'x')).toBe('ok');
      await eventually(async () => expect((await iso.hostCounters()).unheldPortDroppedPackets - before).toBe(3));
      expect(send(lab.lab.world, 'udp', HOST_IP6, 5000, 'to host')).toBe('ok');
      await eventually(() => expect(hostService.received()).toBe('to host'));
      expect(onHost.received()).toBe('');
    } finally {
      onHost.stop();
      hostService.stop();
    }
  });

  it("a container to [host IPv6]: its own port stays in it (never on its eth0), another container's port reaches that one (TCP and UDP)", async () => {
    const [c1, c2] = cs;
    for (const proto of ['tcp', 'udp'] as const) {
      const own = await listen(c1!.netns, proto, 31020, { ipv6: true });
      const decoy = await listen(c1!.netns, proto, 31150, { ipv6: true });
      const atC2 = await listen(c2!.netns, proto, 31150, { ipv6: true });
      try {
        const before = eth0Sent(c1!.netns);
        for (let i = 0; i < 5; i++) expect(send(c1!.netns, proto, HOST_IP6, 31020, 'self;'), proto).toBe('ok');
        await eventually(() => expect(own.received()).toBe('self;'.repeat(5)));
        // Round through the host they would arrive too: what shows they stayed is its eth0 sending
        // none of them (≥ 5 packets if they left; at most a stray MLD report of its addresses).
        expect(eth0Sent(c1!.netns) - before, proto).toBeLessThanOrEqual(2);
        expect(send(c1!.netns, proto, HOST_IP6, 31150, 'to-c2;'), proto).toBe('ok');
        await eventually(() => expect(atC2.received()).toBe('to-c2;'));
        expect(eth0Sent(c1!.netns), proto).toBeGreaterThan(before);
        expect(decoy.received()).toBe('');
      } finally {
        own.stop();
        decoy.stop();
        atC2.stop();
      }
    }
  });

  it('a container connects out over IPv6 from its own block, and the answers come back (TCP and UDP)', async () => {
    for (const proto of ['tcp', 'udp'] as const) {
      const server = await peerPortServer(lab.lab.world, proto, 7000, { ipv6: true });
      try {
        for (const c of cs) {
          const port = Number(send(c.netns, proto, GATEWAY6, 7000, 'hi', { reply: true }));
          expect(port, `${proto} ${c.id}`).toBeGreaterThanOrEqual(c.ephemeral_ports.begin);
          expect(port, `${proto} ${c.id}`).toBeLessThanOrEqual(c.ephemeral_ports.end);
        }
      } finally {
        server.stop();
      }
    }
  });
});

describe('ICMPv6 and neighbour discovery', () => {
  it('a ping6 to the host gets exactly one reply each, and no container sees the request', async () => {
    const before = cs.map((c) => snmp6(c.netns, 'Icmp6InEchos'));
    const seen = await sniff6During(cs[1]!.netns, 'eth0', 4000, () => {
      expect(datapath6(lab.lab.world, 'ping6', HOST_IP6, 5, 50, 1000, 1000)).toEqual({ sent: 5, received: 5, duplicates: 0 });
    });
    expect(seen.icmp6_echo_request).toBe(0);
    expect(cs.map((c) => snmp6(c.netns, 'Icmp6InEchos'))).toEqual(before);
  });

  it("neighbour discovery for the host's address: one advertisement per solicitation, and no container sees them", async () => {
    let result = { sent: 0, replies: 0 };
    // The world's kernel must not probe the host on its own meanwhile (its answers would count too).
    const pin = (verb: string, ...rest: string[]) => execFileSync('ip', ['-n', lab.lab.world, '-6', 'neigh', verb, HOST_IP6, ...rest, 'dev', 'eth0']);
    pin('replace', 'lladdr', readMac(lab.lab.host), 'nud', 'permanent');
    onTestFinished(() => void pin('del'));
    const seen = await sniff6During(cs[0]!.netns, 'eth0', 5000, () => (result = datapath6(lab.lab.world, 'ns-count', 'eth0', HOST_IP6, 2500)));
    expect(result.sent).toBeGreaterThanOrEqual(2);
    expect(result.replies).toBe(result.sent);
    expect(seen.ns).toBe(0);
  });

  it('containers ping6 the gateway, a host behind it and the host address, each answer once', () => {
    for (const c of cs)
      for (const addr of [GATEWAY6, FAR, HOST_IP6])
        expect(datapath6(c.netns, 'ping6', addr, 1, 100, 2000, 500), `${c.id} ${addr}`).toEqual({ sent: 1, received: 1, duplicates: 0 });
  });

  it('a container resolves an on-link neighbour that is not the gateway (the advertisement comes through the echo fan-out)', () => {
    const c = cs[2]!;
    // The world's address is the gateway's; a second address of the world is a neighbour of its own.
    execFileSync('ip', ['-n', lab.lab.world, 'addr', 'add', '2001:2::7/64', 'dev', 'eth0', 'nodad']);
    try {
      expect(datapath6(c.netns, 'ping6', '2001:2::7', 1, 100, 3000, 500)).toEqual({ sent: 1, received: 1, duplicates: 0 });
    } finally {
      execFileSync('ip', ['-n', lab.lab.world, 'addr', 'del', '2001:2::7/64', 'dev', 'eth0']);
    }
  });

  it("a router's packet-too-big reaches the container that sent the packet, which learns the path MTU; no one else does", () => {
    const hostPtb = snmp6(lab.lab.path(lab.lab.host), 'Icmp6InPktTooBigs');
    const c1Ptb = snmp6(cs[0]!.netns, 'Icmp6InPktTooBigs');
    // 1400 bytes leave the host whole; the world cannot forward them to the far link (1280) and says so.
    expect(datapath6(cs[1]!.netns, 'udp6-flow', 31150, FAR, 9, 1500, 1400, 2)).toMatchObject({ mtu: 1280 });
    expect(snmp6(lab.lab.path(lab.lab.host), 'Icmp6InPktTooBigs')).toBe(hostPtb);
    expect(snmp6(cs[0]!.netns, 'Icmp6InPktTooBigs')).toBe(c1Ptb);
    // c1 still sees the whole link's MTU towards that network.
    expect(datapath6(cs[0]!.netns, 'udp6-flow', 31050, FAR, 9, 300, 16)).toMatchObject({ mtu: 1500 });
  });

  it("a time exceeded quoting a container's port reaches that container only", async () => {
    const count = () => [lab.lab.path(lab.lab.host), ...cs.map((c) => c.netns)].map((ns) => snmp6(ns, 'Icmp6InTimeExcds'));
    const before = count();
    expect(datapath6(lab.lab.world, 'icmp6-error', 3, 0, 0, HOST_IP6, HOST_IP6, GATEWAY6, 31210, 9)).toEqual({ sent: 1 });
    await eventually(() => expect(count()).toEqual([before[0], before[1], before[2], before[3]! + 1]));
  });

  it('a port unreachable from the world reaches the flow that caused it (ECONNREFUSED), nobody else', () => {
    const others = [snmp6(lab.lab.path(lab.lab.host), 'Icmp6InDestUnreachs'), snmp6(cs[1]!.netns, 'Icmp6InDestUnreachs')];
    expect(datapath6(cs[0]!.netns, 'udp6-flow', 31020, GATEWAY6, 9, 1500)).toMatchObject({ refused: true });
    expect([snmp6(lab.lab.path(lab.lab.host), 'Icmp6InDestUnreachs'), snmp6(cs[1]!.netns, 'Icmp6InDestUnreachs')]).toEqual(others);
  });
});

describe('what a container may send', () => {
  it('a forged IPv6 source never leaves, nor a port it does not own; both are counted as denied', async () => {
    const c = cs[0]!;
    const before = await denied('c1');
    const seen = await sniff6During(lab.lab.world, 'eth0', 3500, () => {
      expect(datapath6(c.netns, 'forge6', 'eth0', worldMac(), '2001:2::77', GATEWAY6, 31030, 9, 3)).toEqual({ sent: 3 });
      expect(datapath6(c.netns, 'forge6', 'eth0', worldMac(), HOST_IP6, GATEWAY6, 31130, 9, 2)).toEqual({ sent: 2 });
    });
    expect(seen.udp).toBe(0);
    await eventually(async () => expect((await denied('c1')) - before).toBe(5));
    // The same with its own address and port arrives.
    const ok = await sniff6During(lab.lab.world, 'eth0', 2500, () => datapath6(c.netns, 'forge6', 'eth0', worldMac(), HOST_IP6, GATEWAY6, 31030, 9, 2));
    expect(ok.udp).toBe(2);
  });

  it("neighbour discovery from a container names only the host's address; router advertisements never leave", async () => {
    const c = cs[1]!;
    const before = await denied('c2');
    const seen = await sniff6During(lab.lab.world, 'eth0', 3500, () => {
      // "The gateway is at my MAC", and a router advertisement: neither reaches the network.
      expect(datapath6(c.netns, 'icmp6-send', 136, 'ff02::1', GATEWAY6)).toEqual({ sent: 1 });
      expect(datapath6(c.netns, 'icmp6-send', 134, 'ff02::1')).toEqual({ sent: 1 });
      // An advertisement for the host's own address does.
      expect(datapath6(c.netns, 'icmp6-send', 136, 'ff02::1', HOST_IP6)).toEqual({ sent: 1 });
    });
    // (By target, and unsolicited as ours are: the host answers the world's reachability probes for its address meanwhile.)
    const unsolicited = seen.na_unsolicited_targets;
    expect([seen.na_targets[GATEWAY6] ?? 0, unsolicited[HOST_IP6] ?? 0, seen.ra]).toEqual([0, 1, 0]);
    await eventually(async () => expect((await denied('c2')) - before).toBe(2));
  });

  it('an IPv6 packet with an extension header never reaches a container, even when it reads as its port', async () => {
    const c = cs[0]!;
    const reasm = snmp6(lab.lab.path(lab.lab.host), 'Ip6ReasmReqds');
    const seen = await sniff6During(c.netns, 'eth0', 3000, () => {
      // A first fragment (all of a datagram) to its port, and a later one whose header, where a port would be, reads as 31040.
      datapath6(lab.lab.world, 'frag6', 'eth0', readMac(lab.lab.host), GATEWAY6, HOST_IP6, 31040);
      datapath6(lab.lab.world, 'frag6', 'eth0', readMac(lab.lab.host), GATEWAY6, HOST_IP6, 31040, 31040);
    });
    expect(seen.fragments + seen.udp).toBe(0);
    // They went to the host (its stack took both fragments in).
    await eventually(() => expect(snmp6(lab.lab.path(lab.lab.host), 'Ip6ReasmReqds') - reasm).toBe(2));
  });
});

describe('limits and modes', () => {
  let lab2: IsolatorLab | undefined;
  afterAll(async () => {
    await lab2?.destroy();
  });

  it('egress shaping on the host holds IPv6 to the limit too', async () => {
    lab2 = new IsolatorLab(undefined, { ipv6: true });
    const iso2 = await lab2.open({ ...FIXTURE, egress_rate_limit_per_container: '100KB', minimum_egress_rate_limit: '0B' });
    const c = await iso2.create({ id: 'c1' });
    const sink = await listen(lab2.lab.world, 'tcp', 7200, { ipv6: true });
    const t0 = Date.now();
    expect(sendBytes(c.netns, GATEWAY6, 7200, 300 * 1024)).toBe('ok');
    expect(await until(() => sink.received().length >= 300 * 1024, 15_000)).toBe(true);
    expect((Date.now() - t0) / 1000).toBeGreaterThan(2.2);
    sink.stop();
    // Another process's first host-shaped create sets the shaper up again: nothing is added twice.
    const rxFilters = () =>
      execFileSync('tc', ['-n', lab2!.lab.host, 'filter', 'show', 'dev', 'pmi-shape-rx', 'ingress'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.startsWith('filter'));
    const before = rxFilters();
    const other = await lab2.open({ ...FIXTURE, egress_rate_limit_per_container: '100KB', minimum_egress_rate_limit: '0B' });
    await other.create({ id: 'c2' });
    expect(rxFilters()).toEqual(before);
  });

  it('--ipv6=off keeps IPv6 off in containers; --ipv6=on without a global address is refused naming the flag', async () => {
    const offLab = new IsolatorLab(undefined, { ipv6: true });
    try {
      const off = await offLab.open({ ...FIXTURE, ipv6: 'off' });
      const c = await off.create({ id: 'c1' });
      expect(c.ipv6_addresses).toBeUndefined();
      expect(inNs(c.netns, 'cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6').trim()).toBe('1');
    } finally {
      await offLab.destroy();
    }
    const v4Lab = new IsolatorLab();
    try {
      // Only what builds is refused: list, doctor and cleanup still work (a CNI DEL must).
      const on = await v4Lab.open({ ...FIXTURE, ipv6: 'on' });
      await expect(on.create({ id: 'c1' })).rejects.toMatchObject({ flag: 'ipv6', message: expect.stringMatching(/^--ipv6: eth0 has no global IPv6 address/) });
      expect(await on.list()).toEqual([]);
      expect((await on.cleanup()).errors).toEqual([]);
      await expect(v4Lab.open({ ...FIXTURE, ipv6: 'maybe' })).rejects.toThrow(/ipv6/);
    } finally {
      await v4Lab.destroy();
    }
  });

  it("turning IPv6 off takes its filters off eth0 and lo too, when their ingress qdiscs are not the isolator's", async () => {
    const l = new IsolatorLab(undefined, { ipv6: true });
    try {
      // Ingress qdiscs that were there before: teardown removes its filters by priority, not the qdiscs.
      for (const dev of ['eth0', 'lo']) execFileSync('tc', ['-n', l.lab.host, 'qdisc', 'add', 'dev', dev, 'ingress']);
      const ipv6Filters = () =>
        ['eth0', 'lo'].flatMap((dev) =>
          execFileSync('tc', ['-n', l.lab.host, 'filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8' })
            .split('\n')
            .filter((x) => x.includes('protocol ipv6')),
        );
      const on = await l.open();
      await on.create({ id: 'c1' });
      expect(ipv6Filters().length).toBeGreaterThan(0);
      await on.destroy('c1');
      const off = await l.open({ ...FIXTURE, ipv6: 'off' });
      expect((await off.create({ id: 'c2' })).ipv6_addresses).toBeUndefined();
      expect(ipv6Filters()).toEqual([]);
    } finally {
      await l.destroy();
    }
  });

  it('a warm-pool spare becomes a dual-stack container with exactly the objects of one made without the pool', async () => {
    const poolLab = new IsolatorLab(undefined, { ipv6: true });
    try {
      const pooled = await poolLab.open({ ...FIXTURE }, [], { warmPool: 1 });
      const plain = await poolLab.open({ ...FIXTURE }); // same work_dir, no pool
      const snapshot = (info: ContainerInfo) => containerTopology(poolLab.lab.path(poolLab.lab.host), info, pooled.host);
      await pooled.create({ id: 'first', ports: '[31000-31000]' });
      const a = await plain.create({ id: 'plain', ports: '[31040-31049]' });
      const want = await snapshot(a);
      await plain.destroy('plain');
      const spares = join(poolLab.workDir, 'spares');
      const ready = () =>
        existsSync(spares) && readdirSync(spares).some((f) => f.endsWith('.json') && readFileSync(join(spares, f), 'utf8').includes('"ready"'));
      expect(await until(ready, 5000)).toBe(true);
      const c = await pooled.create({ id: 'second', ports: '[31040-31049]' });
      expect(c.netns).toContain('.spare-'); // it did take a spare
      expect(c.ipv6_addresses).toEqual([`${HOST_IP6}/64`]);
      expect(compareTopologies(await snapshot(c), want)).toBe('');
      const l = await listen(c.netns, 'tcp', 31041, { ipv6: true });
      expect(send(poolLab.lab.world, 'tcp', HOST_IP6, 31041, 'pooled')).toBe('ok');
      await eventually(() => expect(l.received()).toBe('pooled'));
      l.stop();
      await plain.close();
    } finally {
      await poolLab.destroy();
    }
  });
});

describe('several addresses, a link-local gateway, and a change of addresses', () => {
  it('a container gets every global address (in order) and the link-local gateway; a new address is taken only once no container is left', async () => {
    const l3 = new IsolatorLab(undefined, { ipv6: true });
    try {
      const h = l3.lab.host;
      execFileSync('ip', ['-n', h, 'addr', 'add', '2001:2::3/64', 'dev', 'eth0', 'nodad']);
      // The usual IPv6 default route: via the router's link-local address.
      const worldLl = ipJson<Array<{ addr_info: Array<{ local: string; scope: string }> }>>(
        l3.lab.world,
        '-6',
        'addr',
        'show',
        'dev',
        'eth0',
      )[0]!.addr_info.find((a) => a.scope === 'link')!.local;
      execFileSync('ip', ['-n', h, '-6', 'route', 'replace', 'default', 'via', worldLl, 'dev', 'eth0']);
      expect(datapath6(h, 'ping6', `${worldLl}%eth0`, 1, 100, 2000, 0)).toMatchObject({ received: 1 });
      const iso3 = await l3.open();
      const c = await iso3.create({ id: 'c1', ports: '[31000-31009]' });
      expect(c.ipv6_addresses).toEqual(['2001:2::2/64', '2001:2::3/64']);
      expect(ipJson<Array<{ gateway: string }>>(c.netns, '-6', 'route', 'show', 'default').map((r) => r.gateway)).toEqual([worldLl]);
      expect(ipJson<Array<{ state: string[] }>>(c.netns, '-6', 'neigh', 'show', worldLl)[0]!.state).toEqual(['PERMANENT']);
      // Both addresses reach it, and it reaches the world through the link-local gateway.
      const l = await listen(c.netns, 'tcp', 31001, { ipv6: true });
      for (const addr of ['2001:2::2', '2001:2::3']) expect(send(l3.lab.world, 'tcp', addr, 31001, `${addr};`)).toBe('ok');
      await eventually(() => expect(l.received()).toBe('2001:2::2;2001:2::3;'));
      l.stop();
      const server = await peerPortServer(l3.lab.world, 'tcp', 7000, { ipv6: true });
      const port = Number(send(c.netns, 'tcp', GATEWAY6, 7000, 'hi', { reply: true }));
      expect(port).toBeGreaterThanOrEqual(c.ephemeral_ports.begin);
      expect(port).toBeLessThanOrEqual(c.ephemeral_ports.end);
      server.stop();

      // A third address appears: containers keep being built with the set the host was set up
      // for (doctor says so), until none is left.
      execFileSync('ip', ['-n', h, 'addr', 'add', '2001:2::4/64', 'dev', 'eth0', 'nodad']);
      const warnings: string[] = [];
      const later = await l3.open(FIXTURE, warnings);
      expect((await later.checkHost()).join('\n')).toMatch(
        /IPv6 addresses to share changed .*: its containers have 2001:2::2\/64, 2001:2::3\/64, now 2001:2::2\/64, 2001:2::3\/64, 2001:2::4\/64/,
      );
      expect((await later.create({ id: 'c2', ports: '[31010-31019]' })).ipv6_addresses).toEqual(['2001:2::2/64', '2001:2::3/64']);
      expect(warnings.join('\n')).toMatch(/IPv6 addresses to share changed/);
      await later.destroy('c1');
      await later.destroy('c2');
      const c3 = await later.create({ id: 'c3', ports: '[31020-31029]' });
      expect(c3.ipv6_addresses).toEqual(['2001:2::2/64', '2001:2::3/64', '2001:2::4/64']);
      expect(await later.checkHost()).toEqual([]);
      const l4 = await listen(c3.netns, 'tcp', 31021, { ipv6: true });
      expect(send(l3.lab.world, 'tcp', '2001:2::4', 31021, 'new')).toBe('ok');
      await eventually(() => expect(l4.received()).toBe('new'));
      l4.stop();
    } finally {
      await l3.destroy();
    }
  });
});

describe('repair', () => {
  it("lo's ingress qdisc deleted by hand: doctor says so, recover puts the IPv6 links back with the rest", async () => {
    const l = await listen(cs[0]!.netns, 'tcp', 31060, { ipv6: true });
    try {
      execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'del', 'dev', 'lo', 'ingress']);
      expect((await iso.checkHost()).join('\n')).toMatch(/^lo: \d+ of the \d+ shared tables and filters are missing/m);
      const report = await iso.recover();
      expect(report.errors).toEqual([]);
      expect(await iso.checkHost()).toEqual([]);
      expect(send(lab.lab.host, 'tcp', HOST_IP6, 31060, 'after repair')).toBe('ok');
      await eventually(() => expect(l.received()).toBe('after repair'));
    } finally {
      l.stop();
    }
  });
});

describe("the IPv6 gateway's MAC changes", () => {
  const neigh = (ns: string) => ipJson<Array<{ lladdr: string; state: string[] }>>(ns, '-6', 'neigh', 'show', GATEWAY6)[0];
  const setWorldMac = (mac: string) => execFileSync('ip', ['-n', lab.lab.world, 'link', 'set', 'eth0', 'address', mac]);
  /** The world (the gateway) solicits the host: the host's entry for the gateway takes the sender's new MAC. */
  const announce = () => datapath6(lab.lab.world, 'ns-count', 'eth0', HOST_IP6, 1500);

  it('every container follows, through a watch (as the agent keeps) and through recover', async () => {
    const original = worldMac();
    onTestFinished(() => void setWorldMac(original));
    const stop = iso.watchGateway();
    try {
      setWorldMac('02:00:00:00:0b:01');
      announce();
      await eventually(() => expect(neigh(lab.lab.path(lab.lab.host))!.lladdr).toBe('02:00:00:00:0b:01'));
      await eventually(() => {
        for (const c of cs) expect(neigh(c.netns), c.id).toMatchObject({ lladdr: '02:00:00:00:0b:01', state: ['PERMANENT'] });
      }, 5000);
    } finally {
      stop();
    }
    setWorldMac('02:00:00:00:0b:02');
    announce();
    await eventually(() => expect(neigh(lab.lab.path(lab.lab.host))!.lladdr).toBe('02:00:00:00:0b:02'));
    expect(neigh(cs[0]!.netns)!.lladdr).toBe('02:00:00:00:0b:01');
    const report = await iso.recover();
    expect(report.repaired.join('\n')).toMatch(/IPv6 gateway's MAC changed to 02:00:00:00:0b:02/);
    for (const c of cs) expect(neigh(c.netns)!.lladdr, c.id).toBe('02:00:00:00:0b:02');
    expect(datapath6(cs[2]!.netns, 'ping6', FAR, 1, 100, 2000, 500)).toEqual({ sent: 1, received: 1, duplicates: 0 });
  });
});
