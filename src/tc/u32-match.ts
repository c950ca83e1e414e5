/**
 * Typed u32 matches, packed into selector keys exactly as iproute2's pack_key/pack_key16/
 * pack_key8 do (4-byte-aligned words, 16- and 8-bit matches shifted into place, keys at the same
 * offset merged), and decoded back from keys the way Mesos recognises its own filters.
 *
 * Offsets are relative to the network header; negative offsets reach back into the Ethernet
 * header (the destination MAC starts at -14). Values and masks are natural numbers: byte order
 * is the codec's business. The IPv6 matches (tc `match ip6 …`) assume a packet without extension
 * headers: the transport header at offset 40.
 */
import { isIP } from 'node:net';
import { IPPROTO } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { textCache } from './text-cache.js';
import type { TcU32Key } from './schemas/u32.js';

/** A u32 match, one of: */
export type U32Match =
  /** IPv4 source address, with an optional prefix length ('198.18.0.0/16'; default /32). */
  | { type: 'ipSrc'; address: string }
  /** IPv4 destination address, with an optional prefix length. */
  | { type: 'ipDst'; address: string }
  /** IPv4 protocol byte: a number or 'tcp' | 'udp' | 'icmp'. */
  | { type: 'ipProto'; protocol: number | 'tcp' | 'udp' | 'icmp' }
  /** The IPv4 header length nibble (IHL) in 32-bit words: 5 means "no IP options". */
  | { type: 'ipHeaderLength'; words: number }
  /** TCP/UDP source port (at offset 20, i.e. assuming no IP options), with an aligned prefix mask. */
  | { type: 'srcPort'; port: number; mask?: number }
  /** TCP/UDP destination port, with an aligned prefix mask. */
  | { type: 'dstPort'; port: number; mask?: number }
  /**
   * IPv6 source address, with an optional prefix length ('2001:db8::/64'; default /128): as tc
   * `match ip6 src`, one key per 32-bit word the prefix covers (offsets 8, 12, 16, 20), the last
   * under the prefix's partial mask; none at all for /0.
   */
  | { type: 'ip6Src'; address: string }
  /** IPv6 destination address, with an optional prefix length (keys at 24, 28, 32, 36). */
  | { type: 'ip6Dst'; address: string }
  /** IPv6 next header byte (offset 6): a number or 'tcp' | 'udp' | 'icmpv6' (tc `match ip6 protocol N 0xff`). */
  | { type: 'ip6NextHeader'; protocol: number | 'tcp' | 'udp' | 'icmpv6' }
  /** TCP/UDP source port of an IPv6 packet (offset 40), with an aligned prefix mask (tc `match ip6 sport`). */
  | { type: 'ip6SrcPort'; port: number; mask?: number }
  /** TCP/UDP destination port of an IPv6 packet (offset 42), with an aligned prefix mask (tc `match ip6 dport`). */
  | { type: 'ip6DstPort'; port: number; mask?: number }
  /**
   * ICMPv6 type (offset 40) under a mask (default 0xff), as tc `match ip6 icmp_type T M`. It shares
   * its byte with the high byte of ip6SrcPort: decoded, it comes back as an ip6SrcPort.
   */
  | { type: 'icmp6Type'; icmpType: number; mask?: number }
  /** Ethernet destination MAC (keys at -16 and -12, as tc `ether dst` and Mesos). */
  | { type: 'ethDst'; mac: string }
  /** Ethernet source MAC (keys at -8 and -4, as tc `ether src`). */
  | { type: 'ethSrc'; mac: string }
  /** Raw 8/16/32-bit value under a mask at a byte offset (tc `match u8|u16|u32 V M at O`). */
  | { type: 'u8' | 'u16' | 'u32'; value: number; mask: number; at: number; nexthdr?: boolean };

/**
 * A port block: `port` with a prefix `mask`, as in Mesos' PortRange: the ports one dstPort or
 * srcPort match with that mask covers (portBlockRange gives its bounds).
 */
export interface PortBlock {
  port: number;
  mask: number;
}

const u32 = (x: number) => x >>> 0;

