/**
 * RTM_GETSTATS (IFLA_STATS_LINK_64): golden bytes against what `ip stats … group link` sends and
 * the kernel answers (test/golden/rtnl/stats, captured by test/golden/capture-stats.ts), malformed
 * replies, and the real kernel in a lab: counters that move with traffic, equal to RTM_GETLINK's
 * IFLA_STATS64 and to `ip -j -s -s link`.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeError, NetlinkError, Writer, decodeBody, encodeBody, type MessageInput } from '../../src/netlink/index.js';
import { RTM, Rtnl, decodeLinkStats64, statsMessage, statsRequests, type LinkStats64 } from '../../src/rtnl/index.js';
import { fromJsonValue, loadGolden, toJsonValue } from '../helpers/golden.js';
import { ipJson } from '../helpers/lab.js';
import { icmpEcho } from '../helpers/probe.js';
import { quietSnapshot } from '../helpers/quiet-snapshot.js';
import { Lab, sweepStaleLabs } from '../../src/lab/index.js';

const vectors = new Map(loadGolden('rtnl/stats').map((v) => [v.name, v]));
const vector = (name: string) => {
  const v = vectors.get(name);
  if (!v) throw new Error(`golden vector rtnl/stats/${name} is missing`);
  return v;
};
const body = (name: string) => Buffer.from(vector(name).hex, 'hex').subarray(16);

function encodeMessage(type: number, flags: number, value: MessageInput<any, any>): string {
  const w = new Writer();
  const start = w.beginMessage(type, flags, 0, 0);
  encodeBody(w, statsMessage, value);
  w.endMessage(start);
  return w.toBuffer().toString('hex');
}

/** A request builder's body bytes (what follows the nlmsghdr). */
function requestBody(req: ReturnType<typeof statsRequests.get>): string {
  const w = new Writer();
  req.encode!(w);
  return w.toBuffer().toString('hex');
}

describe('golden vectors: rtnl/stats', () => {
  it('exist: both requests and both replies', () => expect([...vectors.keys()].sort()).toHaveLength(4));
  describe.each([...vectors.values()].map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const bytes = Buffer.from(v.hex, 'hex');
    it('decodes to the recorded object, encodes it to the same bytes', () => {
      expect(toJsonValue(decodeBody(statsMessage, bytes.subarray(16), { strict: true }))).toEqual(v.decoded);
      expect(encodeMessage(v.type, v.flags, fromJsonValue(v.decoded) as MessageInput<any, any>)).toBe(v.hex);
      expect(encodeMessage(v.type, v.flags, decodeBody(statsMessage, bytes.subarray(16)) as MessageInput<any, any>)).toBe(v.hex);
    });
  });

  it('builds the requests iproute2 sends: a get by ifindex and a dump, IFLA_STATS_LINK_64 only', () => {
    const get = vector('getstats-dev-group-link');
    const dump = vector('getstats-dump-group-link');
    expect([get.type, dump.type]).toEqual([RTM.GETSTATS, RTM.GETSTATS]);
    expect(requestBody(statsRequests.get(2))).toBe(get.hex.slice(32));
    expect(requestBody(statsRequests.dump())).toBe(dump.hex.slice(32));
    expect(() => statsRequests.get(0)).toThrow(/interface index/);
    expect(() => statsRequests.get(1.5)).toThrow(/interface index/);
  });

  it('decodes replies into the ifindex and LinkStats64 counters', () => {
    const lo = decodeLinkStats64(body('reply-newstats-lo-fresh-netns'));
    expect(lo.index).toBe(1);
    expect(Object.values(lo.stats).every((c) => c === 0n)).toBe(true);
    const eth0 = decodeLinkStats64(body('reply-newstats-eth0-after-pings'));
    expect(eth0.index).toBe(2);
    expect(eth0.stats).toEqual((fromJsonValue(vector('reply-newstats-eth0-after-pings').decoded) as any).attrs.link64);
    expect(eth0.stats.txPackets).toBeGreaterThanOrEqual(3n);
    expect(eth0.stats.rxBytes).toBeGreaterThan(0n);
  });
});

describe('malformed RTM_NEWSTATS bodies raise DecodeError', () => {
  const reply = body('reply-newstats-eth0-after-pings');
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a short if_stats_msg', reply.subarray(0, 8), /if_stats_msg needs 12 bytes, got 8/],
    ['no IFLA_STATS_LINK_64', reply.subarray(0, 12), /RTM_NEWSTATS: no IFLA_STATS_LINK_64/],
    ['a truncated attribute', reply.subarray(0, 100), /IFLA_STATS: attribute IFLA_STATS_LINK_64 has length 204, but 88 bytes remain/],
    ['a rtnl_link_stats64 too short', shrinkLink64(reply, 96), /IFLA_STATS_LINK_64: rtnl_link_stats64 needs 184 bytes, got 96/],
  ];
  it.each(cases)('%s', (_what, bytes, message) => {
    expect(() => decodeLinkStats64(bytes)).toThrow(DecodeError);
    expect(() => decodeLinkStats64(bytes)).toThrow(message);
  });
});

/** The reply with IFLA_STATS_LINK_64 cut to `size` payload bytes, its length field to match. */
function shrinkLink64(reply: Buffer, size: number): Buffer {
  const b = Buffer.from(reply.subarray(0, 12 + 4 + size));
  b.writeUInt16LE(4 + size, 12);
  return b;
}

