/**
 * The compiled decoders (issue #18): struct readers built once per layout, integers, strings,
 * flags and bytes read inline by attribute sets, sub-messages decoded in place when their
 * selector came first. Each is checked against the bytes and against what the codecs say on
 * their own, including the edges the inline paths take differently (sign, high words, UTF-8,
 * keys that are not identifiers, selectors that come after).
 */
import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  Writer,
  attrSet,
  be16,
  be32,
  bytes,
  field,
  flag,
  formatLladdr,
  nested,
  pad,
  s16,
  s32,
  s64,
  string,
  struct,
  structWithArray,
  subMessage,
  u16,
  u32,
  u64,
  u8,
  unterminatedString,
} from '../../src/netlink/index.js';
import type { AttrSet } from '../../src/netlink/index.js';

/** Attributes written by hand: [type, payload] each, padded as the kernel pads them. */
function attrs(...list: Array<[number, Buffer]>): Buffer {
  const w = new Writer(64);
  for (const [type, data] of list) {
    const a = w.beginAttr(type);
    w.bytes(data);
    w.endAttr(a);
  }
  return w.toBuffer();
}

const le32 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v | 0);
  return b;
};

function decodeError(fn: () => unknown): DecodeError {
  try {
    fn();
  } catch (e) {
    if (e instanceof DecodeError) return e;
    throw e;
  }
  throw new Error('no DecodeError');
}

describe('compiled struct readers', () => {
  const all = struct('all_ints', [
    ['a', field.u8],
    ['b', field.s8],
    ['c', field.u16],
    ['d', field.s16],
    ['e', field.u32],
    ['f', field.s32],
    ['g', field.be16],
    pad(2),
    ['h', field.be32],
    ['i', field.u64],
    ['j', field.s64],
  ] as const);

  it('reads every integer field type as Buffer reads it, at the extremes', () => {
    const b = Buffer.alloc(all.size);
    b.writeUInt8(0xff, 0);
    b.writeInt8(-128, 1);
    b.writeUInt16LE(0xfffe, 2);
    b.writeInt16LE(-2, 4);
    b.writeUInt32LE(0xfffffffe, 6);
    b.writeInt32LE(-0x7fffffff, 10);
    b.writeUInt16BE(0xabcd, 14);
    b.writeUInt32BE(0xfedcba98, 18);
    b.writeBigUInt64LE(0xfffffffffffffffen, 22);
    b.writeBigInt64LE(-5n, 30);
    expect(all.decode(b, 0, b.length)).toEqual({
      a: 0xff,
      b: -128,
      c: 0xfffe,
      d: -2,
      e: 0xfffffffe,
      f: -0x7fffffff,
      g: 0xabcd,
      h: 0xfedcba98,
      i: 0xfffffffffffffffen,
      j: -5n,
    });
  });

  it('reads 64-bit values whose high word is zero, set, or negative', () => {
    const l = struct('two', [
      ['u', field.u64],
      ['s', field.s64],
    ] as const);
    for (const [u, s] of [
      [7n, 7n],
      [1n << 32n, -(1n << 32n)],
      [(1n << 63n) + 3n, -(1n << 63n)],
      [0xffffffffn, -1n],
    ] as const) {
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(u, 0);
      b.writeBigInt64LE(s, 8);
      expect(l.decode(b, 0, 16)).toEqual({ u, s });
      expect(u64.decode(b, 0, 8, {})).toBe(u);
      expect(s64.decode(b, 8, 16, {})).toBe(s);
    }
  });

  it('reads at an offset and keeps the declared key order', () => {
    const b = Buffer.from('ff0102030405060708', 'hex');
    const l = struct('k', [
      ['z', field.u32],
      ['y', field.u32],
    ] as const);
    const v = l.decode(b, 1, 9);
    expect(Object.keys(v)).toEqual(['z', 'y']);
    expect(v).toEqual({ z: 0x04030201, y: 0x08070605 });
  });

  it('reads only the fields that fit when minSize allows, the rest as zero', () => {
    const l = struct(
      'grown',
      [
        ['a', field.u32],
        ['b', field.u64],
        ['c', field.u16],
      ] as const,
      { minSize: 4 },
    );
    expect(l.decode(le32(9), 0, 4)).toEqual({ a: 9, b: 0n, c: 0 });
    expect(decodeError(() => l.decode(Buffer.alloc(3), 0, 3)).reason).toMatch(/grown needs 4 bytes, got 3/);
  });

  it('falls back to the generic reader for names that are not identifiers', () => {
    const l = struct('odd', [
      ['a-b', field.u16],
      ['ok', field.u8],
    ] as const);
    const v = l.decode(Buffer.from('010003', 'hex'), 0, 3) as Record<string, unknown>;
    expect(v).toEqual({ 'a-b': 1, ok: 3 });
    expect(Object.keys(v)).toEqual(['a-b', 'ok']);
  });

  it('decodes a counted array into head fields then the array, without the count', () => {
    const head = struct('head', [['flags', field.u8], ['n', field.u8], pad(2)] as const);
    const el = struct('el', [['v', field.be32]] as const);
    const l = structWithArray(head, 'n', 'items', el);
    const b = Buffer.from('0502000000000001000000ff', 'hex');
    const v = l.decode(b, 0, b.length, {});
    expect(Object.keys(v)).toEqual(['flags', 'items']);
    expect(v).toEqual({ flags: 5, items: [{ v: 1 }, { v: 0xff }] });
    expect(decodeError(() => l.decode(b, 0, 8, {})).reason).toMatch(/with 2 items needs 12 bytes, got 8/);
  });
});

