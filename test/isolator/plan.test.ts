/** The pure planner: handles, buckets, mirror chunks, the unique-flow layout, port plans and their difference, and their encoding. */
import { describe, expect, it } from 'vitest';
import { Writer, decodeBody } from '../../src/netlink/index.js';
import {
  EMPTY_PORT_PLAN,
  FLOW,
  FLOW_TABLE_HTID,
  MIRRORS_PER_FILTER,
  PORT_SUBTABLE_HTID_BASE,
  PORT_SUBTABLE_LINK_NODE,
  PORT_TABLE_HTID,
  bucketsOf,
  dstPort,
  hostNodes,
  isEmptyPlan,
  isPortFilterHandle,
  nextHostPortFilters,
  planDiff,
  portPlan,
  portTablePlan,
  portTableSlots,
  flowQdiscHandle,
  flowSharedPlan,
  hostPortFilters,
  mirrorChunk,
  srcPort,
  tcObjectRequest,
} from '../../src/isolator/plan.js';
import type { TcObject } from '../../src/isolator/plan.js';
import { blockFromBeginEnd, portSetBlocks } from '../../src/isolator/port-blocks.js';
import { PortSet } from '../../src/isolator/port-set.js';
import { TC_H, U32NodeAllocator, packMatches, u32Handle } from '../../src/tc/index.js';
import type { U32FilterSpec } from '../../src/tc/index.js';
import type { RuleSpec } from '../../src/rtnl/index.js';
import { tcMessage } from '../../src/tc/schemas/tca.js';

const host = { ip: '198.18.0.2', mac: '02:00:00:00:00:01', eth0: 2, lo: 1 };
const view = { veth: 1_000_001, cEth0: 1_000_001, cLo: 1, blocks: [], fqCodel: false, mtu: 1500, selfRouting: true };
const ctx = { psched: { tickInUsec: 1, clockFactor: 1, hz: 1000 } };
const decoded = (p: TcObject | U32FilterSpec) => {
  const w = new Writer();
  tcObjectRequest('type' in p ? p : { type: 'filter', spec: p }, 'add', ctx).encode!(w);
  return decodeBody(tcMessage, w.toBuffer()) as any;
};
const u32HandleOf = (htid: number, hash: number, node: number) => u32Handle({ htid, hash, node });

