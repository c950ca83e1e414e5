/**
 * The netlink core against the real kernel, inside lab namespaces: dumps compared with `ip -j`,
 * extended acks verbatim, a 1000-request batch with one bad request, netns switching and pinning,
 * and multicast events with overrun.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  NLM_F,
  NetlinkError,
  NetlinkSession,
  NetlinkSubscription,
  Netns,
  createNetns,
  decodeBody,
  encodeBody,
  removeNetns,
  readFileInNetns,
  type NetlinkMessage,
  type Request,
} from '../../src/netlink/index.js';
import { AF, IFF, RTM, RTM_NAMES, RTNLGRP, addressMessage, linkMessage } from '../../src/rtnl/index.js';
import { ip, ipFails, ipJson } from '../helpers/lab.js';
import { LAB_PREFIX, Lab, sweepStaleLabs } from '../../src/lab/index.js';

let lab: Lab;
let session: NetlinkSession;

beforeAll(() => {
  sweepStaleLabs();
  lab = new Lab();
  session = NetlinkSession.open({ netns: Netns.fromName(lab.host), typeNames: RTM_NAMES });
});
afterAll(() => {
  session?.close();
  lab?.destroy();
});

const dumpLinks = (s: NetlinkSession = session) =>
  s.dump({ type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, {}) }, { decode: (m) => decodeBody(linkMessage, m.payload) });

const newLink = (attrs: Parameters<typeof encodeBody<any, any>>[2]['attrs']): Request => ({
  type: RTM.NEWLINK,
  flags: NLM_F.CREATE | NLM_F.EXCL,
  schema: linkMessage,
  encode: (w) => encodeBody(w, linkMessage, { attrs }),
});

/**
 * The flag names `ip` prints: IFF_* bits without RUNNING, plus NO-CARRIER (up but not running)
 * and M-DOWN (the link it is attached to, e.g. a veth peer here, is down).
 */
function ipFlagNames(flags: number, linkedFlags: number | undefined): string[] {
  const names = Object.entries(IFF)
    .filter(([name, bit]) => flags & bit && name !== 'RUNNING')
    .map(([name]) => name);
  if (flags & IFF.UP && !(flags & IFF.RUNNING)) names.push('NO-CARRIER');
  if (linkedFlags !== undefined && !(linkedFlags & IFF.UP)) names.push('M-DOWN');
  return names.sort();
}

describe('RTM_GETLINK dump in a lab namespace', () => {
  it('decodes to the same links `ip -j -s link` shows', async () => {
    ip(lab.host, 'link', 'add', 'v-cmp0', 'type', 'veth', 'peer', 'name', 'v-cmp1');
    ip(lab.host, 'link', 'set', 'v-cmp0', 'mtu', '1400', 'address', '02:00:00:00:00:42');
    const ours = await dumpLinks();
    const theirs = ipJson<any[]>(lab.host, '-d', '-s', 'link', 'show');
    const later = await dumpLinks(); // counters may move in between (IPv6 DAD/MLD/RS on fresh links)
    expect(ours.map((l) => l.attrs.ifname).sort()).toEqual(theirs.map((l) => l.ifname).sort());
    expect(ours.length).toBeGreaterThanOrEqual(4); // lo, eth0, v-cmp0, v-cmp1
    for (const t of theirs) {
      const o = ours.find((l) => l.header.index === t.ifindex)!;
      expect(o.attrs.ifname).toBe(t.ifname);
      expect(o.attrs.mtu).toBe(t.mtu);
      expect(o.attrs.address).toBe(t.address);
      expect(o.attrs.txqlen).toBe(t.txqlen);
      expect(o.attrs.group === 0 ? 'default' : String(o.attrs.group)).toBe(t.group);
      const linked = o.attrs.link && o.attrs.linkNetnsid === undefined ? ours.find((l) => l.header.index === o.attrs.link) : undefined;
      expect(ipFlagNames(o.header.flags, linked?.header.flags)).toEqual([...t.flags].sort());
      expect(o.attrs.linkinfo?.kind).toBe(t.linkinfo?.info_kind);
      const l = later.find((x) => x.header.index === t.ifindex)!;
      expect(o.attrs.stats64!.rxBytes <= BigInt(t.stats64.rx.bytes) && BigInt(t.stats64.rx.bytes) <= l.attrs.stats64!.rxBytes).toBe(true);
      expect(o.attrs.stats64!.txPackets <= BigInt(t.stats64.tx.packets) && BigInt(t.stats64.tx.packets) <= l.attrs.stats64!.txPackets).toBe(true);
    }
    expect(ours.find((l) => l.attrs.ifname === 'v-cmp0')!.attrs.address).toBe('02:00:00:00:00:42');
  });

  it('works under strict checking with a filtered request (kind filter via IFLA_LINKINFO)', async () => {
    const vethOnly = await session.dump(
      { type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, { attrs: { linkinfo: { kind: 'veth' } } }) },
      { decode: (m) => decodeBody(linkMessage, m.payload).attrs.ifname },
    );
    expect(vethOnly).not.toContain('lo');
    expect(vethOnly).toContain('eth0');
  });

  it('answers the synchronous fast path like the asynchronous one', async () => {
    const get: Request = { type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, { attrs: { ifname: 'lo' } }) };
    const decode = (m: NetlinkMessage) => decodeBody(linkMessage, m.payload).header.index;
    expect(session.requestSync(get, { decode }).replies).toEqual((await session.request(get, { decode })).replies);
    expect(() => session.requestSync(newLink({ ifname: 'v-s', linkinfo: { kind: 'nosuchkind' } }))).toThrow(NetlinkError);
  });

  it('decodes a GET of one link by name, with its reply before the ACK', async () => {
    const r = await session.request(
      { type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, { attrs: { ifname: 'eth0' } }) },
      { decode: (m: NetlinkMessage) => decodeBody(linkMessage, m.payload) },
    );
    expect(r.replies).toHaveLength(1);
    expect(r.replies[0]!.header.index).toBe(ipJson(lab.host, 'link', 'show', 'eth0')[0].ifindex);
  });
});