/** pack_key(): add or merge one 32-bit key. */
export function packKey(keys: TcU32Key[], val: number, mask: number, off: number, offmask = 0): void {
  const key = u32(val & mask);
  for (const k of keys) {
    if (k.off === off && k.offmask === offmask) {
      const intersect = u32(mask & k.mask);
      if (u32((key ^ k.val) & intersect)) {
        throw new TcInputError(
          `u32 matches conflict at offset ${off}: 0x${key.toString(16)}/0x${mask.toString(16)} contradicts 0x${k.val.toString(16)}/0x${k.mask.toString(16)}`,
        );
      }
      k.val = u32(k.val | key);
      k.mask = u32(k.mask | mask);
      return;
    }
  }
  if (keys.length >= 128) throw new TcInputError('a u32 selector holds at most 128 keys');
  if (off % 4) throw new TcInputError(`u32 key offset ${off} is not a multiple of 4`);
  keys.push({ mask: u32(mask), val: key, off, offmask });
}

/** pack_key16(): a 16-bit match, shifted into the high half when at a word boundary. */
export function packKey16(keys: TcU32Key[], val: number, mask: number, off: number, offmask = 0): void {
  checkInt('u16 match value', val, 0, 0xffff);
  checkInt('u16 match mask', mask, 0, 0xffff);
  const shift = (off & 3) === 0 ? 16 : 0;
  packKey(keys, u32(val << shift), u32(mask << shift), off & ~3, offmask);
}

/** pack_key8(): an 8-bit match, shifted into its byte of the word. */
export function packKey8(keys: TcU32Key[], val: number, mask: number, off: number, offmask = 0): void {
  checkInt('u8 match value', val, 0, 0xff);
  checkInt('u8 match mask', mask, 0, 0xff);
  const shift = (3 - (off & 3)) * 8;
  packKey(keys, u32(val << shift), u32(mask << shift), off & ~3, offmask);
}

/** An address as 32-bit words (one for IPv4, four for IPv6) and a prefix length. */
interface Prefix {
  words: number[];
  len: number;
}

type Family = 4 | 6;

function parsePrefix(what: string, text: string, family: Family): Prefix {
  if (typeof text !== 'string') throw new TcInputError(`${what} must be an IPv${family} address text, got ${typeof text}`);
  try {
    return PREFIX_PARSERS[family](text);
  } catch (e) {
    if (e instanceof TcInputError) throw new TcInputError(`${what} ${e.reason}`);
    throw e;
  }
}

/** Filters in bulk match the same few addresses. */
const PREFIX_PARSERS = { 4: textCache((t) => parsePrefixText(t, 4)), 6: textCache((t) => parsePrefixText(t, 6)) };

/** `text` as an address and prefix length; errors name the text (parsePrefix adds which match). */
function parsePrefixText(text: string, family: Family): Prefix {
  const bits = family === 4 ? 32 : 128;
  const [a, l, ...rest] = text.split('/');
  // isIP takes a zone ('fe80::1%eth0'), which a u32 key cannot hold.
  if (rest.length || !a || isIP(a) !== family || a.includes('%')) throw new TcInputError(`${JSON.stringify(text)} is not an IPv${family} address or prefix`);
  const len = l === undefined ? bits : Number(l);
  if (!/^\d{1,3}$/.test(l ?? '0') || len > bits) throw new TcInputError(`${JSON.stringify(text)} has an invalid prefix length`);
  return { words: family === 4 ? [ipv4Word(a)] : ipv6Words(a), len };
}

const ipv4Word = (a: string) => a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);

/** An IPv6 address text as four 32-bit words; an IPv4 tail ('::ffff:198.18.0.1') is two groups. */
export function ipv6Words(a: string): number[] {
  if (isIP(a) !== 6) throw new TcInputError(`${JSON.stringify(a)} is not an IPv6 address`);
  const v4 = /[\d.]+$/.exec(a)?.[0];
  const text = v4?.includes('.') ? `${a.slice(0, -v4.length)}${(ipv4Word(v4) >>> 16).toString(16)}:${(ipv4Word(v4) & 0xffff).toString(16)}` : a;
  const groups = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const [head, tail] = text.split('::');
  const h = groups(head);
  const t = groups(tail);
  const g = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return [0, 1, 2, 3].map((i) => u32(g[2 * i]! * 0x10000 + g[2 * i + 1]!));
}