describe('port keys and buckets', () => {
  it('encodes Mesos §4 blocks as dport and sport keys at offset 20', () => {
    const b = blockFromBeginEnd(31232, 31487);
    expect(packMatches([dstPort(b)])).toEqual([{ off: 20, val: 0x7a00, mask: 0xff00, offmask: 0 }]);
    expect(packMatches([srcPort(b)])).toEqual([{ off: 20, val: 0x7a000000, mask: 0xff000000, offmask: 0 }]);
  });
  it('places a block in every 256-port bucket it spans', () => {
    expect(bucketsOf(blockFromBeginEnd(31000, 31007))).toEqual([0x79]);
    expect(bucketsOf(blockFromBeginEnd(31232, 31743))).toEqual([0x7a, 0x7b]);
    expect(bucketsOf(blockFromBeginEnd(32768, 65535))).toHaveLength(128);
  });
  it('chooses distinct nodes per table bucket, below the level-2 link node, and refuses a full one', () => {
    const use: U32NodeAllocator = hostNodes().eth0;
    const a = u32HandleOf(0x207, 3, 0);
    const b = u32HandleOf(0x207, 4, 0);
    const node = (ht: number) => use.allocate({ ht }) & 0xfff;
    expect([node(a), node(a), node(b)]).toEqual([1, 2, 1]);
    const seen = new Set<number>();
    for (let i = 3; i < 0xfff; i++) seen.add(node(a));
    expect(() => use.allocate({ ht: a })).toThrow(/no free u32 handle in bucket 207:3, whose nodes 1\.\.ffe/);
    expect(seen.has(PORT_SUBTABLE_LINK_NODE)).toBe(false);
    // A node given back is the next one handed out.
    use.release({ ht: a }, 7);
    expect(node(a)).toBe(7);
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
    expect(tables.map((t) => [t.handle, t.divisor])).toEqual([
      [u32HandleOf(PORT_TABLE_HTID, 0, 0), 256],
      ...Array.from({ length: 256 }, (_, b) => [u32HandleOf(PORT_SUBTABLE_HTID_BASE + b, 0, 0), 64]),
    ]);
    const sublinks = plan.filter((p) => p.link !== undefined && p.handle !== undefined);
    expect(sublinks).toHaveLength(256);
    const m = decoded(sublinks[0x79]!);
    expect(m.header.handle).toBe(u32HandleOf(PORT_TABLE_HTID, 0x79, 0xfff));
    expect(m.attrs.options).toMatchObject({ hash: u32HandleOf(PORT_TABLE_HTID, 0x79, 0), link: u32HandleOf(0x279, 0, 0), sel: { hoff: 20, hmask: 0xfc } });
    // Tables exist before anything links to them; the root link comes last.
    const index = (h: number) => plan.findIndex((p) => p.handle === h || p.link === h);
    expect(index(u32HandleOf(0x279, 0, 0))).toBeLessThan(plan.indexOf(sublinks[0x79]!));
    expect(plan.at(-1)).toMatchObject({ link: u32HandleOf(PORT_TABLE_HTID, 0, 0), hashkey: { mask: 0xff00, at: 20 } });
  });
  it('gives each host filter a handle in its table bucket, on eth0 and lo', () => {
    const fs = hostPortFilters(host, view, [blockFromBeginEnd(31000, 31007), blockFromBeginEnd(31232, 31743)], hostNodes());
    expect(fs.map((f) => `${f.role} ${(f.spec.handle >>> 20).toString(16)}:${((f.spec.handle >>> 12) & 0xff).toString(16)}:${f.spec.handle & 0xfff}`)).toEqual([
      'eth0 279:6:1',
      'eth0 279:7:1',
      'eth0 100:7a:1',
      'eth0 100:7b:1',
      'lo 279:6:1',
      'lo 279:7:1',
      'lo 100:7a:1',
      'lo 100:7b:1',
      // ICMP errors quoting the blocks' source ports: one filter per 256-port bucket, on eth0 and lo.
      'eth0Icmp 112:79:1',
      'eth0Icmp 112:7a:1',
      'eth0Icmp 112:7b:1',
      'loIcmp 112:79:1',
      'loIcmp 112:7a:1',
      'loIcmp 112:7b:1',
    ]);
    const e = decoded(fs[8]!.spec);
    expect(e.header.parent).toBe(0xffff0000);
    expect(e.header.info >>> 16).toBe(0x0202); // the ICMP priority, as the table's link
    expect(e.attrs.options.sel.keys).toEqual([{ mask: 0xfff80000, val: 31000 << 16, off: 48, offmask: 0 }]);
    const m = decoded(fs[0]!.spec);
    expect(m.header.handle >>> 20).toBe(0x279);
    expect(m.attrs.options.hash).toBe(u32HandleOf(0x279, 6, 0));
    expect(m.attrs.options.sel.keys).toEqual([{ mask: 0xfff8, val: 31000, off: 20, offmask: 0 }]);
    expect(m.attrs.options.act[0].options.parms).toMatchObject({ eaction: 1, action: 4, ifindex: 1_000_001 });
    expect(decoded(fs[2]!.spec).attrs.options.hash).toBe(u32HandleOf(PORT_TABLE_HTID, 0x7a, 0));
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
    expect(() =>
      mirrorChunk(
        host,
        'icmp',
        0,
        Array.from({ length: MIRRORS_PER_FILTER + 1 }, (_, i) => i + 10),
      ),
    ).toThrow(new RegExp(`1\\.\\.${MIRRORS_PER_FILTER} devices`));
  });
});