describe('kernel refusals', () => {
  it('carry the extended-ack text verbatim, as `ip` prints it', async () => {
    const err = await session.request(newLink({ ifname: 'v-bad', linkinfo: { kind: 'nosuchkind' } })).catch((e) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.code).toBe('EOPNOTSUPP');
    const ipText = ipFails(lab.host, 'link', 'add', 'v-bad', 'type', 'nosuchkind');
    expect(ipText).toBe(`Error: ${err.extack.message}.`);
  });

  it('name the offending attribute from NLMSGERR_ATTR_OFFS, nested paths included', async () => {
    const tooLong = await session.request(newLink({ ifname: 'x'.repeat(20), linkinfo: { kind: 'veth' } })).catch((e) => e);
    expect(tooLong.extack.message).toBe('Attribute failed policy validation');
    expect(tooLong.extack.attributePath).toEqual(['IFLA_IFNAME']);
    const peer = await session
      .request(newLink({ ifname: 'v-p', linkinfo: { kind: 'veth', data: { peer: { attrs: { ifname: 'y'.repeat(30) } } } } }))
      .catch((e) => e);
    expect(peer.extack.attributePath).toEqual(['IFLA_LINKINFO', 'IFLA_INFO_DATA', 'VETH_INFO_PEER']);
  });

  it('map errno to codes: EEXIST for a duplicate link', async () => {
    ip(lab.host, 'link', 'add', 'v-dup0', 'type', 'veth', 'peer', 'name', 'v-dup1');
    const err = await session.request(newLink({ ifname: 'v-dup0', linkinfo: { kind: 'veth' } })).catch((e) => e);
    expect(err.code).toBe('EEXIST');
    expect(err.isExists()).toBe(true);
  });
});

describe('batches against the kernel', () => {
  it('1000 requests with one bad one yield 999 successes and one typed error', async () => {
    ip(lab.host, 'link', 'add', 'v-batch', 'type', 'veth', 'peer', 'name', 'v-batch1');
    const index = ipJson(lab.host, 'link', 'show', 'v-batch')[0].ifindex as number;
    const reqs: Request[] = [];
    for (let i = 0; i < 1000; i++) {
      const addr = `198.18.${10 + (i >> 8)}.${i & 255}`;
      const bad = i === 617;
      reqs.push({
        type: RTM.NEWADDR,
        flags: NLM_F.CREATE | NLM_F.EXCL,
        schema: addressMessage,
        encode: (w) =>
          encodeBody(w, addressMessage, { header: { family: AF.INET, prefixlen: 32, index: bad ? 999_999 : index }, attrs: { local: addr, address: addr } }),
      });
    }
    const results = await session.batch(reqs);
    expect(results).toHaveLength(1000);
    expect(results.filter((r) => r.ok)).toHaveLength(999);
    const bad = results[617]!;
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.error).toBeInstanceOf(NetlinkError);
      expect((bad.error as NetlinkError).code).toBe('ENODEV');
      // Kernels before 6.3 (Debian 12's 6.1) refuse with ENODEV and no extended-ack text.
      expect([undefined, 'ipv4: Device not found']).toContain((bad.error as NetlinkError).extack?.message);
    }
    const addrs = ipJson<any[]>(lab.host, 'addr', 'show', 'dev', 'v-batch')[0].addr_info.filter((a: any) => a.family === 'inet');
    expect(addrs).toHaveLength(999);
    expect(addrs.map((a: any) => a.local)).not.toContain('198.18.12.105'); // i = 617
  });
});

