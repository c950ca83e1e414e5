/**
 * Golden vectors: test/golden/<area>/<case>.json hold the bytes a reference tool (ip, tc) sent or
 * the kernel answered, with provenance and our decoded form. JSON cannot hold bigint or Buffer, so
 * those are written as {"$bigint": "…"} and {"$hex": "…"}.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface GoldenVector {
  name: string;
  provenance: { command: string; tool?: string; kernel?: string; method: string; note?: string };
  direction: 'request' | 'reply';
  schema: string;
  type: number;
  flags: number;
  hex: string;
  decoded: unknown;
}

export function toJsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (Buffer.isBuffer(v)) return { $hex: v.toString('hex') };
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJsonValue(x)]));
  return v;
}

export function fromJsonValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromJsonValue);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$bigint === 'string') return BigInt(o.$bigint);
    if (typeof o.$hex === 'string') return Buffer.from(o.$hex, 'hex');
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, fromJsonValue(x)]));
  }
  return v;
}

export function loadGolden(area: string): GoldenVector[] {
  const dir = join(import.meta.dirname, '..', 'golden', area);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ name: f.replace(/\.json$/, ''), ...(JSON.parse(readFileSync(join(dir, f), 'utf8')) as Omit<GoldenVector, 'name'>) }));
}
