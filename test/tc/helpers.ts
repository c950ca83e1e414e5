/** Helpers of the tc kernel tests: `tc -n NS` runners and parsers of what tc prints. */
import { execFileSync } from 'node:child_process';

/** `tc -n NS ARGS…`, stdout. */
export function tcRun(ns: string, ...args: string[]): string {
  return execFileSync('tc', ['-n', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

/** `tc -n NS ARGS…` expected to fail; its stderr. */
export function tcFails(ns: string, ...args: string[]): string {
  try {
    execFileSync('tc', ['-n', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return String((e as { stderr: string }).stderr).trim();
  }
  throw new Error(`tc ${args.join(' ')} succeeded`);
}

/**
 * `tc -j -n NS ARGS…` parsed. tc 6.1 repeats the key "match" inside one u32 object; those are
 * renamed match#1, match#2 … before parsing so none is lost. It also prints a u32 selector's
 * offset with two bare strings inside the object ("    offset ", " eat "), which is not JSON:
 * the first is dropped, the second becomes "eat": true.
 */
export function tcJson<T = any>(ns: string, ...args: string[]): T {
  let n = 0;
  const text = tcRun(ns, '-j', ...args)
    .replace(/"match":\{/g, () => `"match#${++n}":{`)
    .replace(/,"\s+offset "/g, '')
    .replace(/" eat "/g, '"eat":true');
  return JSON.parse(text || '[]') as T;
}

/** A u32 selector's offset as tc printed it (`plus` only when not 0), in the SDK's U32Offset shape; undefined when none. */
export function tcOffset(o: Record<string, any>): Record<string, number | boolean> | undefined {
  const r: Record<string, number | boolean> = {};
  if (o.plus !== undefined) r.plus = o.plus;
  if (o.offset_mask !== undefined) Object.assign(r, { at: o.offset_off, mask: parseInt(o.offset_mask, 16), shift: o.offset_shift });
  if (o.eat) r.eat = true;
  return Object.keys(r).length ? r : undefined;
}

/** The u32 keys tc printed for one filter object (in order). */
export function tcKeys(o: Record<string, any>): Array<{ val: number; mask: number; off: number }> {
  return Object.keys(o)
    .filter((k) => k.startsWith('match#'))
    .sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)))
    .map((k) => ({ val: parseInt(o[k].value, 16), mask: parseInt(o[k].mask, 16), off: o[k].off }));
}

const RATE_UNITS: Record<string, number> = { bit: 1, Kbit: 1e3, Mbit: 1e6, Gbit: 1e9, Tbit: 1e12 };
const SIZE_UNITS: Record<string, number> = { b: 1, Kb: 1024, Mb: 1024 * 1024, Gb: 1024 ** 3 };

/** One HTB class as `tc -s class show` prints it (tc 6.1 has no JSON for HTB classes). */
export interface TcTextClass {
  classid: string;
  prio: number;
  rateBytesPerSec: number;
  ceilBytesPerSec: number;
  burstBytes: number;
  cburstBytes: number;
  sentBytes: number;
  sentPackets: number;
  lends: number;
  borrows: number;
  tokens: number;
  ctokens: number;
}

export function tcClasses(ns: string, dev: string): TcTextClass[] {
  const text = tcRun(ns, '-s', 'class', 'show', 'dev', dev);
  return text
    .split(/\n(?=class )/)
    .filter((b) => b.startsWith('class htb'))
    .map((b) => {
      const m = (re: RegExp) => re.exec(b) ?? [];
      const rate = (s: string) => {
        const [, n, u] = /^([\d.]+)(\w+)$/.exec(s)!;
        return Math.round((Number(n) * RATE_UNITS[u!]!) / 8);
      };
      const size = (s: string) => {
        const [, n, u] = /^([\d.]+)(\w+)$/.exec(s)!;
        return Math.round(Number(n) * SIZE_UNITS[u!]!);
      };
      return {
        classid: m(/^class htb (\S+)/)[1]!,
        prio: Number(m(/ prio (\d+)/)[1]),
        rateBytesPerSec: rate(m(/ rate (\S+)/)[1]!),
        ceilBytesPerSec: rate(m(/ ceil (\S+)/)[1]!),
        burstBytes: size(m(/ burst (\S+)/)[1]!),
        cburstBytes: size(m(/ cburst (\S+)/)[1]!),
        sentBytes: Number(m(/Sent (\d+) bytes/)[1]),
        sentPackets: Number(m(/bytes (\d+) pkt/)[1]),
        lends: Number(m(/lended: (\d+)/)[1]),
        borrows: Number(m(/borrowed: (\d+)/)[1]),
        tokens: Number(m(/ tokens: (-?\d+)/)[1]),
        ctokens: Number(m(/ctokens: (-?\d+)/)[1]),
      };
    });
}