const prefixMask = (len: number) => (len <= 0 ? 0 : u32(0xffffffff << (32 - Math.min(len, 32))));

/**
 * parse_ip_addr / parse_ip6_addr: one key per 32-bit word the prefix covers, the last under the
 * prefix's partial mask. IPv4 always gives its one key (mask 0 for /0); IPv6 gives none for /0.
 */
function packPrefix(keys: TcU32Key[], p: Prefix, off: number): void {
  const n = p.words.length === 1 ? 1 : Math.ceil(p.len / 32);
  for (let i = 0; i < n; i++) packKey(keys, p.words[i]!, prefixMask(p.len - 32 * i), off + 4 * i);
}

/** A value under a mask must not have bits outside it (tc would drop them silently). */
function checkInMask(what: string, value: number, mask: number): void {
  if (u32(value & ~mask)) throw new TcInputError(`${what} value 0x${value.toString(16)} has bits outside its mask 0x${mask.toString(16)}`);
}

function checkPortBlock(what: string, port: number, mask: number): void {
  checkInt(`${what} port`, port, 0, 0xffff);
  checkInt(`${what} mask`, mask, 0, 0xffff);
  const size = (~mask & 0xffff) + 1;
  if ((size & (size - 1)) !== 0 || u32(mask | (size - 1)) !== 0xffff) {
    throw new TcInputError(`${what} mask 0x${mask.toString(16)} is not a prefix mask (ones then zeros, e.g. 0xfff8)`);
  }
  if (port & ~mask & 0xffff) {
    throw new TcInputError(`${what} port ${port} is not aligned to mask 0x${mask.toString(16)}: a block of ${size} ports must start at a multiple of ${size}`);
  }
}

