/**
 * Typed u32 matches, packed into selector keys exactly as iproute2's pack_key/pack_key16/
 * pack_key8 do (4-byte-aligned words, 16- and 8-bit matches shifted into place, keys at the same
 * offset merged), and decoded back from keys the way Mesos recognises its own filters.
 *
 * Offsets are relative to the network header; negative offsets reach back into the Ethernet
 * header (the destination MAC starts at -14). Values and masks are natural numbers: byte order
 * is the codec's business.
 */
import { isIP } from 'node:net';
import { ETH_P, IPPROTO } from './constants.js';
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

function parsePrefix(what: string, text: string): { addr: number; len: number } {
  if (typeof text !== 'string') throw new TcInputError(`${what} must be an IPv4 address text, got ${typeof text}`);
  try {
    return parsePrefixCached(text);
  } catch (e) {
    if (e instanceof TcInputError) throw new TcInputError(`${what} ${e.reason}`);
    throw e;
  }
}

/** Filters in bulk match the same few addresses. */
const parsePrefixCached = textCache(parsePrefixText);

/** `text` as an IPv4 address and prefix length; errors name the text (parsePrefix adds which match). */
function parsePrefixText(text: string): { addr: number; len: number } {
  const [a, l, ...rest] = text.split('/');
  if (rest.length || !a || isIP(a) !== 4) throw new TcInputError(`${JSON.stringify(text)} is not an IPv4 address or prefix`);
  const len = l === undefined ? 32 : Number(l);
  if (!/^\d{1,2}$/.test(l ?? '32') || len > 32) throw new TcInputError(`${JSON.stringify(text)} has an invalid prefix length`);
  const addr = a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  return { addr, len };
}

const prefixMask = (len: number) => (len === 0 ? 0 : u32(0xffffffff << (32 - len)));

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

const PROTO_NAMES: Record<string, number> = { tcp: IPPROTO.TCP, udp: IPPROTO.UDP, icmp: IPPROTO.ICMP };

/** Add one typed match to the keys (in place). */
export function packMatch(keys: TcU32Key[], m: U32Match): void {
  switch (m?.type) {
    case 'ipSrc':
    case 'ipDst': {
      const { addr, len } = parsePrefix(m.type, m.address);
      packKey(keys, addr, prefixMask(len), m.type === 'ipSrc' ? 12 : 16);
      return;
    }
    case 'ipProto': {
      const p = typeof m.protocol === 'string' ? PROTO_NAMES[m.protocol] : m.protocol;
      if (p === undefined) throw new TcInputError(`unknown IP protocol ${JSON.stringify(m.protocol)} (use a number or tcp, udp, icmp)`);
      packKey8(keys, checkInt('ipProto protocol', p, 0, 0xff), 0xff, 9);
      return;
    }
    case 'ipHeaderLength':
      packKey8(keys, checkInt('ipHeaderLength words', m.words, 0, 15), 0x0f, 0);
      return;
    case 'srcPort':
    case 'dstPort': {
      const mask = m.mask ?? 0xffff;
      checkPortBlock(m.type, m.port, mask);
      packKey16(keys, m.port, mask, m.type === 'srcPort' ? 20 : 22);
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
      if (u32(m.value & ~m.mask)) throw new TcInputError(`${m.type} match value 0x${m.value.toString(16)} has bits outside its mask 0x${m.mask.toString(16)}`);
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

const isPrefixMask = (mask: number) => {
  const inv = u32(~mask);
  return (inv & (inv + 1)) === 0;
};
const prefixLength = (mask: number) => (mask === 0 ? 0 : 32 - Math.log2(u32(~mask) + 1));
const isPrefix16 = (mask: number) => mask !== 0 && isPrefixMask(u32(mask << 16));
const formatIp = (v: number) => `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
const formatMac = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');

/**
 * Turn selector keys back into typed matches. For IPv4 filters (protocol ETH_P_IP) the fields
 * the encoder knows are recognised: IHL, protocol, addresses with prefix masks, ports with prefix
 * masks (the high half at offset 20 is the source port, the low half the destination port), the
 * destination MAC at -16/-12; everything else, and every key of other protocols, comes back as a
 * raw `u32` match. packMatches(decodeMatches(keys)) reproduces the keys.
 */
export function decodeMatches(keys: readonly TcU32Key[], protocol: number = ETH_P.IP): U32Match[] {
  const out: U32Match[] = [];
  const raw = (k: { val: number; mask: number; off: number; offmask: number }) => {
    const m: U32Match = { type: 'u32', value: u32(k.val & k.mask), mask: k.mask, at: k.off };
    if (k.offmask) m.nexthdr = true;
    out.push(m);
  };
  const ip = protocol === ETH_P.IP;
  const macLow = keys.find((k) => k.off === -12 && k.offmask === 0 && k.mask === 0xffffffff);
  const macHigh = keys.find((k) => k.off === -16 && k.offmask === 0 && k.mask === 0x0000ffff);
  for (const k of keys) {
    if (!ip || k.offmask) {
      raw(k);
      continue;
    }
    decodeIpv4Key(k, out, raw, macHigh, macLow);
  }
  return out;
}

/** One key of an IPv4 filter: the fields the encoder knows, the rest of its mask as a raw match. */
function decodeIpv4Key(k: TcU32Key, out: U32Match[], raw: (k: TcU32Key) => void, macHigh: TcU32Key | undefined, macLow: TcU32Key | undefined): void {
  const rest = (mask: number) => {
    if (mask) raw({ ...k, mask: u32(mask), val: u32(k.val & mask) });
  };
  switch (k.off) {
    case 0:
      if ((k.mask & 0x0f000000) === 0x0f000000) {
        out.push({ type: 'ipHeaderLength', words: (k.val >>> 24) & 0x0f });
        rest(k.mask & ~0x0f000000);
      } else raw(k);
      return;
    case 8:
      if ((k.mask & 0x00ff0000) === 0x00ff0000) {
        out.push({ type: 'ipProto', protocol: (k.val >>> 16) & 0xff });
        rest(k.mask & ~0x00ff0000);
      } else raw(k);
      return;
    case 12:
    case 16:
      if (isPrefixMask(k.mask)) {
        const len = prefixLength(k.mask);
        out.push({ type: k.off === 12 ? 'ipSrc' : 'ipDst', address: len === 32 ? formatIp(k.val) : `${formatIp(k.val)}/${len}` });
      } else raw(k);
      return;
    case 20: {
      const hi = k.mask >>> 16;
      const lo = k.mask & 0xffff;
      if ((hi && !isPrefix16(hi)) || (lo && !isPrefix16(lo)) || k.mask === 0) {
        raw(k);
        return;
      }
      if (hi) out.push({ type: 'srcPort', port: k.val >>> 16, mask: hi });
      if (lo) out.push({ type: 'dstPort', port: k.val & 0xffff, mask: lo });
      return;
    }
    case -16:
      if (k === macHigh && macLow) {
        const v = [(k.val >>> 8) & 255, k.val & 255, macLow.val >>> 24, (macLow.val >>> 16) & 255, (macLow.val >>> 8) & 255, macLow.val & 255];
        out.push({ type: 'ethDst', mac: formatMac(v) });
      } else raw(k);
      return;
    case -12:
      if (k === macLow && macHigh) return; // consumed with its -16 half
      raw(k);
      return;
    default:
      raw(k);
  }
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
