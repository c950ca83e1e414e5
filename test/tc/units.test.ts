/**
 * The pure parts of the tc layer: handles, rate math (against the tables tc sent), u32 key
 * packing and decoding (against every golden selector), port blocks (Mesos' worked examples),
 * bucket hashing, the node allocator, statistics, and the decoders under fuzzing.
 */
import { describe, expect, it } from 'vitest';
import { DecodeError, Writer, decodeBody, encodeBody, type MessageSchema } from '../../src/netlink/index.js';
import {
  ETH_P,
  TC_H,
  TC_U32,
  TcInputError,
  U32NodeAllocator,
  actionMessage,
  decodeMatches,
  filterInfo,
  filterMessage,
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
  u32FilterSpec,
  u32Handle,
  xmitsizeBytes,
  xmittimeTicks,
  type U32Attrs,
  type U32Filter,
  type U32FilterSpec,
  type U32Match,
  type U32Offset,
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
    const wire = (v.decoded as any).header.info & 0xffff; // htons(ethertype)
    return o?.sel ? [{ name: v.name, keys: o.sel.keys, protocol: wire === 0x0008 ? 0x0800 : wire === 0xdd86 ? 0x86dd : 0 }] : [];
  });
  it('packMatches(decodeMatches(keys)) reproduces every golden selector', () => {
    expect(selectors.length).toBeGreaterThanOrEqual(12);
    expect(selectors.filter((s) => s.protocol === 0x86dd).length).toBeGreaterThanOrEqual(6);
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

describe('u32 IPv6 matches (tc match ip6) and selector offsets (tc offset)', () => {
  const key = (off: number, mask: number, val: number) => ({ mask, val, off, offmask: 0 });
  const ip6 = (matches: U32Match[]) => decodeMatches(packMatches(matches), ETH_P.IPV6);
  /** The message for a spec, decoded back as a dump would be. */
  const dumped = (spec: Partial<U32FilterSpec>) => {
    const w = new Writer();
    encodeBody(w, tcMessage, filterMessage('add', { kind: 'u32', ifindex: 2, parent: 'ffff:', priority: 1, protocol: 'ipv6', ...spec }));
    return parseFilter(decodeBody(tcMessage, w.toBuffer())) as U32Filter;
  };

  it('packs addresses as parse_ip6_addr: a key per word the prefix covers, the last partial, host bits dropped, none for /0', () => {
    expect(packMatches([{ type: 'ip6Dst', address: '2001:db8::1' }])).toEqual([
      key(24, 0xffffffff, 0x20010db8),
      key(28, 0xffffffff, 0),
      key(32, 0xffffffff, 0),
      key(36, 0xffffffff, 1),
    ]);
    expect(packMatches([{ type: 'ip6Src', address: '2001:db8:abc:d123::/52' }])).toEqual([key(8, 0xffffffff, 0x20010db8), key(12, 0xfffff000, 0x0abcd000)]);
    expect(packMatches([{ type: 'ip6Src', address: '2001:db8::/63' }])).toEqual([key(8, 0xffffffff, 0x20010db8), key(12, 0xfffffffe, 0)]);
    expect(packMatches([{ type: 'ip6Src', address: '2001:db8::/31' }])).toEqual([key(8, 0xfffffffe, 0x20010db8)]);
    expect(packMatches([{ type: 'ip6Src', address: '2001:db8:1:2:3:4:5:6/96' }])).toHaveLength(3);
    expect(packMatches([{ type: 'ip6Dst', address: '::/0' }])).toEqual([]);
    expect(packMatches([{ type: 'ipDst', address: '0.0.0.0/0' }])).toEqual([key(16, 0, 0)]); // IPv4 keeps its one key, as tc
    expect(packMatches([{ type: 'ip6Dst', address: '::ffff:198.18.0.1' }]).map((k) => k.val)).toEqual([0, 0, 0xffff, 0xc6120001]);
    expect(packMatches([{ type: 'ip6Dst', address: '2001:DB8::A:B' }]).map((k) => k.val)).toEqual([0x20010db8, 0, 0, 0x000a000b]);
  });

  it('packs next header, ports and ICMPv6 type where tc match ip6 puts them', () => {
    expect(
      packMatches([
        { type: 'ip6NextHeader', protocol: 'icmpv6' },
        { type: 'icmp6Type', icmpType: 128 },
      ]),
    ).toEqual([key(4, 0x0000ff00, 58 << 8), key(40, 0xff000000, 0x80000000)]);
    expect(packMatches([{ type: 'icmp6Type', icmpType: 0, mask: 0xf8 }])).toEqual([key(40, 0xf8000000, 0)]);
    expect(packMatches([{ type: 'ip6NextHeader', protocol: 17 }])).toEqual(packMatches([{ type: 'ip6NextHeader', protocol: 'udp' }]));
    expect(
      packMatches([
        { type: 'ip6SrcPort', port: 40000, mask: 0xfff0 },
        { type: 'ip6DstPort', port: 80 },
      ]),
    ).toEqual([key(40, 0xfff0ffff, ((40000 << 16) | 80) >>> 0)]);
  });

  it('decodes IPv6 keys into typed matches; the ICMPv6 type comes back as the source port it equals; the rest raw', () => {
    expect(ip6([{ type: 'ip6Src', address: '2001:db8:abc:d123::/52' }])).toEqual([{ type: 'ip6Src', address: '2001:db8:abc:d000::/52' }]);
    expect(ip6([{ type: 'ip6Dst', address: '2001:0db8:0000:0000:0001:0000:0000:0001' }])).toEqual([{ type: 'ip6Dst', address: '2001:db8::1:0:0:1' }]);
    expect(ip6([{ type: 'ip6Dst', address: '::1' }])).toEqual([{ type: 'ip6Dst', address: '::1' }]);
    expect(ip6([{ type: 'ip6Src', address: '1:2:3:4:5:6:7:8' }])).toEqual([{ type: 'ip6Src', address: '1:2:3:4:5:6:7:8' }]);
    expect(ip6([{ type: 'ip6Src', address: '2001:db8::/31' }])).toEqual([{ type: 'ip6Src', address: '2001:db8::/31' }]);
    expect(
      ip6([
        { type: 'ip6NextHeader', protocol: 'tcp' },
        { type: 'ip6SrcPort', port: 40000, mask: 0xfff0 },
        { type: 'ip6DstPort', port: 80 },
      ]),
    ).toEqual([
      { type: 'ip6NextHeader', protocol: 6 },
      { type: 'ip6SrcPort', port: 40000, mask: 0xfff0 },
      { type: 'ip6DstPort', port: 80, mask: 0xffff },
    ]);
    expect(ip6([{ type: 'icmp6Type', icmpType: 128 }])).toEqual([{ type: 'ip6SrcPort', port: 128 << 8, mask: 0xff00 }]);
    expect(ip6([{ type: 'icmp6Type', icmpType: 1, mask: 0x0f }])).toEqual([{ type: 'u32', value: 0x01000000, mask: 0x0f000000, at: 40 }]);
    // Hop limit beside the next header: the field typed, the rest of the word raw.
    expect(decodeMatches([key(4, 0x0000ffff, 0x0000063f)], ETH_P.IPV6)).toEqual([
      { type: 'ip6NextHeader', protocol: 6 },
      { type: 'u32', value: 0x3f, mask: 0xff, at: 4 },
    ]);
    // Words of an address out of order, or after a partial word, are not that address.
    expect(decodeMatches([key(12, 0xffffffff, 1), key(8, 0xffffffff, 2)], ETH_P.IPV6)).toEqual([
      { type: 'u32', value: 1, mask: 0xffffffff, at: 12 },
      { type: 'ip6Src', address: '0:2::/32' },
    ]);
    expect(decodeMatches([key(24, 0xffff0000, 0x20010000), key(28, 0xffffffff, 1)], ETH_P.IPV6)).toEqual([
      { type: 'ip6Dst', address: '2001::/16' },
      { type: 'u32', value: 1, mask: 0xffffffff, at: 28 },
    ]);
    // IPv4 fields mean nothing in an IPv6 filter, and the other way round.
    expect(decodeMatches([key(20, 0xffff0000, 0x1f400000)], ETH_P.IPV6)).toEqual([{ type: 'u32', value: 0x1f400000, mask: 0xffff0000, at: 20 }]);
    expect(decodeMatches([key(40, 0x0000ffff, 80)], ETH_P.IP)).toEqual([{ type: 'u32', value: 80, mask: 0xffff, at: 40 }]);
    expect(ip6([{ type: 'ethDst', mac: '02:00:00:00:00:01' }])).toEqual([{ type: 'ethDst', mac: '02:00:00:00:00:01' }]);
  });

  it('refuses bad IPv6 matches with a TcInputError naming the match', () => {
    const bad: Array<[U32Match, string | RegExp]> = [
      [{ type: 'ip6Dst', address: '198.18.0.1' }, 'match 1: ip6Dst "198.18.0.1" is not an IPv6 address or prefix'],
      [{ type: 'ip6Src', address: '2001:db8::/129' }, 'match 1: ip6Src "2001:db8::/129" has an invalid prefix length'],
      [{ type: 'ip6Src', address: '2001:db8::/' }, /ip6Src .* invalid prefix length/],
      [{ type: 'ip6Src', address: 'fe80::1%eth0' }, /ip6Src "fe80::1%eth0" is not an IPv6 address/],
      [{ type: 'ip6Src', address: '2001:db8::1/64/1' }, /not an IPv6 address or prefix/],
      [{ type: 'ip6Dst', address: 42 as never }, 'match 1: ip6Dst must be an IPv6 address text, got number'],
      [{ type: 'ipDst', address: '2001:db8::1' }, /ipDst "2001:db8::1" is not an IPv4 address/],
      [{ type: 'ip6NextHeader', protocol: 'icmp' as never }, 'match 1: unknown ip6NextHeader protocol "icmp" (use a number or tcp, udp, icmpv6)'],
      [{ type: 'ipProto', protocol: 'icmpv6' as never }, /unknown ipProto protocol "icmpv6" \(use a number or tcp, udp, icmp\)/],
      [{ type: 'ip6NextHeader', protocol: 256 }, /ip6NextHeader protocol must be an integer in 0\.\.255/],
      [{ type: 'ip6SrcPort', port: 40001, mask: 0xfff0 }, /ip6SrcPort port 40001 is not aligned to mask 0xfff0/],
      [{ type: 'ip6DstPort', port: 0, mask: 0xff0f }, /ip6DstPort mask 0xff0f is not a prefix mask/],
      [{ type: 'ip6DstPort', port: 65536 }, /ip6DstPort port must be an integer in 0\.\.65535/],
      [{ type: 'icmp6Type', icmpType: 256 }, /icmp6Type icmpType must be an integer in 0\.\.255/],
      [{ type: 'icmp6Type', icmpType: 1, mask: 0x1ff }, /icmp6Type mask must be an integer in 0\.\.255/],
      [{ type: 'icmp6Type', icmpType: 129, mask: 0xf0 }, 'match 1: icmp6Type value 0x81 has bits outside its mask 0xf0'],
    ];
    for (const [m, msg] of bad) {
      expect(() => packMatches([m]), JSON.stringify(m)).toThrow(TcInputError);
      expect(() => packMatches([m]), JSON.stringify(m)).toThrow(msg);
    }
    expect(() =>
      packMatches([
        { type: 'icmp6Type', icmpType: 128 },
        { type: 'ip6SrcPort', port: 0x8100, mask: 0xff00 },
      ]),
    ).toThrow(/match 2: u32 matches conflict at offset 40/);
  });

  it('packs selector offsets as parse_offset: plus → OFFSET, at/mask/shift → VAROFFSET (offmask big-endian), eat → EAT', () => {
    const sel = (offset: U32Offset) =>
      (filterMessage('add', { kind: 'u32', ifindex: 2, parent: 'ffff:', priority: 1, link: '1:', offset }).attrs!.options as U32Attrs).sel!;
    expect(sel({ plus: 20, eat: true })).toMatchObject({ flags: TC_U32.OFFSET | TC_U32.EAT, off: 20, offoff: 0, offmask: 0, offshift: 0 });
    expect(sel({ at: 0, mask: 0x0f00, shift: 6, eat: true })).toMatchObject({
      flags: TC_U32.VAROFFSET | TC_U32.EAT,
      off: 0,
      offoff: 0,
      offmask: 0x0f00,
      offshift: 6,
    });
    expect(sel({ mask: 0x00ff })).toMatchObject({ flags: TC_U32.VAROFFSET, offoff: 0, offmask: 0xff, offshift: 0 });
    expect(sel({ plus: 8, at: -2, mask: 0xf000, shift: 10 })).toMatchObject({
      flags: TC_U32.OFFSET | TC_U32.VAROFFSET,
      off: 8,
      offoff: -2,
      offmask: 0xf000,
      offshift: 10,
    });
    expect(sel({ eat: true })).toMatchObject({ flags: TC_U32.EAT });
    // Beside a classid the terminal flag stays.
    const t = filterMessage('add', { kind: 'u32', ifindex: 2, parent: 'ffff:', priority: 1, link: '1:', classid: '1:1', offset: { plus: 4 } });
    expect((t.attrs!.options as U32Attrs).sel!.flags).toBe(TC_U32.TERMINAL | TC_U32.OFFSET);
  });

  it('refuses offsets the kernel would not honour as written, and an offset without a link', () => {
    const bad: Array<[Partial<U32FilterSpec>, RegExp]> = [
      [{ offset: { plus: 20, eat: true } }, /offset only means something with link/],
      [{ link: '1:', offset: { plus: 21 } }, /offset plus 21 is not a multiple of 4 \(the kernel would round it up\)/],
      [{ link: '1:', offset: { plus: -4 } }, /offset plus must be an integer in 0\.\.65532/],
      [{ link: '1:', offset: { plus: 0x10000 } }, /offset plus must be an integer/],
      [{ link: '1:', offset: { at: 1, mask: 0xff } }, /offset at 1 is not even/],
      [{ link: '1:', offset: { at: 0x8000, mask: 0xff } }, /offset at must be an integer in -32768\.\.32766/],
      [{ link: '1:', offset: { at: 0, shift: 6 } }, /offset at\/shift need a mask/],
      [{ link: '1:', offset: { mask: 0 } }, /offset mask must be an integer in 1\.\.65535/],
      [{ link: '1:', offset: { mask: 0x0f00, shift: 16 } }, /offset shift must be an integer in 0\.\.15/],
      [{ link: '1:', offset: { eat: 'yes' as never } }, /offset eat must be a boolean/],
      [{ link: '1:', offset: {} }, /offset needs plus, a mask \(with at and shift\) or eat/],
      [{ link: '1:', offset: { eat: false } }, /offset needs plus/],
    ];
    for (const [patch, re] of bad) {
      const spec = { kind: 'u32', ifindex: 2, parent: 'ffff:', priority: 1, matches: [{ type: 'ip6NextHeader', protocol: 'tcp' }], ...patch } as U32FilterSpec;
      expect(() => filterMessage('add', spec), JSON.stringify(patch)).toThrow(TcInputError);
      expect(() => filterMessage('add', spec), JSON.stringify(patch)).toThrow(re);
    }
  });

  it('a dumped filter carries its offset and hash key, and the spec that recreates it sends the same selector', () => {
    const offsets: U32Offset[] = [
      { plus: 20, eat: true },
      { plus: 0 },
      { at: 0, mask: 0x0f00, shift: 6, eat: true },
      { plus: 4, at: 6, mask: 0xff, shift: 0 },
      { eat: true },
    ];
    for (const offset of offsets) {
      const spec: Partial<U32FilterSpec> = { link: '100:', hashkey: { mask: 0x0000ff00, at: 40 }, offset, matches: [{ type: 'ip6NextHeader', protocol: 6 }] };
      const f = dumped(spec);
      expect(f.offset, JSON.stringify(offset)).toEqual(offset);
      expect(f.hashkey).toEqual({ mask: 0x0000ff00, at: 40 });
      const again = u32FilterSpec(f);
      expect(again.offset).toEqual(offset);
      expect(filterMessage('add', again).attrs!.options).toEqual(
        filterMessage('add', { kind: 'u32', ifindex: 2, parent: 'ffff:', priority: 1, ...spec }).attrs!.options,
      );
    }
    expect(dumped({ link: '100:' }).offset).toBeUndefined();
    expect(dumped({ matches: [{ type: 'ip6DstPort', port: 80 }] }).offset).toBeUndefined();
  });

  it('the golden IPv6 filters decode into the matches and offsets their tc command line says', () => {
    const byName = new Map(vectors.map((v) => [v.name, parseFilter(fromJsonValue(v.decoded) as never) as U32Filter]));
    expect(byName.get('filter-u32-ip6-dst-next-header-dport-redirect')!.matches).toEqual([
      { type: 'ip6Dst', address: '2001:db8::1' },
      { type: 'ip6NextHeader', protocol: 6 },
      { type: 'ip6DstPort', port: 80, mask: 0xffff },
    ]);
    expect(byName.get('filter-u32-ip6-src-64-sport-block-flowid')!.matches).toEqual([
      { type: 'ip6Src', address: '2001:db8:0:1::/64' },
      { type: 'ip6SrcPort', port: 40000, mask: 0xfff0 },
    ]);
    expect(byName.get('filter-u32-ip6-src-52-dst-31-host-bits')!.matches).toEqual([
      { type: 'ip6Src', address: '2001:db8:abc:d000::/52' },
      { type: 'ip6Dst', address: '2001:db8::/31' },
      { type: 'ip6NextHeader', protocol: 17 },
    ]);
    expect(byName.get('filter-u32-ip6-icmp-type')!.matches).toEqual([
      { type: 'ip6NextHeader', protocol: 58 },
      { type: 'ip6SrcPort', port: 0x8000, mask: 0xff00 }, // icmp_type 128 0xff
    ]);
    const link = byName.get('filter-u32-ip6-link-hashkey-offset-eat')!;
    expect([link.link, link.hashkey, link.offset]).toEqual([0x10000000, { mask: 0x0000ff00, at: 40 }, { plus: 20, eat: true }]);
    expect(byName.get('filter-u32-offset-variable-ihl-eat')!.offset).toEqual({ at: 0, mask: 0x0f00, shift: 6, eat: true });
    const reply = byName.get('reply-filter-u32-ip6-link-offset')!;
    expect(reply).toMatchObject({ protocol: 0x86dd, priority: 771, link: 0x10000000, hashkey: { mask: 0x0000ff00, at: 40 }, offset: { plus: 20, eat: true } });
    expect(reply.matches).toEqual([
      { type: 'ip6Dst', address: '2001:db8::2' },
      { type: 'ip6NextHeader', protocol: 6 },
    ]);
  });

  it('packMatches(decodeMatches(keys)) holds for random IPv4 and IPv6 matches, and for random keys', () => {
    const next = rng(0x1b6);
    const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
    const word = () => next() >>> 0;
    const hex16 = () => (next() & 0xffff).toString(16);
    const block = () => {
      const mask = (0xffff << (next() % 17)) & 0xffff;
      return { port: next() & mask, mask };
    };
    const v4: Array<() => U32Match> = [
      () => ({ type: pick(['ipSrc', 'ipDst'] as const), address: `198.${18 + (next() % 2)}.${next() % 256}.${next() % 256}/${next() % 33}` }),
      () => ({ type: 'ipProto', protocol: next() % 256 }),
      () => ({ type: 'ipHeaderLength', words: next() % 16 }),
      () => ({ type: pick(['srcPort', 'dstPort'] as const), ...block() }),
      () => ({ type: 'ethDst', mac: '02:00:c6:12:00:01' }),
    ];
    const v6: Array<() => U32Match> = [
      () => ({ type: pick(['ip6Src', 'ip6Dst'] as const), address: `2001:db8:${hex16()}:${hex16()}::${hex16()}:${hex16()}/${next() % 129}` }),
      () => ({ type: 'ip6NextHeader', protocol: pick(['tcp', 'udp', 'icmpv6', next() % 256] as const) }),
      () => ({ type: pick(['ip6SrcPort', 'ip6DstPort'] as const), ...block() }),
      () => ({ type: 'icmp6Type', icmpType: next() & 0xf0, mask: 0xf0 }),
      () => ({ type: 'u8', value: next() & 0x3f, mask: 0x3f, at: 7 }),
      () => ({ type: 'ethDst', mac: '02:00:c6:12:00:01' }),
    ];
    let checked = 0;
    for (let i = 0; i < 3000; i++) {
      const [protocol, gens] = i % 2 ? [ETH_P.IPV6, v6] : [ETH_P.IP, v4];
      const matches: U32Match[] = [];
      for (let j = next() % 6; j > 0; j--) {
        const m = pick(gens)();
        try {
          packMatches([...matches, m]);
          matches.push(m);
        } catch {
          /* contradicts an earlier match */
        }
      }
      const keys = packMatches(matches);
      expect(packMatches(decodeMatches(keys, protocol)), JSON.stringify(matches)).toEqual(keys);
      // Raw keys at distinct offsets, values inside their masks, as the kernel may hold them.
      const offs = [...new Set(Array.from({ length: next() % 8 }, () => pick([-16, -12, 0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44])))];
      const rawKeys = offs.map((off) => {
        const mask = pick([0xffffffff, 0, (0xffffffff << (next() % 32)) >>> 0, 0x0000ffff, 0xffff0000, 0x0000ff00, word()]);
        return { mask, val: (word() & mask) >>> 0, off, offmask: next() % 7 === 0 ? -1 : 0 };
      });
      expect(packMatches(decodeMatches(rawKeys, protocol)), JSON.stringify(rawKeys)).toEqual(rawKeys);
      checked++;
    }
    expect(checked).toBe(3000);
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