describe('inline attribute reads', () => {
  const S = attrSet('T', {
    a: [1, u8],
    b: [2, u16],
    c: [3, s16],
    d: [4, u32],
    e: [5, s32],
    f: [6, be16],
    g: [7, be32],
    h: [8, u64],
    i: [9, s64],
    j: [10, flag],
    k: [11, string],
    l: [12, unterminatedString],
    m: [13, bytes],
  } as const);

  it('give what each codec gives on its own', () => {
    const payloads: Array<[number, Buffer]> = [
      [1, Buffer.from([0xfe])],
      [2, Buffer.from('feff', 'hex')],
      [3, Buffer.from('feff', 'hex')],
      [4, Buffer.from('feffffff', 'hex')],
      [5, Buffer.from('feffffff', 'hex')],
      [6, Buffer.from('abcd', 'hex')],
      [7, Buffer.from('fedcba98', 'hex')],
      [8, Buffer.from('0100000002000000', 'hex')],
      [9, Buffer.from('feffffffffffffff', 'hex')],
      [10, Buffer.alloc(0)],
      [11, Buffer.from('grüße\0junk')],
      [12, Buffer.from('veth')],
      [13, Buffer.from('0102030405', 'hex')],
    ];
    const buf = attrs(...payloads);
    const v = S.decode(buf, 0, buf.length) as Record<string, unknown>;
    const codecs = [u8, u16, s16, u32, s32, be16, be32, u64, s64, flag, string, unterminatedString, bytes];
    payloads.forEach(([type, data], i) => {
      const key = String.fromCharCode(0x60 + type);
      expect(v[key], key).toEqual(codecs[i]!.decode(data, 0, data.length, {}));
    });
    expect(v).toMatchObject({ c: -2, e: -2, h: (2n << 32n) | 1n, i: -2n, k: 'grüße', l: 'veth', j: true });
  });

  it('copy bytes out of the buffer they came from', () => {
    const buf = attrs([13, Buffer.from('aabb', 'hex')]);
    const v = S.decode(buf, 0, buf.length);
    buf.fill(0);
    expect(v.m).toEqual(Buffer.from('aabb', 'hex'));
  });

  it('reject a wrong size with a DecodeError naming the attribute', () => {
    for (const [type, name] of [
      [4, 'T_D'],
      [8, 'T_H'],
      [10, 'T_J'],
    ] as const) {
      const buf = attrs([type, Buffer.alloc(3)]);
      const err = decodeError(() => S.decode(buf, 0, buf.length));
      expect(err.path).toEqual([name]);
      expect(err.reason).toMatch(/needs \d+ bytes, got 3/);
      expect(err.offset).toBe(4);
    }
  });

  it('refuse an attribute area that runs past the buffer', () => {
    const buf = attrs([4, le32(1)]);
    expect(decodeError(() => S.decode(buf, 0, buf.length + 4)).reason).toMatch(/past the 8-byte buffer/);
  });

  it('keep a repeated attribute raw in unknown, after the first', () => {
    const buf = attrs([4, le32(1)], [4, le32(2)]);
    expect(S.decode(buf, 0, buf.length)).toEqual({ d: 1, unknown: [{ type: 4, data: le32(2), after: 'd' }] });
  });

  it('reads strings up to the first NUL or the end, long and non-ASCII alike', () => {
    const long = 'x'.repeat(100);
    for (const text of ['', 'eth0', long, 'π-ü', `${long}é`]) {
      const buf = attrs([11, Buffer.from(`${text}\0tail`)]);
      expect(S.decode(buf, 0, buf.length).k).toBe(text);
    }
  });
});

describe('sub-messages', () => {
  const INNER = attrSet('IN', { x: [1, u32] } as const);
  const OUTER: AttrSet = attrSet('OUT', {
    kind: [1, string],
    data: [2, subMessage('kind', { one: nested(INNER) }, { selectorType: 1 })],
    n: [3, u32],
  } as const);

  it('decode the same whether the selector comes first or after', () => {
    const inner = attrs([1, le32(7)]);
    const first = attrs([1, Buffer.from('one\0')], [2, inner], [3, le32(1)]);
    const after = attrs([2, inner], [3, le32(1)], [1, Buffer.from('one\0')]);
    const a = OUTER.decode(first, 0, first.length);
    const b = OUTER.decode(after, 0, after.length);
    expect(a).toEqual({ kind: 'one', data: { x: 7 }, n: 1 });
    expect(b).toEqual(a);
    // Keys follow the wire order either way, so re-encoding is byte-exact.
    expect(Object.keys(b)).toEqual(['data', 'n', 'kind']);
    const w = new Writer(64);
    OUTER.encode(w, b);
    expect(w.toBuffer()).toEqual(after);
  });

  it('keep the payload of an unknown selector as bytes, and name errors inside', () => {
    const raw = attrs([1, Buffer.from('two\0')], [2, Buffer.from('0102', 'hex')]);
    expect(OUTER.decode(raw, 0, raw.length)).toEqual({ kind: 'two', data: Buffer.from('0102', 'hex') });
    const bad = attrs([1, Buffer.from('one\0')], [2, attrs([1, Buffer.alloc(2)])]);
    expect(decodeError(() => OUTER.decode(bad, 0, bad.length)).path).toEqual(['OUT_DATA', 'IN_X']);
  });
});

describe('formatLladdr', () => {
  it('prints lower-case, zero-padded, colon-separated hex of any length', () => {
    expect(formatLladdr(Buffer.from('0a1bff000102', 'hex'), 0, 6)).toBe('0a:1b:ff:00:01:02');
    expect(formatLladdr(Buffer.from('00ab', 'hex'), 1, 2)).toBe('ab');
    expect(formatLladdr(Buffer.alloc(4), 2, 2)).toBe('');
  });
});
