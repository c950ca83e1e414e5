import { PortSet } from './port-set.js';

/**
 * First-fit allocator of aligned ephemeral port blocks (Mesos' EphemeralPortsAllocator): every
 * container gets one block of `blockSize` ports (a power of two) starting at a multiple of it.
 * Unlike Mesos it never aborts: claiming a block that is not free returns false.
 */
export class EphemeralPortsAllocator {
  private free: PortSet;
  private used = PortSet.EMPTY;

  constructor(
    readonly pool: PortSet,
    readonly blockSize: number,
  ) {
    if (!Number.isInteger(blockSize) || blockSize <= 0) throw new RangeError('Number of ephemeral ports per container is zero');
    this.free = pool;
  }

  /** The lowest free aligned block, or undefined when none fits. */
  allocate(): { begin: number; end: number } | undefined {
    const n = this.blockSize;
    for (const [lo, hi] of this.free.intervals) {
      const start = Math.ceil(lo / n) * n;
      if (start + n <= hi) {
        const block = PortSet.ofRanges([[start, start + n - 1]]);
        this.free = this.free.subtract(block);
        this.used = this.used.union(block);
        return { begin: start, end: start + n - 1 };
      }
    }
    return undefined;
  }

  /** Claim a specific block (recovery). False if any of it is not free. */
  claim(begin: number, end: number): boolean {
    const block = PortSet.ofRanges([[begin, end]]);
    if (!this.free.contains(block)) return false;
    this.free = this.free.subtract(block);
    this.used = this.used.union(block);
    return true;
  }

  /**
   * Mark a block used whatever its state (a recorded container's): with a changed pool or a
   * conflicting record, it is still never handed to anyone else.
   */
  reserve(begin: number, end: number): void {
    const block = PortSet.ofRanges([[begin, end]]);
    this.free = this.free.subtract(block);
    this.used = this.used.union(block);
  }

  /** Give a block back. False if it was not in use. */
  release(begin: number, end: number): boolean {
    const block = PortSet.ofRanges([[begin, end]]);
    if (!this.used.contains(block)) return false;
    this.used = this.used.subtract(block);
    this.free = this.free.union(block);
    return true;
  }

  get freePorts(): PortSet {
    return this.free;
  }
  get usedPorts(): PortSet {
    return this.used;
  }
  /** How many more blocks fit in what is free now. */
  get freeBlocks(): number {
    const n = this.blockSize;
    return this.free.intervals.reduce((k, [lo, hi]) => k + Math.max(0, Math.floor((hi - Math.ceil(lo / n) * n) / n)), 0);
  }
}
