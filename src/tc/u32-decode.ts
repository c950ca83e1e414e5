/**
 * u32 selector keys back into typed matches (the reverse of u32-match.ts's packing): the fields
 * the encoder knows are recognised, the rest comes back raw, so that packing the result gives
 * the keys again.
 */
import { ETH_P } from './constants.js';
import type { TcU32Key } from './schemas/u32.js';
import type { U32Match } from './u32-match.js';

const u32 = (x: number) => x >>> 0;

const isPrefixMask = (mask: number) => {
  const inv = u32(~mask);
  return (inv & (inv + 1)) === 0;
};
const prefixLength = (mask: number) => (mask === 0 ? 0 : 32 - Math.log2(u32(~mask) + 1));
const isPrefix16 = (mask: number) => mask !== 0 && isPrefixMask(u32(mask << 16));
/** The last address formatted: the filters of one dump mostly share their addresses. */
let lastIp = -1;
let lastIpText = '';
const formatIp = (v: number): string => {
  if (v !== lastIp) [lastIp, lastIpText] = [v, `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`];
  return lastIpText;
};
const formatMac = (bytes: number[]) => bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');

/** RFC 5952 text of an IPv6 address: lower-case groups, the longest run of two or more zero groups as '::'. */
function formatIp6(words: readonly number[]): string {
  const g = words.flatMap((w) => [w >>> 16, w & 0xffff]);
  let at = -1;
  let run = 1;
  for (let i = 0, j = 0; i < 8; i = j + 1) {
    for (j = i; j < 8 && g[j] === 0; j++);
    if (j - i > run) [at, run] = [i, j - i];
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(':');
  return at < 0 ? hex(g) : `${hex(g.slice(0, at))}::${hex(g.slice(at + run))}`;
}

type Raw = (k: TcU32Key) => void;

/**
 * Turn selector keys back into typed matches. The fields the encoder knows are recognised: for
 * IPv4 filters (protocol ETH_P_IP) IHL, protocol, addresses with prefix masks, ports with prefix
 * masks (the high half of the word at 20 is the source port, the low half the destination port);
 * for IPv6 filters (ETH_P_IPV6) next header, addresses with prefix masks (an address's keys in a
 * row: full words, then at most one partial word), ports at 40 the same way (an icmp6Type is the
 * high byte of that word, so it comes back as the ip6SrcPort it equals); for both, the
 * destination MAC at -16/-12. Everything else, the bits of a key beside a known field, and every
 * key of other protocols come back as raw `u32` matches. packMatches(decodeMatches(keys))
 * reproduces the keys (keys as tc and packMatches make them: one per offset, values inside masks).
 */
export function decodeMatches(keys: readonly TcU32Key[], protocol: number = ETH_P.IP): U32Match[] {
  const out: U32Match[] = [];
  const raw: Raw = (k) => {
    const m: U32Match = { type: 'u32', value: u32(k.val & k.mask), mask: k.mask, at: k.off };
    if (k.offmask) m.nexthdr = true;
    out.push(m);
  };
  const ip = protocol === ETH_P.IP;
  const ip6 = protocol === ETH_P.IPV6;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const low = keys[i + 1];
    if ((!ip && !ip6) || k.offmask) raw(k);
    else if (k.off === -16 && k.mask === 0x0000ffff && low?.off === -12 && low.mask === 0xffffffff && !low.offmask) {
      // The two keys of ethDst, in the order it packs them.
      const v = [(k.val >>> 8) & 255, k.val & 255, low.val >>> 24, (low.val >>> 16) & 255, (low.val >>> 8) & 255, low.val & 255];
      out.push({ type: 'ethDst', mac: formatMac(v) });
      i++;
    } else i += (ip ? decodeIpv4Key(keys, i, out, raw) : decodeIpv6Key(keys, i, out, raw)) - 1;
  }
  // A pushed-to array keeps room for 17 elements; a dump of 10 000 filters keeps every one.
  return out.slice();
}

