/**
 * tc handles as helpers, not magic numbers. A handle is a u32 `major:minor` (16 bits each),
 * written in hex the way tc does: `1:10`, `ffff:`, `root`. u32 filter handles are
 * `htid:hash:node` (12/8/12 bits): `800::801`, `2:7a:800`, `2:` for a hash table. bpf filter
 * handles are plain u32 numbers (`handle 1`, printed `0x1`).
 */
import { TC_H } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { textCache } from './text-cache.js';

/** A handle given by a user: its number, or its text ('1:10', 'ffff:', 'root', 'ingress', 'none'). */
export type TcHandleInput = number | string;

/** Compose a handle from its major and minor numbers: tcHandle(1, 0x10) is 1:10. */
export function tcHandle(major: number, minor = 0): number {
  checkInt('handle major', major, 0, 0xffff);
  checkInt('handle minor', minor, 0, 0xffff);
  return ((major << 16) | minor) >>> 0;
}

/** The major number (upper 16 bits). */
export const tcMajor = (h: number): number => h >>> 16;
/** The minor number (lower 16 bits). */
export const tcMinor = (h: number): number => h & 0xffff;

const HEX = /^[0-9a-f]{1,4}$/i;

/**
 * Parse tc's handle syntax: 'root', 'ingress', 'clsact', 'none', 'M:', 'M:N', ':N' (hex, 16 bits
 * each). A number is checked as a u32. Anything else (a bare 'M' without a colon, 5 hex digits,
 * decimal text) is an error here, before anything is sent.
 */
export function parseTcHandle(input: TcHandleInput): number {
  if (typeof input === 'number') return checkInt('tc handle', input, 0, 0xffffffff);
  if (typeof input !== 'string') throw new TcInputError(`tc handle must be a number or text, got ${typeof input}`);
  return parseHandleCached(input);
}

function parseHandleText(input: string): number {
  const s = input.trim().toLowerCase();
  switch (s) {
    case 'root':
      return TC_H.ROOT;
    case 'ingress':
    case 'clsact':
      return TC_H.INGRESS;
    case 'none':
      return TC_H.UNSPEC;
  }
  const colon = s.indexOf(':');
  if (colon < 0)
    throw new TcInputError(`invalid tc handle ${JSON.stringify(input)}: expected 'major:minor' in hex (e.g. '1:10', 'ffff:'), 'root', 'ingress' or 'none'`);
  const maj = s.slice(0, colon);
  const min = s.slice(colon + 1);
  if ((maj !== '' && !HEX.test(maj)) || (min !== '' && !HEX.test(min)) || (maj === '' && min === '')) {
    throw new TcInputError(`invalid tc handle ${JSON.stringify(input)}: major and minor are hex numbers of at most 16 bits (ffff)`);
  }
  return (((maj ? parseInt(maj, 16) : 0) << 16) | (min ? parseInt(min, 16) : 0)) >>> 0;
}

/** Filters in bulk name the same few parents ('ffff:', '1:'). */
const parseHandleCached = textCache(parseHandleText);

/** Format a handle as tc prints it: 'root', 'none', '1:', '1:10', ':10'. */
export function formatTcHandle(h: number): string {
  checkInt('tc handle', h, 0, 0xffffffff);
  if (h === TC_H.ROOT) return 'root';
  if (h === TC_H.UNSPEC) return 'none';
  const maj = h >>> 16;
  const min = h & 0xffff;
  if (maj === 0) return `:${min.toString(16)}`;
  if (min === 0) return `${maj.toString(16)}:`;
  return `${maj.toString(16)}:${min.toString(16)}`;
}

/** The parts of a u32 filter handle. */
export interface U32HandleParts {
  /** Hash table id, 12 bits (0x800 and up are the kernel's; 1..0x7ff are free for users). */
  htid: number;
  /** Bucket, 8 bits. */
  hash?: number;
  /** Node (filter) id, 12 bits; 0 for a hash table itself. */
  node?: number;
}

