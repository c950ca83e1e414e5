/**
 * Sets of TCP/UDP ports as sorted, merged half-open intervals [lo, hi). Ports are 1..65535 and
 * arithmetic is done in plain numbers, so 65535 and its exclusive bound 65536 are representable
 * (Mesos' uint16 intervals overflow there).
 */
export const MIN_PORT = 1;
export const MAX_PORT = 65535;

export type Interval = readonly [lo: number, hiExclusive: number];

export class PortSet {
  private constructor(private readonly ivs: readonly Interval[]) {}

  static readonly EMPTY = new PortSet([]);

  /** From inclusive [begin, end] pairs, in any order, overlapping or not. */
  static ofRanges(ranges: ReadonlyArray<readonly [number, number]>): PortSet {
    const ivs: Interval[] = ranges.map(([b, e]) => {
      if (!Number.isInteger(b) || !Number.isInteger(e)) throw new RangeError(`port range [${b}-${e}] must be integers`);
      if (b > e) throw new RangeError(`port range [${b}-${e}]: begin is larger than end`);
      if (b < MIN_PORT || e > MAX_PORT) throw new RangeError(`port range [${b}-${e}] is out of bounds: ports are ${MIN_PORT}..${MAX_PORT}`);
      return [b, e + 1];
    });
    return new PortSet(merge(ivs));
  }

  static ofIntervals(ivs: readonly Interval[]): PortSet {
    return new PortSet(merge([...ivs]));
  }

  /**
   * Mesos' ranges syntax: '[31000-31009,31020-31029]', also without brackets, single ports
   * ('[8080]' or '8080') and spaces after commas. Empty '[]' is the empty set.
   */
  static parse(text: string): PortSet {
    const t = text.trim();
    const inner = t.startsWith('[') && t.endsWith(']') ? t.slice(1, -1) : t;
    if (inner.trim() === '') return PortSet.EMPTY;
    const ranges = inner.split(',').map((part) => {
      const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
      if (!m) throw new RangeError(`'${text}' is not a port range list like [31000-31009,31020-31029]`);
      const b = Number(m[1]);
      return [b, m[2] === undefined ? b : Number(m[2])] as const;
    });
    return PortSet.ofRanges(ranges);
  }

  get intervals(): readonly Interval[] {
    return this.ivs;
  }
  /** Inclusive [begin, end] pairs. */
  get ranges(): Array<[number, number]> {
    return this.ivs.map(([lo, hi]) => [lo, hi - 1]);
  }
  get size(): number {
    return this.ivs.reduce((n, [lo, hi]) => n + hi - lo, 0);
  }
  get isEmpty(): boolean {
    return this.ivs.length === 0;
  }

  has(port: number): boolean {
    return this.ivs.some(([lo, hi]) => port >= lo && port < hi);
  }
  union(o: PortSet): PortSet {
    return new PortSet(merge([...this.ivs, ...o.ivs]));
  }
  intersect(o: PortSet): PortSet {
    const out: Interval[] = [];
    for (const [a, b] of this.ivs) for (const [c, d] of o.ivs) if (Math.max(a, c) < Math.min(b, d)) out.push([Math.max(a, c), Math.min(b, d)]);
    return new PortSet(merge(out));
  }
  subtract(o: PortSet): PortSet {
    let cur: Interval[] = [...this.ivs];
    for (const [c, d] of o.ivs) {
      const next: Interval[] = [];
      for (const [a, b] of cur) {
        if (d <= a || c >= b) next.push([a, b]);
        else {
          if (a < c) next.push([a, c]);
          if (d < b) next.push([d, b]);
        }
      }
      cur = next;
    }
    return new PortSet(cur);
  }
  intersects(o: PortSet): boolean {
    return !this.intersect(o).isEmpty;
  }
  /** Whether every port of `o` is in this set. */
  contains(o: PortSet): boolean {
    return o.subtract(this).isEmpty;
  }
  equals(o: PortSet): boolean {
    return this.ivs.length === o.ivs.length && this.ivs.every(([a, b], i) => a === o.ivs[i]![0] && b === o.ivs[i]![1]);
  }

  /** Mesos' resource syntax: '[31000-31009,31020-31029]'. */
  toString(): string {
    return `[${this.ranges.map(([b, e]) => `${b}-${e}`).join(',')}]`;
  }
  /** The interval-set spelling Mesos' error messages use: '{[30001,31000)}'. */
  toIntervalString(): string {
    return `{${this.ivs.map(([lo, hi]) => `[${lo},${hi})`).join('')}}`;
  }
  toJSON(): Array<[number, number]> {
    return this.ranges;
  }
}

function merge(ivs: Interval[]): Interval[] {
  const sorted = ivs.filter(([lo, hi]) => lo < hi).sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1]) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}
