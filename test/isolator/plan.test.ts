/** The pure planner: handles, buckets, mirror chunks and the unique-flow layout, and their encoding. */
import { describe, expect, it } from 'vitest';
import { Writer, decodeBody } from '../../src/netlink/index.js';
import { FLOW, FLOW_TABLE_HTID, MIRRORS_PER_FILTER, PORT_SUBTABLE_HTID_BASE, PORT_SUBTABLE_LINK_NODE, PORT_TABLE_HTID, TC_H_ROOT, allocateNode, bucketsOf, isPortFilterHandle, portTablePlan, portTableSlots, flowQdiscHandle, flowSharedPlan, hostPortFilters, keyDport, keySport, mirrorChunk, u32HandleOf } from '../../src/isolator/plan.js';
import type { NodeUse, TcPlan } from '../../src/isolator/plan.js';
import { tcRequest } from '../../src/isolator/tc-requests.js';
import { blockFromBeginEnd } from '../../src/isolator/port-blocks.js';
import { tcMessage } from '../../src/tc/schemas/tca.js';

const host = { ip: '198.18.0.2', mac: '02:00:00:00:00:01', eth0: 2, lo: 1 };
const view = { veth: 1_000_001, cEth0: 1_000_001, cLo: 1, blocks: [], fqCodel: false };
const ctx = { psched: { tickInUsec: 1, clockFactor: 1, hz: 1000 }, mtu: 1500 };
const decoded = (p: TcPlan) => {
  const w = new Writer();
  tcRequest(p, 'add', ctx).encode!(w);
  return decodeBody(tcMessage, w.toBuffer()) as any;
};
const uses = (): Record<'eth0' | 'lo' | 'egress', NodeUse> => ({ eth0: new Map(), lo: new Map(), egress: new Map() });

describe('port keys and buckets', () => {
  it('encodes Mesos §4 blocks as dport and sport keys at offset 20', () => {
    const b = blockFromBeginEnd(31232, 31487);
    expect(keyDport(b)).toEqual({ off: 20, val: 0x7a00, mask: 0xff00 });
    expect(keySport(b)).toEqual({ off: 20, val: 0x7a000000, mask: 0xff000000 });
  });
  it('places a block in every 256-port bucket it spans', () => {
    expect(bucketsOf(blockFromBeginEnd(31000, 31007))).toEqual([0x79]);
    expect(bucketsOf(blockFromBeginEnd(31232, 31743))).toEqual([0x7a, 0x7b]);
    expect(bucketsOf(blockFromBeginEnd(32768, 65535))).toHaveLength(128);
  });
  it('chooses distinct nodes per table bucket, below the level-2 link node, and refuses a full one', () => {
    const use: NodeUse = new Map();
    const a = u32HandleOf(0x207, 3, 0);
    const b = u32HandleOf(0x207, 4, 0);
    expect([allocateNode(use, a), allocateNode(use, a), allocateNode(use, b)]).toEqual([1, 2, 1]);
    for (let i = 3; i < 0xfff; i++) allocateNode(use, a);
    expect(() => allocateNode(use, a)).toThrow(/No available handle exists in bucket 3 of table 207:/);
    expect(use.get(a)!.has(PORT_SUBTABLE_LINK_NODE)).toBe(false);
  });
  it('puts blocks of 256 ports or more in level 1, smaller ones in the level-2 table of their bucket', () => {
    const slot = (h: number) => `${(h >>> 20).toString(16)}:${((h >>> 12) & 0xff).toString(16)}:`;
    expect(portTableSlots(blockFromBeginEnd(31232, 31743)).map(slot)).toEqual(['100:7a:', '100:7b:']);
    expect(portTableSlots(blockFromBeginEnd(31232, 31487)).map(slot)).toEqual(['100:7a:']);
    expect(portTableSlots(blockFromBeginEnd(31000, 31007)).map(slot)).toEqual(['279:6:', '279:7:']); // 31000 = 0x7918: buckets 0x18>>2, 0x1c>>2
    expect(portTableSlots(blockFromBeginEnd(31008, 31023)).map(slot)).toEqual(['279:8:', '279:9:', '279:a:', '279:b:']); // a 16-port block: 4 buckets
    expect(portTableSlots(blockFromBeginEnd(31010, 31011)).map(slot)).toEqual(['279:8:']);
    expect(portTableSlots(blockFromBeginEnd(30976, 31231)).map(slot)).toEqual(['100:79:']); // 256 ports: level 1
    expect(portTableSlots(blockFromBeginEnd(30976, 31103))).toHaveLength(32);
    expect(portTableSlots(blockFromBeginEnd(80, 80)).map(slot)).toEqual(['200:14:']);
  });
  it('links every level-1 bucket to its level-2 table from node fff, after the block filters', () => {
    const plan = portTablePlan(host, 'eth0');
    const tables = plan.filter((p) => p.divisor !== undefined);
    expect(tables.map((t) => [t.handle, t.divisor])).toEqual([[u32HandleOf(PORT_TABLE_HTID, 0, 0), 256], ...Array.from({ length: 256 }, (_, b) => [u32HandleOf(PORT_SUBTABLE_HTID_BASE + b, 0, 0), 64])]);
    const sublinks = plan.filter((p) => p.link !== undefined && p.handle !== undefined);
    expect(sublinks).toHaveLength(256);
    const m = decoded(sublinks[0x79]!);
    expect(m.header.handle).toBe(u32HandleOf(PORT_TABLE_HTID, 0x79, 0xfff));
    expect(m.attrs.options).toMatchObject({ hash: u32HandleOf(PORT_TABLE_HTID, 0x79, 0), link: u32HandleOf(0x279, 0, 0), sel: { hoff: 20, hmask: 0xfc } });
    // Tables exist before anything links to them; the root link comes last.
    const index = (h: number) => plan.findIndex((p) => p.handle === h || p.link === h);
    expect(index(u32HandleOf(0x279, 0, 0))).toBeLessThan(plan.indexOf(sublinks[0x79]!));
    expect(plan.at(-1)).toMatchObject({ link: u32HandleOf(PORT_TABLE_HTID, 0, 0), hashMask: 0xff00 });
  });
  it('gives each host filter a handle in its table bucket, on eth0 and lo', () => {
    const fs = hostPortFilters(host, view, [blockFromBeginEnd(31000, 31007), blockFromBeginEnd(31232, 31743)], uses());
    expect(fs.map((f) => `${f.devRole} ${(f.handle! >>> 20).toString(16)}:${((f.handle! >>> 12) & 0xff).toString(16)}:${f.handle! & 0xfff}`)).toEqual([
      'eth0 279:6:1', 'eth0 279:7:1', 'eth0 100:7a:1', 'eth0 100:7b:1', 'lo 279:6:1', 'lo 279:7:1', 'lo 100:7a:1', 'lo 100:7b:1',
    ]);
    const m = decoded(fs[0]!);
    expect(m.header.handle >>> 20).toBe(0x279);
    expect(m.attrs.options.hash).toBe(u32HandleOf(0x279, 6, 0));
    expect(m.attrs.options.sel.keys).toEqual([{ mask: 0xfff8, val: 31000, off: 20, offmask: 0 }]);
    expect(m.attrs.options.act[0].options.parms).toMatchObject({ eaction: 1, action: 4, ifindex: 1_000_001 });
    expect(decoded(fs[2]!).attrs.options.hash).toBe(u32HandleOf(PORT_TABLE_HTID, 0x7a, 0));
  });
  it('tells container port filters from the tables and links', () => {
    expect(isPortFilterHandle(u32HandleOf(0x279, 1, 1))).toBe(true);
    expect(isPortFilterHandle(u32HandleOf(PORT_TABLE_HTID, 0x7a, 1))).toBe(true);
    expect(isPortFilterHandle(u32HandleOf(PORT_TABLE_HTID, 0x7a, 0xfff))).toBe(false);
    expect(isPortFilterHandle(u32HandleOf(0x279, 0, 0))).toBe(false);
    expect(isPortFilterHandle(u32HandleOf(0x110, 0, 1))).toBe(false);
    expect(isPortFilterHandle(u32HandleOf(0x800, 0, 0x800))).toBe(false);
  });
});