function macBytes(what: string, mac: string): number[] {
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac))
    throw new TcInputError(`${what} ${JSON.stringify(mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return mac.split(':').map((x) => parseInt(x, 16));
}

/** Protocol names each protocol match takes. */
const PROTO_NAMES = {
  ipProto: { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, icmp: IPPROTO.ICMP },
  ip6NextHeader: { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, icmpv6: IPPROTO.ICMPV6 },
} as const satisfies Record<string, Record<string, number>>;
/** Where each match's field is: the address's first word, the protocol byte, the port's two bytes, the ICMPv6 type byte. */
const OFFSETS = {
  ipSrc: 12,
  ipDst: 16,
  ip6Src: 8,
  ip6Dst: 24,
  ipProto: 9,
  ip6NextHeader: 6,
  srcPort: 20,
  dstPort: 22,
  ip6SrcPort: 40,
  ip6DstPort: 42,
  icmp6Type: 40,
} as const;

/** Add one typed match to the keys (in place). */
export function packMatch(keys: TcU32Key[], m: U32Match): void {
  switch (m?.type) {
    case 'ipSrc':
    case 'ipDst':
      packPrefix(keys, parsePrefix(m.type, m.address, 4), OFFSETS[m.type]);
      return;
    case 'ip6Src':
    case 'ip6Dst':
      packPrefix(keys, parsePrefix(m.type, m.address, 6), OFFSETS[m.type]);
      return;
    case 'ipProto':
    case 'ip6NextHeader': {
      const names: Record<string, number> = PROTO_NAMES[m.type];
      const p = typeof m.protocol === 'string' ? names[m.protocol] : m.protocol;
      if (p === undefined)
        throw new TcInputError(`unknown ${m.type} protocol ${JSON.stringify(m.protocol)} (use a number or ${Object.keys(names).join(', ')})`);
      packKey8(keys, checkInt(`${m.type} protocol`, p, 0, 0xff), 0xff, OFFSETS[m.type]);
      return;
    }
    case 'ipHeaderLength':
      packKey8(keys, checkInt('ipHeaderLength words', m.words, 0, 15), 0x0f, 0);
      return;
    case 'srcPort':
    case 'dstPort':
    case 'ip6SrcPort':
    case 'ip6DstPort': {
      const mask = m.mask ?? 0xffff;
      checkPortBlock(m.type, m.port, mask);
      packKey16(keys, m.port, mask, OFFSETS[m.type]);
      return;
    }
    case 'icmp6Type': {
      const mask = m.mask ?? 0xff;
      checkInt('icmp6Type icmpType', m.icmpType, 0, 0xff);
      checkInt('icmp6Type mask', mask, 0, 0xff);
      checkInMask('icmp6Type', m.icmpType, mask);
      packKey8(keys, m.icmpType, mask, OFFSETS.icmp6Type);
      return;
    }
    case 'ethDst':
    case 'ethSrc': {
      const b = macBytes(m.type, m.mac);
      const base = m.type === 'ethDst' ? -14 : -8;
      for (let i = 0; i < 6; i += 2) packKey16(keys, (b[i]! << 8) | b[i + 1]!, 0xffff, base + i);
      return;
    }
    case 'u8':
    case 'u16':
    case 'u32': {
      const max = m.type === 'u8' ? 0xff : m.type === 'u16' ? 0xffff : 0xffffffff;
      checkInt(`${m.type} match value`, m.value, 0, max);
      checkInt(`${m.type} match mask`, m.mask, 0, max);
      checkInt(`${m.type} match offset`, m.at, -0x80000000, 0x7fffffff);
      checkInMask(`${m.type} match`, m.value, m.mask);
      const offmask = m.nexthdr ? -1 : 0;
      if (m.type === 'u8') packKey8(keys, m.value, m.mask, m.at, offmask);
      else if (m.type === 'u16') packKey16(keys, m.value, m.mask, m.at, offmask);
      else packKey(keys, m.value, m.mask, m.at, offmask);
      return;
    }
    default:
      throw new TcInputError(`unknown u32 match ${JSON.stringify(m)}`);
  }
}

/** Pack a list of matches into selector keys, in order, merging as tc does. */
export function packMatches(matches: readonly U32Match[]): TcU32Key[] {
  const keys: TcU32Key[] = [];
  for (let i = 0; i < matches.length; i++) {
    try {
      packMatch(keys, matches[i]!);
    } catch (e) {
      if (e instanceof TcInputError) throw new TcInputError(`match ${i + 1}: ${e.reason}`);
      throw e;
    }
  }
  return keys;
}

/**
 * Split an inclusive port range into the fewest aligned power-of-two blocks (Mesos'
 * getPortRanges, in 32-bit arithmetic so 65535 and whole ranges work). Port 0 is refused.
 */
export function portBlocks(begin: number, end: number): PortBlock[] {
  checkInt('port range begin', begin, 1, 0xffff);
  checkInt('port range end', end, 1, 0xffff);
  if (begin > end) throw new TcInputError(`port range begin ${begin} is larger than end ${end}`);
  const out: PortBlock[] = [];
  let lo = begin;
  const upper = end + 1;
  while (lo < upper) {
    let size = 1;
    while (lo % (size * 2) === 0 && lo + size * 2 <= upper && size < 0x10000) size *= 2;
    out.push({ port: lo, mask: (~(size - 1) & 0xffff) >>> 0 });
    lo += size;
  }
  return out;
}

/** The inclusive range a port block covers. */
export function portBlockRange(b: PortBlock): { begin: number; end: number } {
  return { begin: b.port, end: b.port + (~b.mask & 0xffff) };
}

/**
 * The bucket the kernel's u32 classifier hashes a packet into: (word & hmask) >> ffs(hmask)-1,
 * masked by divisor - 1 (net/sched/cls_u32.c u32_hash_fold). `word` is the 32-bit big-endian
 * word at the hash key's offset, as a natural number.
 */
export function u32Bucket(word: number, hashkeyMask: number, divisor: number): number {
  checkInt('divisor', divisor, 1, 0x100);
  if ((divisor & (divisor - 1)) !== 0) throw new TcInputError(`divisor ${divisor} is not a power of two`);
  const mask = u32(hashkeyMask);
  if (!mask) return 0;
  const shift = Math.log2(u32(mask & -mask));
  return (u32(word & mask) >>> shift) & (divisor - 1);
}