describe('unique egress flows (Mesos §5.4)', () => {
  it('picks the fq_codel handle from the classifier parent as Mesos does', () => {
    expect(flowQdiscHandle(TC_H.ROOT)).toBe(0x00010000);
    expect(flowQdiscHandle(0x00050001)).toBe(0x00060000);
  });
  it('lays out ARP/ICMP → flow 2, a catch-all → flow 1 and the per-container flow table', () => {
    const plan = flowSharedPlan(host, TC_H.ROOT, 0x10000);
    expect(plan[0]).toMatchObject({ type: 'qdisc', spec: { kind: 'fq_codel', parent: TC_H.ROOT, handle: 0x10000 } });
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
    const fs = hostPortFilters(host, view, [blockFromBeginEnd(30016, 30031)], hostNodes(), { qdisc: 0x10000, flowId: FLOW.MIN_CONTAINER });
    const egress = fs.filter((f) => f.role === 'egress');
    expect(egress).toHaveLength(1);
    const m = decoded(egress[0]!.spec);
    expect(m.header.parent).toBe(0x10000);
    expect(m.attrs.options).toMatchObject({
      classid: 0x10003,
      hash: u32HandleOf(FLOW_TABLE_HTID, 0x75, 0),
      sel: { keys: [{ off: 20, val: 30016 << 16, mask: 0xfff00000 }] },
    });
  });
});

describe('port plans and their difference (update, destroy)', () => {
  const c = (ports: string, nodes = hostNodes()) => {
    const blocks = [blockFromBeginEnd(32768, 32783), ...portSetBlocks(PortSet.parse(ports))];
    const v = { ...view, blocks };
    return { v, nodes, plan: portPlan(host, v, hostPortFilters(host, v, blocks, nodes)) };
  };
  const ports = (specs: U32FilterSpec[]) =>
    specs.map((s) => s.matches!.find((m) => m.type === 'dstPort' || m.type === 'srcPort')).map((m) => (m as { port: number }).port);

  it('removes and adds only the filters of the blocks that change; kept blocks keep their host handles', () => {
    const old = c('[31000-31011]'); // [31000-31007] [31008-31011]
    const v = { ...view, blocks: [blockFromBeginEnd(32768, 32783), ...portSetBlocks(PortSet.parse('[31008-31015]'))] }; // [31008-31015]
    const hostPorts = nextHostPortFilters(host, v, old.plan.hostPorts, old.nodes);
    const next = portPlan(host, v, hostPorts);
    const gone = planDiff(old.plan, next);
    const added = planDiff(next, old.plan);
    expect(ports(gone.veth)).toEqual([31000, 31000, 31000, 31008, 31008, 31008]);
    expect(ports(added.veth)).toEqual([31008, 31008, 31008]);
    expect(added.veth.every((s) => s.matches!.some((m) => m.type === 'srcPort' && m.mask === 0xfff8))).toBe(true);
    // The container's rules of its own ports: TCP and UDP a block.
    const rulePorts = (rs: RuleSpec[]) => rs.map((r) => `${r.ipProto}:${r.dport!.begin}-${r.dport!.end}`);
    expect(rulePorts(gone.container)).toEqual(['6:31000-31007', '17:31000-31007', '6:31008-31011', '17:31008-31011']);
    expect(rulePorts(added.container)).toEqual(['6:31008-31015', '17:31008-31015']);
    // The ephemeral block's host filters are kept, with their handles; the new block's get new ones.
    const eph = (fs: typeof hostPorts) => fs.filter((f) => f.block.port === 32768).map((f) => f.spec.handle);
    expect(eph(hostPorts)).toEqual(eph(old.plan.hostPorts));
    expect(gone.hostPorts.map((f) => `${f.role} ${f.block.port}`)).toEqual([
      'eth0 31000',
      'eth0 31000',
      'eth0 31008',
      'lo 31000',
      'lo 31000',
      'lo 31008',
      'eth0Icmp 31000',
      'eth0Icmp 31008',
      'loIcmp 31000',
      'loIcmp 31008',
    ]);
    expect(added.hostPorts.map((f) => `${f.role} ${f.block.port}`)).toEqual([
      'eth0 31008',
      'eth0 31008',
      'lo 31008',
      'lo 31008',
      'eth0Icmp 31008',
      'loIcmp 31008',
    ]);
    expect(isEmptyPlan(planDiff(next, next))).toBe(true);
  });
  it('destroys everything: a plan against nothing', () => {
    const { plan } = c('[8080]');
    expect(planDiff(plan, EMPTY_PORT_PLAN)).toEqual(plan);
    expect(isEmptyPlan(planDiff(EMPTY_PORT_PLAN, plan))).toBe(true);
  });
});
