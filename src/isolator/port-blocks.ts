import type { PortSet } from './port-set.js';

/**
 * An aligned power-of-two block of ports [begin, end] that one u32 (value, mask) key matches:
 * size = end − begin + 1 is a power of two and begin is a multiple of it.
 */
export interface PortBlock {
  begin: number;
  end: number;
  /** The 16-bit u32 mask: ~(size − 1). A single port has mask 0xffff. */
  mask: number;
}

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

export function blockFromBeginEnd(begin: number, end: number): PortBlock {
  if (begin > end) throw new RangeError(`'begin' is larger than 'end' in [${begin},${end}]`);
  const size = end - begin + 1;
  if (!isPow2(size)) throw new RangeError(`The size ${size} of [${begin},${end}] is not a power of 2`);
  if (begin % size !== 0) throw new RangeError(`'begin' is not size aligned in [${begin},${end}]`);
  if (begin < 0 || end > 65535) throw new RangeError(`[${begin},${end}] is out of the port space`);
  return { begin, end, mask: ~(size - 1) & 0xffff };
}

export function blockFromBeginMask(begin: number, mask: number): PortBlock {
  const size = ((~mask & 0xffff) + 1) | 0;
  return blockFromBeginEnd(begin, begin + size - 1);
}

/** '[b,e]' as Mesos prints a PortRange. */
export const formatBlock = (b: PortBlock): string => `[${b.begin},${b.end}]`;

/**
 * The minimal greedy cover of a port set by aligned power-of-two blocks, from the left (Mesos'
 * getPortRanges). Computed per set: callers pass the ephemeral block and the non-ephemeral ports
 * separately, never their union, so a block never straddles the two.
 */
export function portBlocks(set: PortSet): PortBlock[] {
  const out: PortBlock[] = [];
  for (const [lo0, hi] of set.intervals) {
    let lo = lo0;
    while (lo < hi) {
      // the largest power of two dividing lo (lo > 0: port 0 is never in a PortSet)…
      let size = lo & -lo;
      // …that still fits before hi
      while (lo + size > hi) size >>= 1;
      out.push({ begin: lo, end: lo + size - 1, mask: ~(size - 1) & 0xffff });
      lo += size;
    }
  }
  return out;
}