describe('mirror chunks', () => {
  it(`mirror to at most ${MIRRORS_PER_FILTER} veths, the last continuing classification`, () => {
    const p = mirrorChunk(host, 'arp', 1, [11, 12, 13]);
    expect(p.handle).toBe(u32HandleOf(0x110, 0, 2));
    const acts = decoded(p).attrs.options.act.map((a: any) => a.options.parms.action);
    expect(acts).toEqual([3, 3, -1]); // PIPE, PIPE, UNSPEC (continue)
    expect(() => mirrorChunk(host, 'icmp', 0, Array.from({ length: MIRRORS_PER_FILTER + 1 }, (_, i) => i + 10))).toThrow(new RegExp(`1\\.\\.${MIRRORS_PER_FILTER} devices`));
  });
});

describe('unique egress flows (Mesos §5.4)', () => {
  it('picks the fq_codel handle from the classifier parent as Mesos does', () => {
    expect(flowQdiscHandle(TC_H_ROOT)).toBe(0x00010000);
    expect(flowQdiscHandle(0x00050001)).toBe(0x00060000);
  });
  it('lays out ARP/ICMP → flow 2, a catch-all → flow 1 and the per-container flow table', () => {
    const plan = flowSharedPlan(host, TC_H_ROOT, 0x10000);
    expect(plan[0]).toMatchObject({ type: 'qdisc', kind: 'fq_codel', parent: TC_H_ROOT, handle: 0x10000 });
    const filters = plan.slice(1).map(decoded);
    expect(filters.map((f: any) => [f.header.info >>> 16, f.header.info & 0xffff, f.attrs.options.classid])).toEqual([
      [1026, 0x0300, 0x10001],
      [258, 0x0608, 0x10002],
      [514, 0x0008, 0x10002],
      [771, 0x0008, undefined],
      [771, 0x0008, undefined],
    ]);
    expect(filters[3].attrs.options.divisor).toBe(256);
    expect(filters[4].attrs.options).toMatchObject({ link: FLOW_TABLE_HTID << 20, sel: { hoff: 20, hmask: 0xff000000 } });
  });
  it("classifies a container's source ports into its own flow", () => {
    const fs = hostPortFilters(host, view, [blockFromBeginEnd(30016, 30031)], uses(), { qdisc: 0x10000, flowId: FLOW.MIN_CONTAINER });
    const egress = fs.filter((f) => f.devRole === 'egress');
    expect(egress).toHaveLength(1);
    const m = decoded(egress[0]!);
    expect(m.header.parent).toBe(0x10000);
    expect(m.attrs.options).toMatchObject({ classid: 0x10003, hash: u32HandleOf(FLOW_TABLE_HTID, 0x75, 0), sel: { keys: [{ off: 20, val: 30016 << 16, mask: 0xfff00000 }] } });
  });
});
