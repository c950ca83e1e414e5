/** rtnetlink verbs against the real kernel in a lab, compared with `ip -j`. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, Netns } from '../../src/netlink/index.js';
import { IPV4_DEVCONF, NUD, RT_SCOPE, Rtnl, RtnlEvents, SysctlDir, SysctlFile, type RtnlEvent } from '../../src/rtnl/index.js';
import { ip, ipJson, nsExec } from '../helpers/lab.js';
import { icmpEcho } from '../helpers/probe.js';
import { Lab, sweepStaleLabs, until } from '../../src/lab/index.js';
import { quietSnapshot } from '../helpers/quiet-snapshot.js';

let lab: Lab;
let host: Rtnl;
let other: string;

beforeAll(() => {
  sweepStaleLabs();
  lab = new Lab();
  other = lab.addNamespace('other');
  host = Rtnl.open(lab.host);
});
afterAll(() => {
  host?.close();
  lab?.destroy();
});

const ipLink = (ns: string, name: string) => ipJson<any[]>(ns, '-d', '-s', 'link', 'show', 'dev', name)[0];
const exists = (ns: string, name: string) => {
  try {
    ip(ns, 'link', 'show', 'dev', name);
    return true;
  } catch {
    return false;
  }
};

describe('links', () => {
  it('lists what `ip -j link` lists, and finds by name and index', async () => {
    const links = await host.links.list();
    expect(links.map((l) => l.name).sort()).toEqual(
      ipJson<any[]>(lab.host, 'link', 'show')
        .map((l) => l.ifname)
        .sort(),
    );
    // A veth reaches operstate UP a moment after it is set up (linkwatch): compare once it has.
    expect(await until(() => ipLink(lab.host, 'eth0').operstate === 'UP', 5000)).toBe(true);
    const eth0 = await host.links.get('eth0');
    expect((await host.links.get(eth0.index)).name).toBe('eth0');
    const t = ipLink(lab.host, 'eth0');
    expect([eth0.index, eth0.mtu, eth0.address, eth0.operstate, eth0.kind, eth0.txqlen]).toEqual([
      t.ifindex,
      t.mtu,
      t.address,
      t.operstate,
      t.linkinfo.info_kind,
      t.txqlen,
    ]);
    expect(eth0.up).toBe(true);
    expect(eth0.linkNetnsid).toBe(t.link_netnsid);
    expect(await host.links.find('nope0')).toBeUndefined();
  });

  it('creates a veth pair with both MACs set and the peer created directly in another namespace', async () => {
    await host.links.addVeth({
      name: 've-a',
      address: '02:00:00:00:0a:01',
      mtu: 1400,
      peer: { name: 'eth0', address: '02:00:00:00:0a:02', netns: Netns.fromName(other) },
    });
    const near = ipLink(lab.host, 've-a');
    const far = ipLink(other, 'eth0');
    expect([near.address, near.mtu, near.linkinfo.info_kind]).toEqual(['02:00:00:00:0a:01', 1400, 'veth']);
    expect(far.address).toBe('02:00:00:00:0a:02');
    expect(exists(lab.host, 'eth0') && ipLink(lab.host, 'eth0').address !== '02:00:00:00:0a:02').toBe(true); // the host's own eth0 is untouched
    // the peer's index, seen from the host side, is that of the far end
    expect((await host.links.get('ve-a')).linkIndex).toBe(far.ifindex);
  });

  it('creates a veth pair with the queue counts asked for at each end', async () => {
    await host.links.addVeth({ name: 've-q', numTxQueues: 1, numRxQueues: 1, peer: { name: 've-q2', numTxQueues: 3, numRxQueues: 2 } });
    const queues = (l: { num_tx_queues: number; num_rx_queues: number }) => [l.num_tx_queues, l.num_rx_queues];
    expect([queues(ipLink(lab.host, 've-q')), queues(ipLink(lab.host, 've-q2'))]).toEqual([
      [1, 1],
      [3, 2],
    ]);
    await host.links.delete('ve-q');
  });

  it('creates the peer in a namespace given by pid', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('ip', ['netns', 'exec', other, 'sleep', '30'], { stdio: 'ignore' });
    try {
      const otherNs = Netns.fromName(other);
      for (let i = 0; i < 100 && Netns.fromPid(child.pid!).inode !== otherNs.inode; i++) await new Promise((r) => setTimeout(r, 10));
      await host.links.addVeth({ name: 've-pid', peer: { name: 'pid0', netns: { pid: child.pid! } } });
      expect(exists(other, 'pid0')).toBe(true);
      expect(exists(lab.host, 'pid0')).toBe(false);
    } finally {
      child.kill();
    }
  });

  it('refuses a duplicate with EEXIST, a missing link with ENODEV, a broadcast MAC with the kernel text', async () => {
    const dup = await host.links.addVeth({ name: 've-a', peer: { name: 've-a2' } }).catch((e) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup.code).toBe('EEXIST');
    const missing = await host.links.get('nope0').catch((e) => e);
    expect(missing.code).toBe('ENODEV');
    const bcast = await host.links.set('ve-a', { address: 'ff:ff:ff:ff:ff:ff' }).catch((e) => e);
    expect(bcast).toBeInstanceOf(NetlinkError);
    expect(bcast.code).toBe('EADDRNOTAVAIL');
    expect(ipLink(lab.host, 've-a').address).toBe('02:00:00:00:0a:01');
  });

  it('sets up/down, MTU, MAC and name, as `ip` then shows', async () => {
    await host.links.set('ve-a', { up: true, mtu: 1300, address: '02:00:00:00:0a:03' });
    let t = ipLink(lab.host, 've-a');
    expect([t.flags.includes('UP'), t.mtu, t.address]).toEqual([true, 1300, '02:00:00:00:0a:03']);
    await host.links.set('ve-a', { up: false });
    expect(ipLink(lab.host, 've-a').flags).not.toContain('UP');
    await host.links.set('ve-a', { name: 've-b' });
    expect(exists(lab.host, 've-b')).toBe(true);
    t = ipLink(lab.host, 've-b');
    expect(t.mtu).toBe(1300);
  });

  it('sets per-device IPv4 settings over netlink (IFLA_AF_SPEC), as sysctl then shows', async () => {
    await host.links.addVeth({ name: 've-conf', peer: { name: 've-conf2' } });
    await host.links.set('ve-conf', { ipv4Devconf: { [IPV4_DEVCONF.ACCEPT_LOCAL]: 1, [IPV4_DEVCONF.ROUTE_LOCALNET]: 1 } });
    expect(host.readSysctl(['net', 'ipv4', 'conf', 've-conf', 'accept_local'])).toBe('1');
    expect(host.readSysctl(['net', 'ipv4', 'conf', 've-conf', 'route_localnet'])).toBe('1');
    expect(host.readSysctl(['net', 'ipv4', 'conf', 've-conf2', 'accept_local'])).toBe('0');
  });

  it('moves a link to another namespace', async () => {
    await host.links.addVeth({ name: 've-mv', peer: { name: 've-mv2' } });
    await host.links.set('ve-mv2', { netns: Netns.fromName(other) });
    expect(exists(lab.host, 've-mv2')).toBe(false);
    expect(exists(other, 've-mv2')).toBe(true);
  });

  it('deletes a veth end, the peer goes too, and waits for removal through events', async () => {
    await host.links.addVeth({ name: 've-del', peer: { name: 've-del2' } });
    await host.links.delete('ve-del');
    await host.links.waitRemoved('ve-del2', 5000);
    expect(exists(lab.host, 've-del2')).toBe(false);
    expect(await host.links.deleteIfExists('ve-del')).toBe(false);
    await host.links.waitRemoved('never-existed', 1000); // resolves at once
  });

  it('reads IFLA_STATS64 counters that move with traffic, equal to `ip -s`', async () => {
    const before = (await host.links.get('eth0')).stats!;
    expect(icmpEcho(lab.host, '198.18.0.1', { count: 3, intervalMs: 200, waitMs: 1000 })).toMatchObject({ sent: 3, received: 3 });
    const after = (await host.links.get('eth0')).stats!;
    expect(after.txPackets - before.txPackets).toBeGreaterThanOrEqual(3n);
    expect(after.rxBytes).toBeGreaterThan(before.rxBytes);
    const { ours: now, theirs: t } = await quietSnapshot(
      async () => (await host.links.get('eth0')).stats!,
      () => ipLink(lab.host, 'eth0').stats64,
      (s) => `${s.txPackets}:${s.rxPackets}:${s.txBytes}:${s.rxBytes}`,
    );
    expect(now.txPackets).toBe(BigInt(t.tx.packets));
    expect(now.rxBytes).toBe(BigInt(t.rx.bytes));
  });

  it('reports loopback and the default route with its gateway', async () => {
    const lo = await host.links.get('lo');
    expect(lo.index).toBe(1);
    expect(lo.address).toBe('00:00:00:00:00:00');
    const def = await host.routes.defaultRoute();
    expect(def?.gateway).toBe('198.18.0.1');
    expect(def?.oif).toBe((await host.links.get('eth0')).index);
    const viaLookup = await host.routes.lookup('198.18.0.77');
    expect(viaLookup.oif).toBe(def?.oif);
    expect(viaLookup.prefsrc).toBe('198.18.0.2');
  });
});

describe('addresses', () => {
  it('adds, lists (IPv6 link-local decoded too) and deletes, as `ip -j addr`', async () => {
    const eth0 = await host.links.get('eth0');
    await host.addresses.add({ ifindex: eth0.index, address: '198.18.0.50/24', label: 'eth0:a' });
    const ours = await host.addresses.list({ ifindex: eth0.index });
    const theirs = ipJson<any[]>(lab.host, 'addr', 'show', 'dev', 'eth0')[0].addr_info;
    expect(ours.map((a) => `${a.address}/${a.prefixlen}`).sort()).toEqual(theirs.map((a: any) => `${a.local}/${a.prefixlen}`).sort());
    expect(ours.some((a) => a.family === 'inet6' && a.address.startsWith('fe80::'))).toBe(true);
    expect(ours.find((a) => a.address === '198.18.0.50')?.label).toBe('eth0:a');
    const dup = await host.addresses.add({ ifindex: eth0.index, address: '198.18.0.50/24' }).catch((e) => e);
    expect(dup.code).toBe('EEXIST');
    await host.addresses.delete({ ifindex: eth0.index, address: '198.18.0.50/24' });
    expect((await host.addresses.list({ ifindex: eth0.index })).map((a) => a.address)).not.toContain('198.18.0.50');
    const gone = await host.addresses.delete({ ifindex: eth0.index, address: '198.18.0.50/24' }).catch((e) => e);
    expect(gone.code).toBe('EADDRNOTAVAIL');
  });
});

describe('routes', () => {
  it('adds, lists and deletes routes in the main table, as `ip -j route`', async () => {
    const eth0 = await host.links.get('eth0');
    await host.routes.add({ dst: '198.18.40.0/24', oif: eth0.index });
    await host.routes.add({ dst: '198.18.41.0/24', gateway: '198.18.0.1', priority: 5 });
    const ours = await host.routes.list();
    const theirs = ipJson<any[]>(lab.host, 'route', 'show');
    const norm = (dst: string) => (dst.endsWith('/32') ? dst.slice(0, -3) : dst);
    expect(ours.map((r) => norm(r.dst)).sort()).toEqual(theirs.map((r) => (r.dst.includes('/') || r.dst === 'default' ? r.dst : r.dst)).sort());
    const r41 = ours.find((r) => r.dst === '198.18.41.0/24')!;
    expect([r41.gateway, r41.priority, r41.scope]).toEqual(['198.18.0.1', 5, RT_SCOPE.UNIVERSE]);
    expect(ours.find((r) => r.dst === '198.18.40.0/24')!.scope).toBe(RT_SCOPE.LINK);
    await host.routes.delete({ dst: '198.18.40.0/24', oif: eth0.index });
    await host.routes.delete({ dst: '198.18.41.0/24' });
    expect((await host.routes.list()).map((r) => r.dst)).not.toContain('198.18.40.0/24');
    const gone = await host.routes.delete({ dst: '198.18.41.0/24' }).catch((e) => e);
    expect(gone.code).toBe('ESRCH');
  });
});

describe('neighbours', () => {
  it('adds a permanent entry and lists it as `ip -j neigh`', async () => {
    const eth0 = await host.links.get('eth0');
    await host.neighbours.add({ ifindex: eth0.index, address: '198.18.0.99', lladdr: '02:00:00:00:00:99' });
    const ours = (await host.neighbours.list({ ifindex: eth0.index })).find((n) => n.address === '198.18.0.99')!;
    expect(ours.lladdr).toBe('02:00:00:00:00:99');
    expect(ours.permanent).toBe(true);
    expect(ours.state & NUD.PERMANENT).toBeTruthy();
    const theirs = ipJson<any[]>(lab.host, 'neigh', 'show', 'dev', 'eth0').find((n) => n.dst === '198.18.0.99');
    expect(theirs.lladdr).toBe('02:00:00:00:00:99');
    expect(theirs.state).toContain('PERMANENT');
    await host.neighbours.delete({ ifindex: eth0.index, address: '198.18.0.99' });
    expect((await host.neighbours.list()).some((n) => n.address === '198.18.0.99')).toBe(false);
  });
});

describe('routing rules', () => {
  it('adds, lists and deletes rules of both families, as `ip -j rule`; lists what `ip rule add` made', async () => {
    await host.rules.add({ priority: 100, dst: '198.18.0.1', iif: 'lo', ipProto: 6, dport: { begin: 31000, end: 31009 }, table: 255 });
    await host.rules.add({ priority: 120, src: '198.18.0.0/15', sport: { begin: 1000, end: 2000 }, table: 300 });
    ip(lab.host, 'rule', 'add', 'pref', '130', 'to', '198.18.9.0/24', 'oif', 'eth0', 'lookup', '100');
    await host.rules.add({ priority: 100, dst: '2001:2::1', iif: 'lo', ipProto: 17, dport: { begin: 33000, end: 33015 }, table: 255 });
    const ours = await host.rules.list();
    const theirs = ipJson<any[]>(lab.host, 'rule', 'show');
    expect(ours.map((r) => r.priority)).toEqual(theirs.map((r) => r.priority));
    const table = (t: number) => ({ 255: 'local', 254: 'main', 253: 'default' })[t] ?? String(t);
    for (const [i, r] of ours.entries()) {
      const t = theirs[i];
      expect(table(r.table)).toBe(t.table);
      expect(r.dst).toBe(t.dst === undefined ? undefined : `${t.dst}/${t.dstlen ?? 32}`);
      expect(r.src).toBe(t.src === 'all' ? undefined : `${t.src}/${t.srclen ?? 32}`);
      expect(r.iif).toBe(t.iif);
      expect(r.oif).toBe(t.oif);
      expect(r.ipProto).toBe(t.ipproto === undefined ? undefined : { tcp: 6, udp: 17 }[t.ipproto as string]);
      expect(r.dport).toEqual(t.dport_start === undefined ? undefined : { begin: t.dport_start, end: t.dport_end });
      expect(r.sport).toEqual(t.sport_start === undefined ? undefined : { begin: t.sport_start, end: t.sport_end });
    }
    expect(ours.find((r) => r.priority === 130)).toMatchObject({ dst: '198.18.9.0/24', oif: 'eth0', table: 100, action: 1 });
    const v6 = await host.rules.list('inet6');
    expect(v6.find((r) => r.priority === 100)).toEqual({
      family: 'inet6',
      priority: 100,
      dst: '2001:2::1/128',
      iif: 'lo',
      ipProto: 17,
      dport: { begin: 33000, end: 33015 },
      table: 255,
      action: 1,
    });
    expect(ipJson<any[]>(lab.host, '-6', 'rule', 'show').map((r) => r.priority)).toEqual(v6.map((r) => r.priority));
    // The kernel refuses the same rule twice, and a delete that matches nothing.
    const again = await host.rules.add({ priority: 120, src: '198.18.0.0/15', sport: { begin: 1000, end: 2000 }, table: 300 }).catch((e) => e);
    expect(again).toBeInstanceOf(NetlinkError);
    expect(again.code).toBe('EEXIST');
    for (const p of [100, 120, 130]) await host.rules.delete({ priority: p });
    await host.rules.delete({ family: 'inet6', priority: 100 });
    expect((await host.rules.list()).map((r) => r.priority)).toEqual([0, 32766, 32767]);
    expect((await host.rules.list('inet6')).map((r) => r.priority)).toEqual([0, 32766]);
    const none = await host.rules.delete({ priority: 4242 }).catch((e) => e);
    expect(none.code).toBe('ENOENT');
  });
});

describe('events', () => {
  it('reports link and address changes in the namespace subscribed to', async () => {
    const events = new RtnlEvents(['link', 'ipv4-address'], Netns.fromName(lab.host));
    const seen: RtnlEvent[] = [];
    events.on('event', (e) => seen.push(e));
    try {
      ip(lab.host, 'link', 'add', 've-ev', 'type', 'veth', 'peer', 'name', 've-ev2');
      ip(lab.host, 'addr', 'add', '198.18.60.1/32', 'dev', 've-ev');
      ip(lab.host, 'link', 'del', 've-ev');
      ip(other, 'link', 'add', 've-elsewhere', 'type', 'veth', 'peer', 'name', 've-elsewhere2');
      for (let i = 0; i < 100 && !seen.some((e) => e.kind === 'link' && e.action === 'del' && e.link.name === 've-ev'); i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(seen.some((e) => e.kind === 'link' && e.action === 'new' && e.link.name === 've-ev')).toBe(true);
      expect(seen.some((e) => e.kind === 'address' && e.action === 'new' && e.address.address === '198.18.60.1')).toBe(true);
      expect(seen.some((e) => e.kind === 'link' && e.action === 'del' && e.link.name === 've-ev')).toBe(true);
      expect(seen.some((e) => e.kind === 'link' && e.link.name.startsWith('ve-elsewhere'))).toBe(false);
    } finally {
      events.close();
    }
  });
});

describe('sysctls in a namespace', () => {
  it('writes and reads net.* keys of that namespace only', () => {
    const world = Rtnl.open(lab.world);
    try {
      const hostBefore = host.readSysctl('net.ipv4.ip_local_port_range');
      world.writeSysctl('net.ipv4.ip_local_port_range', '41000\t41999');
      expect(world.readSysctl('net.ipv4.ip_local_port_range').split(/\s+/)).toEqual(['41000', '41999']);
      expect(nsExec(lab.world, 'sysctl', ['-n', 'net.ipv4.ip_local_port_range']).trim().split(/\s+/)).toEqual(['41000', '41999']);
      expect(host.readSysctl('net.ipv4.ip_local_port_range')).toBe(hostBefore);
      world.writeSysctl(['net', 'ipv4', 'conf', 'eth0', 'accept_local'], 1);
      expect(execFileSync('ip', ['netns', 'exec', lab.world, 'cat', '/proc/sys/net/ipv4/conf/eth0/accept_local'], { encoding: 'utf8' }).trim()).toBe('1');
      expect(() => world.readSysctl('kernel.hostname')).toThrow(/not a net\.\* key/);
      expect(() => world.readSysctl('net.ipv4.nope')).toThrow(/ENOENT/);
    } finally {
      world.close();
    }
  });

  it('writes through a held-open directory (SysctlDir) into the namespace it was opened in', () => {
    const ns = Netns.fromName(lab.world);
    const conf = ns.run(() => SysctlDir.openHere(['net', 'ipv4', 'conf']));
    const net = ns.run(() => SysctlDir.openHere(['net']));
    try {
      const hostBefore = host.readSysctl(['net', 'ipv4', 'conf', 'lo', 'accept_local']);
      ns.run(() => conf.write(['lo', 'accept_local'], 1));
      expect(nsExec(lab.world, 'cat', ['/proc/sys/net/ipv4/conf/lo/accept_local']).trim()).toBe('1');
      expect(host.readSysctl(['net', 'ipv4', 'conf', 'lo', 'accept_local'])).toBe(hostBefore);
      ns.run(() => net.write(['ipv4', 'ip_local_port_range'], '42000 42999'));
      expect(ns.run(() => net.read(['ipv4', 'ip_local_port_range'])).split(/\s+/)).toEqual(['42000', '42999']);
      expect(() => conf.write(['..', 'x'], 1)).toThrow(/invalid sysctl name/);
      expect(() => ns.run(() => conf.write(['nodev', 'accept_local'], 1))).toThrow(/ENOENT/);
    } finally {
      conf.close();
      net.close();
    }
    expect(() => conf.write(['lo', 'accept_local'], 1)).toThrow(/closed/);
  });

  it('writes a held-open sysctl file (SysctlFile) of a namespace from outside it, and only there', () => {
    const ns = Netns.fromName(lab.world);
    const range = ns.run(() => SysctlFile.openHere(['net', 'ipv4', 'ip_local_port_range']));
    try {
      const hostBefore = host.readSysctl('net.ipv4.ip_local_port_range');
      const rootBefore = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8');
      range.write('43000 43015'); // from this thread's own namespace
      expect(nsExec(lab.world, 'sysctl', ['-n', 'net.ipv4.ip_local_port_range']).trim().split(/\s+/)).toEqual(['43000', '43015']);
      range.write('43016 43031'); // again: written from the start each time
      expect(nsExec(lab.world, 'sysctl', ['-n', 'net.ipv4.ip_local_port_range']).trim().split(/\s+/)).toEqual(['43016', '43031']);
      expect(host.readSysctl('net.ipv4.ip_local_port_range')).toBe(hostBefore);
      expect(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')).toBe(rootBefore);
      expect(() => range.write('2 1')).toThrow(/EINVAL/); // the kernel's own check
    } finally {
      range.close();
    }
    expect(() => range.write('43000 43015')).toThrow(/closed/);
    expect(() => SysctlFile.openHere('kernel.hostname')).toThrow(/not a net\.\* key/);
  });
});