/** The key at i of an IPv4 filter: the fields the encoder knows, the rest raw. Returns the keys it took. */
function decodeIpv4Key(keys: readonly TcU32Key[], i: number, out: U32Match[], raw: Raw): number {
  const k = keys[i]!;
  switch (k.off) {
    case 0:
      splitField(k, 0x0f000000, { type: 'ipHeaderLength', words: (k.val >>> 24) & 0x0f }, out, raw);
      return 1;
    case 8:
      splitField(k, 0x00ff0000, { type: 'ipProto', protocol: (k.val >>> 16) & 0xff }, out, raw);
      return 1;
    case 12:
    case 16:
      return decodeAddress(keys, i, k.off === 12 ? 'ipSrc' : 'ipDst', out, raw);
    case 20:
      decodePorts(k, 'srcPort', 'dstPort', out, raw);
      return 1;
    default:
      raw(k);
      return 1;
  }
}

/** The key at i of an IPv6 filter (and the rest of an address's words): known fields, the rest raw. Returns the keys it took. */
function decodeIpv6Key(keys: readonly TcU32Key[], i: number, out: U32Match[], raw: Raw): number {
  const k = keys[i]!;
  switch (k.off) {
    case 4:
      splitField(k, 0x0000ff00, { type: 'ip6NextHeader', protocol: (k.val >>> 8) & 0xff }, out, raw);
      return 1;
    case 8:
    case 24:
      return decodeAddress(keys, i, k.off === 8 ? 'ip6Src' : 'ip6Dst', out, raw);
    case 40:
      decodePorts(k, 'ip6SrcPort', 'ip6DstPort', out, raw);
      return 1;
    default:
      raw(k);
      return 1;
  }
}

/** `match` when key k covers all of `fieldMask`, with k's other bits as a raw match; else k raw. */
function splitField(k: TcU32Key, fieldMask: number, match: U32Match, out: U32Match[], raw: Raw): void {
  if ((k.mask & fieldMask) !== fieldMask) return raw(k);
  out.push(match);
  const rest = u32(k.mask & ~fieldMask);
  if (rest) raw({ ...k, mask: rest, val: u32(k.val & rest) });
}

/**
 * The address whose keys start at i: consecutive words under full masks, then at most one under
 * a partial prefix mask (IPv4: the one word, any prefix mask; IPv6: up to four, none under mask
 * 0, which tc never writes). Not an address: key i raw. Returns the keys it took.
 */
function decodeAddress(keys: readonly TcU32Key[], i: number, type: 'ipSrc' | 'ipDst' | 'ip6Src' | 'ip6Dst', out: U32Match[], raw: Raw): number {
  const v6 = type === 'ip6Src' || type === 'ip6Dst';
  const words: number[] = [];
  let len = 0;
  for (let k = keys[i]; k && words.length < (v6 ? 4 : 1); k = keys[i + words.length]) {
    if (k.off !== keys[i]!.off + 4 * words.length || k.offmask || !isPrefixMask(k.mask) || (v6 && !k.mask)) break;
    words.push(u32(k.val & k.mask));
    len += prefixLength(k.mask);
    if (k.mask !== 0xffffffff) break;
  }
  if (!words.length) {
    raw(keys[i]!);
    return 1;
  }
  const text = v6 ? formatIp6([...words, 0, 0, 0].slice(0, 4)) : formatIp(words[0]!);
  out.push({ type, address: len === (v6 ? 128 : 32) ? text : `${text}/${len}` });
  return words.length;
}

/** The word of two ports: the high half the source port, the low half the destination port, each under a prefix mask; else raw. */
function decodePorts(k: TcU32Key, src: 'srcPort' | 'ip6SrcPort', dst: 'dstPort' | 'ip6DstPort', out: U32Match[], raw: Raw): void {
  const hi = k.mask >>> 16;
  const lo = k.mask & 0xffff;
  if (!k.mask || (hi && !isPrefix16(hi)) || (lo && !isPrefix16(lo))) return raw(k);
  const v = u32(k.val & k.mask);
  if (hi) out.push({ type: src, port: v >>> 16, mask: hi });
  if (lo) out.push({ type: dst, port: v & 0xffff, mask: lo });
}