describe('network namespaces', () => {
  it('opens a socket inside a namespace and returns the thread home, even when the function throws', () => {
    const home = statSync('/proc/thread-self/ns/net').ino;
    const target = Netns.fromName(lab.world);
    expect(target.run(() => statSync('/proc/thread-self/ns/net').ino)).toBe(target.inode);
    expect(() =>
      target.run(() => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(statSync('/proc/thread-self/ns/net').ino).toBe(home);
    expect(() => target.run((async () => 1) as () => unknown)).toThrow(/synchronous/);
    expect(statSync('/proc/thread-self/ns/net').ino).toBe(home);
    target.close();
  });

  it('reads /proc/sys/net of the namespace it was asked for', () => {
    ip(lab.world, 'link', 'set', 'eth0', 'mtu', '1400');
    execFileSync('ip', ['netns', 'exec', lab.world, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=40000 40999']);
    const text = readFileInNetns(Netns.fromName(lab.world), '/proc/sys/net/ipv4/ip_local_port_range');
    expect(text.trim().split(/\s+/)).toEqual(['40000', '40999']);
  });

  it('creates, pins and removes a namespace visible to `ip netns`', async () => {
    const name = `${LAB_PREFIX}${process.pid}-pin`;
    const ns = createNetns(name);
    try {
      expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).toContain(name);
      expect(() => createNetns(name)).toThrow(/EEXIST/);
      const s = NetlinkSession.open({ netns: ns });
      const links = await dumpLinks(s);
      s.close();
      expect(links.map((l) => l.attrs.ifname)).toEqual(['lo']);
      expect(ns.inode).not.toBe(statSync('/proc/thread-self/ns/net').ino);
    } finally {
      ns.close();
      expect(removeNetns(name)).toBe(true);
    }
    expect(existsSync(`/run/netns/${name}`)).toBe(false);
    expect(removeNetns(name)).toBe(false);
  });

  it('finds the namespace of a process by pid, and accepts an open fd', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('ip', ['netns', 'exec', lab.world, 'sleep', '30'], { stdio: 'ignore' });
    try {
      const world = Netns.fromName(lab.world);
      let byPid: Netns | undefined;
      for (let i = 0; i < 100; i++) {
        byPid = Netns.fromPid(child.pid!);
        if (byPid.inode === world.inode) break; // ip netns exec enters the namespace after exec
        byPid.close();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(byPid!.inode).toBe(world.inode);
      const byFd = Netns.fromFd(world.fd);
      expect(byFd.inode).toBe(world.inode);
      byPid!.close();
      world.close();
    } finally {
      child.kill();
    }
  });

  it('rejects invalid namespace names and missing namespaces with clear errors', () => {
    expect(() => Netns.fromName('../etc')).toThrow(/invalid network namespace name/);
    expect(() => Netns.fromName(`${LAB_PREFIX}does-not-exist`).inode).toThrow(/ENOENT.*does-not-exist|does-not-exist.*ENOENT/);
  });
});

describe('multicast events', () => {
  it('delivers link notifications from the namespace subscribed to', async () => {
    const sub = NetlinkSubscription.open({ netns: Netns.fromName(lab.host), groups: [RTNLGRP.LINK] });
    try {
      const seen = new Promise<string>((resolve) => {
        sub.on('message', (m) => {
          if (m.type !== RTM.NEWLINK) return;
          const name = decodeBody(linkMessage, m.payload).attrs.ifname;
          if (name === 'v-ev0') resolve(name);
        });
      });
      ip(lab.host, 'link', 'add', 'v-ev0', 'type', 'veth', 'peer', 'name', 'v-ev1');
      expect(await Promise.race([seen, new Promise((r) => setTimeout(() => r('timeout'), 5000))])).toBe('v-ev0');
    } finally {
      sub.close();
    }
  });

  it('reports an overrun when notifications are lost', async () => {
    const sub = NetlinkSubscription.open({ netns: Netns.fromName(lab.host), groups: [RTNLGRP.IPV4_IFADDR], rcvbufBytes: 4096 });
    try {
      let overruns = 0;
      sub.on('overrun', () => overruns++);
      // The event loop is blocked while `ip -batch` runs, so the small buffer fills and drops.
      const cmds = Array.from({ length: 300 }, (_, i) => `addr add 198.18.20.${i % 250}/32 dev lo label lo:${i % 250}`)
        .slice(0, 250)
        .join('\n');
      execFileSync('ip', ['-n', lab.host, '-batch', '-'], { input: cmds });
      sub.drain();
      expect(overruns).toBeGreaterThan(0);
      expect(sub.overruns).toBe(overruns);
    } finally {
      sub.close();
    }
  });
});
