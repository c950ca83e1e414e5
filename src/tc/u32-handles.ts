/**
 * u32 node handles chosen by the SDK. The kernel's own choice (gen_new_kid) walks 0x800..0xfff,
 * then 0x001..0x7ff, and past 4095 nodes in one bucket hands out 0xfff again; choosing handles
 * ourselves keeps bulk installs deterministic and refuses a full bucket with a clear error.
 */
import { U32_MAX_NODES_PER_BUCKET } from './constants.js';
import { TcInputError, checkInt } from './errors.js';
import { formatU32Handle } from './handle.js';

/** Where a node goes: a priority's root table (ht unknown until the kernel makes it) or table|bucket. */
export type U32Place = { priority: number } | { ht: number };

const key = (p: U32Place) => ('ht' in p ? `ht:${p.ht & 0xfffff000}` : `prio:${p.priority}`);

/** Which node ids an allocator hands out. */
export interface U32NodeAllocatorOptions {
  /**
   * Hand out the lowest free node id of [first, last] instead of following the kernel's order:
   * for callers that keep ids outside the range for themselves (a bucket's last node for a link,
   * say) and want ids given back (release) to be used again first.
   */
  range?: { first: number; last: number };
}

export class U32NodeAllocator {
  private readonly used = new Map<string, Set<number>>();
  private readonly next = new Map<string, number>();
  private readonly range: { first: number; last: number } | undefined;

  constructor(options: U32NodeAllocatorOptions = {}) {
    if (options.range) {
      const first = checkInt('u32 node range first', options.range.first, 1, 0xfff);
      this.range = { first, last: checkInt('u32 node range last', options.range.last, first, 0xfff) };
    }
  }

  /** Record a node that already exists. */
  reserve(place: U32Place, node: number): void {
    let s = this.used.get(key(place));
    if (!s) this.used.set(key(place), (s = new Set()));
    s.add(node & 0xfff);
  }

  /** A node is free again (its filter was removed). */
  release(place: U32Place, node: number): void {
    this.used.get(key(place))?.delete(node & 0xfff);
  }

  /**
   * The next free node id of a place: 0x800..0xfff first, then 0x001..0x7ff (the kernel's
   * order), or the lowest free one of the range given at construction; and the full handle to
   * send: table|bucket|node, or just the node (`::801`) for a priority's root table, which the
   * kernel completes with that table's id.
   */
  allocate(place: U32Place): number {
    const k = key(place);
    let s = this.used.get(k);
    if (!s) this.used.set(k, (s = new Set()));
    const n = this.range ? this.lowestFree(place, s, this.range) : this.kernelOrder(place, k, s);
    s.add(n);
    return 'ht' in place ? ((place.ht & 0xfffff000) | n) >>> 0 : n;
  }

  private kernelOrder(place: U32Place, k: string, s: Set<number>): number {
    if (s.size >= U32_MAX_NODES_PER_BUCKET)
      throw new TcInputError(`no free u32 handle in ${where(place)}: it holds ${U32_MAX_NODES_PER_BUCKET} nodes, the most a bucket can`);
    let n = this.next.get(k) ?? 0x800;
    while (s.has(n)) n = n === 0xfff ? 1 : n + 1;
    this.next.set(k, n === 0xfff ? 1 : n + 1);
    return n;
  }

  private lowestFree(place: U32Place, s: Set<number>, r: { first: number; last: number }): number {
    for (let n = r.first; n <= r.last; n++) if (!s.has(n)) return n;
    throw new TcInputError(
      `no free u32 handle in ${where(place)}, whose nodes ${r.first.toString(16)}..${r.last.toString(16)} (${r.last - r.first + 1}) are all taken`,
    );
  }
}

const where = (place: U32Place) => ('ht' in place ? `bucket ${formatU32Handle(place.ht & 0xfffff000)}` : `the root table of priority ${place.priority}`);
