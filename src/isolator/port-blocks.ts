/**
 * A port set as the aligned power-of-two blocks one u32 (value, mask) match each covers (Mesos
 * §4). The block is the SDK's PortBlock ({ port, mask }, src/tc/u32-match.ts), the one the
 * planner's dstPort/srcPort matches take; this module adds what the isolator needs of it: the
 * blocks of a PortSet, one block from its bounds (checked as RoutingTest.PortRange does), and
 * Mesos' printed form.
 */
import type { PortBlock } from '../tc/index.js';
import { portBlockRange, portBlocks } from '../tc/index.js';
import type { PortSet } from './port-set.js';

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** The block [begin, end]: its size a power of two, begin a multiple of it. */
export function blockFromBeginEnd(begin: number, end: number): PortBlock {
  if (begin > end) throw new RangeError(`'begin' is larger than 'end' in [${begin},${end}]`);
  const size = end - begin + 1;
  if (!isPow2(size)) throw new RangeError(`The size ${size} of [${begin},${end}] is not a power of 2`);
  if (begin % size !== 0) throw new RangeError(`'begin' is not size aligned in [${begin},${end}]`);
  if (begin < 0 || end > 65535) throw new RangeError(`[${begin},${end}] is out of the port space`);
  return { port: begin, mask: ~(size - 1) & 0xffff };
}

export function blockFromBeginMask(begin: number, mask: number): PortBlock {
  const size = ((~mask & 0xffff) + 1) | 0;
  return blockFromBeginEnd(begin, begin + size - 1);
}

/** '[b,e]' as Mesos prints a PortRange. */
export function formatBlock(b: PortBlock): string {
  const r = portBlockRange(b);
  return `[${r.begin},${r.end}]`;
}

export const sameBlock = (a: PortBlock, b: PortBlock): boolean => a.port === b.port && a.mask === b.mask;

/**
 * The minimal greedy cover of a port set by aligned power-of-two blocks, from the left (Mesos'
 * getPortRanges, per interval through the SDK's portBlocks). Computed per set: callers pass the
 * ephemeral block and the non-ephemeral ports separately, never their union, so a block never
 * straddles the two.
 */
export function portSetBlocks(set: PortSet): PortBlock[] {
  const out: PortBlock[] = [];
  // (A PortSet never holds port 0, which portBlocks refuses.)
  for (const [lo, hi] of set.intervals) out.push(...portBlocks(lo, hi - 1));
  return out;
}