/** `ip -j -s -s link`'s stats64 in LinkStats64 names (carrier_changes is IFLA_CARRIER_CHANGES, not a counter here). */
function fromIp(s: { rx: Record<string, number>; tx: Record<string, number> }): Partial<Record<keyof LinkStats64, bigint>> {
  const n = (v: number | undefined) => BigInt(v ?? 0);
  return {
    rxBytes: n(s.rx.bytes),
    rxPackets: n(s.rx.packets),
    rxErrors: n(s.rx.errors),
    rxDropped: n(s.rx.dropped),
    rxOverErrors: n(s.rx.over_errors),
    multicast: n(s.rx.multicast),
    rxLengthErrors: n(s.rx.length_errors),
    rxCrcErrors: n(s.rx.crc_errors),
    rxFrameErrors: n(s.rx.frame_errors),
    rxFifoErrors: n(s.rx.fifo_errors),
    rxMissedErrors: n(s.rx.missed_errors),
    txBytes: n(s.tx.bytes),
    txPackets: n(s.tx.packets),
    txErrors: n(s.tx.errors),
    txDropped: n(s.tx.dropped),
    txCarrierErrors: n(s.tx.carrier_errors),
    collisions: n(s.tx.collisions),
    txAbortedErrors: n(s.tx.aborted_errors),
    txFifoErrors: n(s.tx.fifo_errors),
    txWindowErrors: n(s.tx.window_errors),
    txHeartbeatErrors: n(s.tx.heartbeat_errors),
  };
}

const counters = (m: Map<number, LinkStats64>) => [...m].map(([i, s]) => `${i}:${s.rxPackets}:${s.txPackets}:${s.rxBytes}:${s.txBytes}`).join(' ');

describe('RTM_GETSTATS against the kernel', () => {
  let lab: Lab;
  let host: Rtnl;
  let eth0: number;
  const VETHS = 40;

  beforeAll(() => {
    sweepStaleLabs();
    lab = new Lab();
    host = Rtnl.open(lab.host);
    eth0 = ipJson<Array<{ ifindex: number }>>(lab.host, 'link', 'show', 'eth0')[0]!.ifindex;
    // Enough links that the dump spans several reply datagrams.
    const lines = Array.from({ length: VETHS }, (_, i) => `link add vs${i} type veth peer name vp${i}`).join('\n');
    execFileSync('ip', ['-n', lab.host, '-batch', '-'], { input: lines + '\n', stdio: ['pipe', 'ignore', 'pipe'] });
  });
  afterAll(() => {
    host?.close();
    lab?.destroy();
  });

  it('lists every link of the namespace, with counters that move with traffic', async () => {
    const all = await host.stats.list();
    const indexes = ipJson<Array<{ ifindex: number }>>(lab.host, 'link', 'show').map((l) => l.ifindex);
    expect([...all.keys()].sort((a, b) => a - b)).toEqual(indexes.sort((a, b) => a - b));
    expect(all.size).toBe(2 + 2 * VETHS);
    const before = (await host.stats.get(eth0)).txPackets;
    expect(icmpEcho(lab.host, '198.18.0.1', { count: 3, intervalMs: 100, waitMs: 1000 })).toMatchObject({ sent: 3, received: 3 });
    const after = await host.stats.list();
    expect(after.get(eth0)!.txPackets - before).toBeGreaterThanOrEqual(3n);
    expect(after.get(eth0)!.rxBytes).toBeGreaterThan(all.get(eth0)!.rxBytes);
  });

  it('reads the same counters as RTM_GETLINK’s IFLA_STATS64, for every link', async () => {
    // quietSnapshot's reading in between is synchronous; this one is our own RTM_GETLINK dump.
    let pair: { ours: Map<number, LinkStats64>; links: Awaited<ReturnType<typeof host.links.list>> } | undefined;
    for (let tries = 0; tries < 20 && !pair; tries++) {
      const ours = await host.stats.list();
      const links = await host.links.list();
      if (counters(await host.stats.list()) === counters(ours)) pair = { ours, links };
    }
    expect(pair, 'the counters never stood still for one RTM_GETLINK dump (20 tries)').toBeDefined();
    expect(pair!.links).toHaveLength(pair!.ours.size);
    for (const l of pair!.links) expect(pair!.ours.get(l.index), l.name).toEqual(l.stats);
  });

  it('equals `ip -j -s -s link` across a quiet snapshot', async () => {
    const { ours, theirs } = await quietSnapshot(
      () => host.stats.list(),
      () => ipJson<any[]>(lab.host, '-s', '-s', 'link', 'show'),
      counters,
    );
    expect(theirs.length).toBe(ours.size);
    for (const t of theirs) expect(ours.get(t.ifindex), t.ifname).toMatchObject(fromIp(t.stats64));
  });

  it('get rejects an unknown ifindex with ENODEV; find answers undefined', async () => {
    const missing = 0x7ffffff0;
    await expect(host.stats.get(missing)).rejects.toSatisfy((e: unknown) => e instanceof NetlinkError && e.code === 'ENODEV');
    expect(await host.stats.find(missing)).toBeUndefined();
    expect((await host.stats.find(eth0))?.txPackets).toBeGreaterThan(0n);
  });
});