/** A u32 handle given by a user: its number, its text ('800::801') or its parts. */
export type U32HandleInput = number | string | U32HandleParts;

/** Compose a u32 handle: u32Handle({ htid: 0x800, node: 0x801 }) is 800::801. */
export function u32Handle(parts: U32HandleParts): number {
  const htid = checkInt('u32 htid', parts.htid, 0, 0xfff);
  const hash = checkInt('u32 hash bucket', parts.hash ?? 0, 0, 0xff);
  const node = checkInt('u32 node', parts.node ?? 0, 0, 0xfff);
  return ((htid << 20) | (hash << 12) | node) >>> 0;
}

/** Split a u32 handle into its parts. */
export function u32HandleParts(h: number): Required<U32HandleParts> {
  checkInt('u32 handle', h, 0, 0xffffffff);
  return { htid: h >>> 20, hash: (h >>> 12) & 0xff, node: h & 0xfff };
}

/**
 * Parse a u32 handle as tc does: 'HTID:HASH:NODE' with each part hex and optional ('800::801',
 * '2:7a:800', '2:', '::801'); '0x...' is a raw number; numbers and parts objects are checked.
 */
export function parseU32Handle(input: U32HandleInput): number {
  if (typeof input === 'number') return checkInt('u32 handle', input, 0, 0xffffffff);
  if (typeof input === 'object' && input !== null) return u32Handle(input);
  if (typeof input !== 'string') throw new TcInputError(`u32 handle must be a number, text or parts, got ${typeof input}`);
  const s = input.trim().toLowerCase();
  if (s === 'none') return 0;
  if (/^0x[0-9a-f]{1,8}$/.test(s)) return parseInt(s.slice(2), 16) >>> 0;
  const parts = s.split(':');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p !== '' && !/^[0-9a-f]+$/.test(p))) {
    throw new TcInputError(`invalid u32 handle ${JSON.stringify(input)}: expected 'htid:hash:node' in hex, e.g. '800::801' or '2:'`);
  }
  const [htid, hash, node] = parts.map((p) => (p === '' ? 0 : parseInt(p, 16))) as [number, number, number | undefined];
  if (htid > 0xfff || hash > 0xff || (node ?? 0) > 0xfff) {
    throw new TcInputError(`invalid u32 handle ${JSON.stringify(input)}: htid has 12 bits (fff), hash 8 bits (ff), node 12 bits (fff)`);
  }
  return u32Handle({ htid, hash, node: node ?? 0 });
}

/** Format a u32 handle as tc prints it: '800::801', '2:7a:800', '2:', 'none'. */
export function formatU32Handle(h: number): string {
  const { htid, hash, node } = u32HandleParts(h);
  if (h === 0) return 'none';
  let out = htid ? `${htid.toString(16)}:` : '';
  if (hash) out += hash.toString(16);
  if (node) out += `:${node.toString(16)}`;
  return out;
}

/**
 * Parse a bpf (or other plain-number) filter handle as tc reads `handle 1`: a u32 number, or its
 * text in decimal or 0x hex ('1', '0x10'). Not u32-classifier syntax: '800::1' is refused.
 */
export function parseBpfHandle(input: number | string): number {
  if (typeof input === 'number') return checkInt('bpf filter handle', input, 0, 0xffffffff);
  if (typeof input !== 'string') throw new TcInputError(`bpf filter handle must be a number or its text, got ${typeof input}`);
  const s = input.trim().toLowerCase();
  if (/^0x[0-9a-f]{1,8}$/.test(s)) return parseInt(s.slice(2), 16) >>> 0;
  if (/^(0|[1-9][0-9]*)$/.test(s) && Number(s) <= 0xffffffff) return Number(s);
  throw new TcInputError(`invalid bpf filter handle ${JSON.stringify(input)}: a u32 in decimal or 0x hex (e.g. 1, '0x10')`);
}

/** Format a bpf filter handle as tc prints it: '0x1'. */
export function formatBpfHandle(h: number): string {
  return `0x${checkInt('bpf filter handle', h, 0, 0xffffffff).toString(16)}`;
}
