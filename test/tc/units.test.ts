/**
 * The pure parts of the tc layer: handles, rate math (against the tables tc sent), u32 key
 * packing and decoding (against every golden selector), port blocks (Mesos' worked examples),
 * bucket hashing, the node allocator, statistics, and the decoders under fuzzing.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError, Writer, decodeBody, encodeBody, type MessageSchema } from '../../src/netlink/index.js';
import {
  TC_H,
  TcInputError,
  U32NodeAllocator,
  actionMessage,
  decodeMatches,
  filterInfo,
  formatTcHandle,
  formatU32Handle,
  htbRateParams,
  packMatches,
  parseFilter,
  parsePsched,
  parseTcHandle,
  parseU32Handle,
  portBlockRange,
  portBlocks,
  rateTable,
  statsFromAttrs,
  tcHandle,
  tcMessage,
  u32Bucket,
  u32Handle,
  xmitsizeBytes,
  xmittimeTicks,
  type U32Attrs,
} from '../../src/tc/index.js';
import { toMesosStats } from '../../src/isolator/statistics.js';
import { fromJsonValue, loadGolden } from '../helpers/golden.js';
import { rng } from '../helpers/rng.js';

const vectors = loadGolden('tc');
const PSCHED = parsePsched('000003e8 00000040 000f4240 3b9aca00');

describe('tc handles', () => {
  it('compose, parse and format as tc does', () => {
    expect(tcHandle(1, 0x10)).toBe(0x10010);
    expect(parseTcHandle('1:10')).toBe(0x10010);
    expect(parseTcHandle('ffff:')).toBe(0xffff0000);
    expect(parseTcHandle(':5')).toBe(5);
    expect(parseTcHandle('root')).toBe(TC_H.ROOT);
    expect(parseTcHandle('ingress')).toBe(TC_H.INGRESS);
    expect(parseTcHandle('clsact')).toBe(TC_H.CLSACT);
    expect(parseTcHandle('none')).toBe(TC_H.UNSPEC);
    expect(formatTcHandle(0x10010)).toBe('1:10');
    expect(formatTcHandle(0xffff0000)).toBe('ffff:');
    expect(formatTcHandle(TC_H.INGRESS)).toBe('ffff:fff1');
    expect(formatTcHandle(TC_H.ROOT)).toBe('root');
    expect(formatTcHandle(0)).toBe('none');
  });
  it('refuse impossible handles with clear errors', () => {
    for (const bad of ['1', '10000:', '1:10000', 'x:1', '1:2:3', ':', '', -1, 2 ** 32, 1.5]) {
      expect(() => parseTcHandle(bad as never), String(bad)).toThrow(TcInputError);
    }
    expect(() => tcHandle(0x10000, 0)).toThrow(/major must be an integer in 0\.\.65535/);
  });
  it('parse repeated texts once, and refuse a bad one every time (failures are not remembered)', () => {
    for (let i = 0; i < 3; i++) {
      expect(parseTcHandle('ffff:')).toBe(0xffff0000);
      expect(() => parseTcHandle('x:1')).toThrow(/invalid tc handle "x:1"/);
      expect(packMatches([{ type: 'ipDst', address: '198.18.0.2/32' }])).toEqual([{ mask: 0xffffffff, val: 0xc6120002, off: 16, offmask: 0 }]);
      expect(() => packMatches([{ type: 'ipDst', address: '198.18.0.300/32' }])).toThrow('match 1: ipDst "198.18.0.300/32" is not an IPv4 address or prefix');
      expect(() => packMatches([{ type: 'ipSrc', address: '198.18.0.2/33' }])).toThrow('match 1: ipSrc "198.18.0.2/33" has an invalid prefix length');
    }
  });
  it('u32 handles: htid:hash:node', () => {
    expect(u32Handle({ htid: 0x800, node: 0x801 })).toBe(0x80000801);
    expect(parseU32Handle('800::801')).toBe(0x80000801);
    expect(parseU32Handle('2:7a:800')).toBe(0x0027a800);
    expect(parseU32Handle('2:')).toBe(0x00200000);
    expect(parseU32Handle('::801')).toBe(0x801);
    expect(formatU32Handle(0x80000801)).toBe('800::801');
    expect(formatU32Handle(0x0027a800)).toBe('2:7a:800');
    expect(formatU32Handle(0x00200000)).toBe('2:');
    for (const bad of ['1000::1', '1:100:1', '1:1:1000', '800', 'g::1', { htid: 0x1000 }])
      expect(() => parseU32Handle(bad as never), JSON.stringify(bad)).toThrow(TcInputError);
  });
  it('filter info is (priority << 16) | htons(protocol)', () => {
    expect(filterInfo(1, 0x0800)).toBe(0x00010008);
    expect(filterInfo(20, 0x0003)).toBe(0x00140300);
    expect(filterInfo(22, 0x86dd)).toBe(0x0016dd86);
  });
});

describe('rate math (tc_core.c)', () => {
  it('reads /proc/net/psched as iproute2 does', () => {
    expect(PSCHED).toEqual({ tickInUsec: 15.625, clockFactor: 1, hz: 1e9 });
    expect(parsePsched('000003e8 00000040 3b9aca00 3b9aca00').tickInUsec).toBe(1000); // ns clock: t2us := us2t, ticks are ns
    expect(() => parsePsched('garbage')).toThrow(/psched/);
  });
  it('truncates like C: 1992 B at 125000 B/s is 248984 ticks, not 249000', () => {
    expect(xmittimeTicks(PSCHED, 125_000, 1600)).toBe(200_000);
    expect(xmittimeTicks(PSCHED, 125_000, 1992)).toBe(248_984);
    expect(xmitsizeBytes(PSCHED, 125_000, 200_000)).toBe(1600);
  });
  it('reproduces every rate table and buffer tc sent', () => {
    let checked = 0;
    for (const v of vectors.filter((x) => x.direction === 'request' && x.name.startsWith('class-add-htb'))) {
      const o = (fromJsonValue(v.decoded) as any).attrs.options;
      const rate = o.rate64 !== undefined ? Number(o.rate64) : o.parms.rate.rate;
      const mtu = o.parms.rate.cellLog === 9 ? 65536 : 1600;
      expect(rateTable(PSCHED, { rateBytesPerSec: o.parms.rate.rate, mtuBytes: mtu }).table).toEqual(o.rtab);
      expect(rateTable(PSCHED, { rateBytesPerSec: o.parms.ceil.rate, mtuBytes: mtu }).table).toEqual(o.ctab);
      expect(htbRateParams(PSCHED, { rateBytesPerSec: rate, mtuBytes: mtu }).rate.cellLog).toBe(o.parms.rate.cellLog);
      checked++;
    }
    expect(checked).toBe(3);
  });
  it('default burst is rate/HZ + mtu; 64-bit rates go to RATE64', () => {
    const p = htbRateParams(PSCHED, { rateBytesPerSec: 5_000_000_000 });
    expect(p.rate.rate).toBe(0xffffffff);
    expect(p.rate64).toBe(5_000_000_000n);
    expect(p.bufferTicks).toBe(xmittimeTicks(PSCHED, 5e9, 5 + 1600));
    expect(htbRateParams(PSCHED, { rateBytesPerSec: 125_000 }).rate64).toBeUndefined();
  });
  it('refuses zero and impossible rates', () => {
    expect(() => htbRateParams(PSCHED, { rateBytesPerSec: 0 })).toThrow(/zero rate/);
    expect(() => htbRateParams(PSCHED, { rateBytesPerSec: 100, ceilBytesPerSec: -1 })).toThrow(TcInputError);
    expect(() => htbRateParams(PSCHED, { rateBytesPerSec: 1.5 })).toThrow(TcInputError);
  });
});

describe('u32 matches', () => {
  const selectors = vectors.flatMap((v) => {
    const o = (fromJsonValue(v.decoded) as any).attrs?.options as U32Attrs | undefined;
    return o?.sel ? [{ name: v.name, keys: o.sel.keys, protocol: ((v.decoded as any).header.info & 0xffff) === 0x0008 ? 0x0800 : 0 }] : [];
  });
  it('packMatches(decodeMatches(keys)) reproduces every golden selector', () => {
    expect(selectors.length).toBeGreaterThanOrEqual(12);
    for (const s of selectors) expect(packMatches(decodeMatches(s.keys, s.protocol)), s.name).toEqual(s.keys);
  });
  it('merges sport and dport into one word, as tc and Mesos', () => {
    const keys = packMatches([
      { type: 'srcPort', port: 31232, mask: 0xff00 },
      { type: 'dstPort', port: 2000 },
    ]);
    expect(keys).toEqual([{ mask: 0xff00ffff, val: 0x7a0007d0, off: 20, offmask: 0 }]);
    expect(decodeMatches(keys)).toEqual([
      { type: 'srcPort', port: 31232, mask: 0xff00 },
      { type: 'dstPort', port: 2000, mask: 0xffff },
    ]);
  });
  it('puts the destination MAC at -16/-12 like Mesos', () => {
    expect(packMatches([{ type: 'ethDst', mac: 'aa:bb:cc:dd:ee:ff' }])).toEqual([
      { mask: 0x0000ffff, val: 0x0000aabb, off: -16, offmask: 0 },
      { mask: 0xffffffff, val: 0xccddeeff, off: -12, offmask: 0 },
    ]);
  });
  it('Mesos decoding rules: non-prefix port masks and lone MAC halves come back raw', () => {
    expect(decodeMatches([{ mask: 0x0f0f, val: 0x0101, off: 20, offmask: 0 }])).toEqual([{ type: 'u32', value: 0x0101, mask: 0x0f0f, at: 20 }]);
    expect(decodeMatches([{ mask: 0xffffffff, val: 1, off: -12, offmask: 0 }])).toEqual([{ type: 'u32', value: 1, mask: 0xffffffff, at: -12 }]);
    expect(decodeMatches([{ mask: 0x00ff0000, val: 0x00010000, off: 8, offmask: 0 }], 0x0806)).toEqual([
      { type: 'u32', value: 0x10000, mask: 0xff0000, at: 8 },
    ]);
  });
  it('port blocks: Mesos §4.2 worked examples, without its uint16 overflows', () => {
    const show = (b: number, e: number) => portBlocks(b, e).map((x) => `[${portBlockRange(x).begin},${portBlockRange(x).end}] ${x.mask.toString(16)}`);
    expect(show(31000, 31499)).toEqual([
      '[31000,31007] fff8',
      '[31008,31039] ffe0',
      '[31040,31103] ffc0',
      '[31104,31231] ff80',
      '[31232,31487] ff00',
      '[31488,31495] fff8',
      '[31496,31499] fffc',
    ]);
    expect(show(31000, 32000)).toEqual([
      '[31000,31007] fff8',
      '[31008,31039] ffe0',
      '[31040,31103] ffc0',
      '[31104,31231] ff80',
      '[31232,31743] fe00',
      '[31744,31999] ff00',
      '[32000,32000] ffff',
    ]);
    expect(show(32768, 33791)).toEqual(['[32768,33791] fc00']);
    expect(show(4, 11)).toEqual(['[4,7] fffc', '[8,11] fffc']);
    expect(portBlocks(1, 1023)).toHaveLength(10);
    expect(show(65535, 65535)).toEqual(['[65535,65535] ffff']);
    expect(show(32768, 65535)).toEqual(['[32768,65535] 8000']);
    expect(() => portBlocks(0, 10)).toThrow(/begin must be an integer in 1\.\.65535/);
    expect(() => portBlocks(10, 4)).toThrow(/larger than end/);
  });
  it('hash buckets as the kernel folds them', () => {
    expect(u32Bucket(31232, 0x0000ff00, 256)).toBe(0x7a);
    expect(u32Bucket(0x12345678, 0x00ff0000, 16)).toBe(0x4);
    expect(u32Bucket(0xabcd, 0, 256)).toBe(0);
    expect(() => u32Bucket(1, 0xff, 3)).toThrow(/power of two/);
  });
});

describe('u32 node allocator', () => {
  it('walks 0x800..0xfff then 0x001..0x7ff, skipping reserved nodes, and refuses a full bucket', () => {
    const a = new U32NodeAllocator();
    a.reserve({ ht: 0x00200000 }, 0x800);
    expect(a.allocate({ ht: 0x0027a000 })).toBe(0x0027a800);
    expect(a.allocate({ ht: 0x00200000 })).toBe(0x00200801);
    expect(a.allocate({ priority: 5 })).toBe(0x800);
    const full = new U32NodeAllocator();
    const seen = new Set<number>();
    for (let i = 0; i < 0xfff; i++) seen.add(full.allocate({ ht: 0x00300000 }) & 0xfff);
    expect(seen.size).toBe(0xfff);
    expect(seen.has(0)).toBe(false);
    expect(() => full.allocate({ ht: 0x00300000 })).toThrow(/no free u32 handle in bucket 3:.*4095 nodes/);
  });
  it('with a range, hands out the lowest free node of it, and a released node again first', () => {
    const a = new U32NodeAllocator({ range: { first: 1, last: 3 } });
    a.reserve({ ht: 0x00200000 }, 0x00200002);
    expect([a.allocate({ ht: 0x00200000 }), a.allocate({ ht: 0x00200000 })]).toEqual([0x00200001, 0x00200003]);
    expect(() => a.allocate({ ht: 0x00200000 })).toThrow(/no free u32 handle in bucket 2:, whose nodes 1\.\.3 \(3\) are all taken/);
    a.release({ ht: 0x00200000 }, 0x00200002);
    expect(a.allocate({ ht: 0x00200000 })).toBe(0x00200002);
    expect(a.allocate({ ht: 0x00201000 })).toBe(0x00201001);
    expect(() => new U32NodeAllocator({ range: { first: 0, last: 3 } })).toThrow(/range first/);
  });
});

describe('statistics', () => {
  it('fold stats2 into TcStats and the Mesos view', () => {
    const s = statsFromAttrs({
      basic: { bytes: 1000n, packets: 10 },
      pkt64: 12n,
      queue: { qlen: 1, backlog: 2, drops: 3, requeues: 4, overlimits: 5 },
      rateEst: { bps: 6, pps: 7 },
    })!;
    expect(toMesosStats(s)).toEqual({ backlog: 2, bytes: 1000, drops: 3, overlimits: 5, packets: 12, qlen: 1, ratebps: 6, ratepps: 7, requeues: 4 });
  });
});

describe('fuzzing the tc decoders', () => {
  it.each([
    ['tc', tcMessage],
    ['action', actionMessage],
  ] as Array<[string, MessageSchema]>)('%s: mutated golden vectors only ever raise DecodeError, and what decodes re-encodes to a fixpoint', (name, schema) => {
    const next = rng(0x7c + name.length);
    const own = vectors.filter((v) => v.schema === name);
    let decoded = 0;
    for (let i = 0; i < 3000; i++) {
      const b = Buffer.from(Buffer.from(own[i % own.length]!.hex, 'hex').subarray(16));
      for (let e = 0; e < 1 + (next() % 3); e++) {
        const at = next() % b.length;
        if (next() % 2) b[at] = next() & 0xff;
        else if (at + 1 < b.length) b.writeUInt16LE(next() & 0xffff, at);
      }
      let value: unknown;
      try {
        value = decodeBody(schema, b);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw new Error(`decoder threw ${(err as Error).name}: ${(err as Error).message}`);
        continue;
      }
      decoded++;
      const w = new Writer();
      try {
        encodeBody(w, schema, value as never);
      } catch {
        continue; // a mutated value the encoder refuses (e.g. an unknown fq_codel xstats type) is fine
      }
      expect(decodeBody(schema, w.toBuffer())).toEqual(value);
    }
    expect(decoded).toBeGreaterThan(300);
  });

  it('filters: mutated u32 and bpf vectors become typed filters or raise DecodeError, never anything else', () => {
    const next = rng(0xb9f);
    const own = vectors.filter((v) => v.schema === 'tc' && /filter-(u32|bpf)/.test(v.name));
    expect(own.some((v) => v.name.includes('bpf'))).toBe(true);
    const kinds = new Map<string, number>();
    for (let i = 0; i < 4000; i++) {
      const b = Buffer.from(Buffer.from(own[i % own.length]!.hex, 'hex').subarray(16));
      for (let e = 0; e < 1 + (next() % 3); e++) {
        const at = 20 + (next() % (b.length - 20)); // the options, mostly: the header decodes anyway
        if (next() % 2) b[at] = next() & 0xff;
        else if (at + 1 < b.length) b.writeUInt16LE(next() & 0xffff, at);
      }
      try {
        const f = parseFilter(decodeBody(tcMessage, b));
        kinds.set(f.kind, (kinds.get(f.kind) ?? 0) + 1);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw new Error(`parseFilter threw ${(err as Error).name}: ${(err as Error).message}`);
      }
    }
    expect(kinds.get('bpf')).toBeGreaterThan(100);
    expect(kinds.get('u32')).toBeGreaterThan(100);
  });
});
