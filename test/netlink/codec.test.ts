/** The declarative struct and attribute codecs, the writer, and extended-ack path naming. */
import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  EncodeError,
  NLA_F,
  Writer,
  attrSet,
  attributePathAt,
  be16,
  be32,
  bytes,
  field,
  flag,
  indexed,
  ipAddr,
  ipv4,
  ipv6,
  ipv6Bytes,
  formatIpv6,
  lladdr,
  nested,
  pad,
  string,
  struct,
  structWithArray,
  subMessage,
  u16,
  u32,
  u64,
  u8,
} from '../../src/netlink/index.js';

const hex = (f: (w: Writer) => void) => {
  const w = new Writer(8);
  f(w);
  return w.toBuffer().toString('hex');
};

describe('struct layouts', () => {
  const sel = struct('tc_u32_sel_head', [
    ['flags', field.u8],
    ['offshift', field.u8],
    ['nkeys', field.u8],
    pad(1),
    ['offmask', field.be16],
    ['off', field.u16],
    ['offoff', field.s16],
    ['hoff', field.s16],
    ['hmask', field.be32],
  ] as const);
  const key = struct('tc_u32_key', [
    ['mask', field.be32],
    ['val', field.be32],
    ['off', field.s32],
    ['offmask', field.s32],
  ] as const);

  it('computes sizes from fields and padding, writes missing fields as zero', () => {
    expect(sel.size).toBe(16);
    expect(hex((w) => sel.encode(w, { flags: 1, offmask: 0x0f00, hmask: 0xff000000 }))).toBe('01000000' + '0f00' + '0000' + '0000' + '0000' + 'ff000000');
  });
  it('keeps byte order out of values: be16/be32 fields take and give natural numbers', () => {
    const b = Buffer.from(
      hex((w) => key.encode(w, { mask: 0xffff, val: 80, off: 20 })),
      'hex',
    );
    expect(b.toString('hex')).toBe('0000ffff' + '00000050' + '14000000' + '00000000');
    expect(key.decode(b, 0, b.length)).toEqual({ mask: 0xffff, val: 80, off: 20, offmask: 0 });
  });
  it('decodes a counted trailing array and fills the count on encode', () => {
    const full = structWithArray(sel, 'nkeys', 'keys', key);
    const value = { flags: 1, offshift: 0, offmask: 0, off: 0, offoff: 0, hoff: 0, hmask: 0, keys: [{ mask: 0xff, val: 6, off: 8, offmask: 0 }] };
    const b = Buffer.from(
      hex((w) => full.encode(w, value)),
      'hex',
    );
    expect(b.length).toBe(32);
    expect(b[2]).toBe(1);
    expect(full.decode(b, 0, b.length)).toEqual(value);
    expect(() => full.decode(b, 0, 20)).toThrow('tc_u32_sel_head with 1 keys needs 32 bytes, got 20');
  });
  it('rejects short payloads with a DecodeError naming the struct', () => {
    expect(() => key.decode(Buffer.alloc(12), 0, 12)).toThrow(new DecodeError('tc_u32_key needs 16 bytes, got 12'));
  });
  it('rejects out-of-range values with an EncodeError naming the field', () => {
    expect(() => hex((w) => key.encode(w, { off: 2 ** 31 }))).toThrow(/tc_u32_key\.off must be an integer in -2147483648\.\.2147483647/);
  });
  it('reads missing trailing fields of grown structs as zero when minSize allows', () => {
    const grown = struct(
      'stats',
      [
        ['a', field.u64],
        ['b', field.u64],
      ] as const,
      { minSize: 8 },
    );
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(7n);
    expect(grown.decode(b, 0, 8)).toEqual({ a: 7n, b: 0n });
  });
});

describe('attribute sets', () => {
  const INNER = attrSet('T_IN', { port: [1, be16], name: [2, string] } as const);
  const T = attrSet('T', {
    mtu: [1, u32],
    addr: [2, lladdr],
    on: [3, flag],
    inner: [4, nested(INNER, { flag: true })],
    list: [5, indexed(nested(INNER))],
    kind: [6, string],
    data: [7, subMessage('kind', { inner: nested(INNER) }, { selectorType: 6 })],
    big: [8, u64],
    ip: [9, ipAddr],
    small: [10, u8],
    short: [11, u16],
  } as const);

  it('writes attributes in the order of the value object, with padding and NLA_F_NESTED where declared', () => {
    expect(hex((w) => T.encode(w, { small: 1, mtu: 1500 }))).toBe('05000a0001000000' + '08000100dc050000');
    expect(hex((w) => T.encode(w, { inner: { port: 80 } }))).toBe('0c000480' + '060001000050' + '0000');
    expect(hex((w) => T.encode(w, { on: true }))).toBe('04000300');
  });

  it('round-trips every codec', () => {
    const v = {
      mtu: 9000,
      addr: '02:00:00:00:00:01',
      on: true as const,
      inner: { port: 443, name: 'x' },
      list: [{ port: 1 }, { port: 2 }],
      kind: 'inner',
      data: { name: 'sub' },
      big: 2n ** 63n + 5n,
      ip: '2001:db8::1',
      short: 65535,
    };
    const b = Buffer.from(
      hex((w) => T.encode(w, v)),
      'hex',
    );
    expect(T.decode(b, 0, b.length)).toEqual(v);
  });

  it('keeps unknown attributes, at their place, and writes them back', () => {
    const b = Buffer.from('08000100dc050000' + '0800630001020304' + '05000a0007000000', 'hex');
    const v = T.decode(b, 0, b.length);
    expect(v.unknown).toEqual([{ type: 99, data: Buffer.from([1, 2, 3, 4]), after: 'mtu' }]);
    expect(hex((w) => T.encode(w, v))).toBe(b.toString('hex'));
    expect(() => T.decode(b, 0, b.length, { strict: true })).toThrow(/unknown attribute type 99/);
  });

  it('keeps a sub-message of an unknown kind as raw bytes', () => {
    const b = Buffer.from(
      hex((w) => T.encode(w, { kind: 'other', data: Buffer.from([9, 9]) })),
      'hex',
    );
    expect(T.decode(b, 0, b.length)).toEqual({ kind: 'other', data: Buffer.from([9, 9]) });
  });

  it('names the path of an encoding error', () => {
    expect(() => hex((w) => T.encode(w, { inner: { port: 70000 } }))).toThrow(
      new EncodeError('be16 must be an integer in 0..65535, got 70000', ['T_INNER', 'T_IN_PORT']),
    );
    expect(() => hex((w) => T.encode(w, { list: [{}, { name: 'a\0b' }] }))).toThrow('T_LIST › [2] › T_IN_NAME: string must not contain NUL');
    expect(() => hex((w) => T.encode(w, { nope: 1 } as never))).toThrow(/unknown attribute 'nope'/);
  });

  it('names the path of a decoding error', () => {
    const b = Buffer.from(
      hex((w) => T.encode(w, { inner: { port: 80 } })),
      'hex',
    );
    b.writeUInt16LE(5, 4); // T_IN_PORT claims 1 byte of payload
    expect(() => T.decode(b, 0, b.length)).toThrow('T_INNER › T_IN_PORT: be16 needs 2 bytes, got 1');
  });

  it('names the attribute at an extended-ack offset, through nests, lists and sub-messages', () => {
    const b = Buffer.from(
      hex((w) => T.encode(w, { mtu: 1, list: [{ port: 1 }, { port: 2, name: 'n' }], kind: 'inner', data: { name: 'z' } })),
      'hex',
    );
    expect(attributePathAt(T as never, b, 0, b.length, 0)).toEqual(['T_MTU']);
    // list at 8: header 4, [1] at 12 (12 bytes: hdr 4 + port 8), [2] at 24: hdr, port at 28, name at 36
    expect(attributePathAt(T as never, b, 0, b.length, 36)).toEqual(['T_LIST', '[2]', 'T_IN_NAME']);
    const dataAt = b.length - 12;
    expect(attributePathAt(T as never, b, 0, b.length, dataAt + 4)).toEqual(['T_DATA', 'T_IN_NAME']);
  });

  it('rejects attribute payloads over 64 KiB when writing', () => {
    const big = attrSet('B', { blob: [1, bytes] } as const);
    expect(() => hex((w) => big.encode(w, { blob: Buffer.alloc(70000) }))).toThrow(/exceeds the 65535-byte netlink limit/);
  });

  it('marks NLA_F_NESTED only where asked', () => {
    const b = Buffer.from(
      hex((w) => T.encode(w, { inner: {}, list: [] })),
      'hex',
    );
    expect(b.readUInt16LE(2) & NLA_F.NESTED).toBeTruthy();
    expect(b.readUInt16LE(6) & NLA_F.NESTED).toBe(0);
  });
});

describe('address codecs', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['2001:db8::', '2001:db8::'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['fe80::1:2:3:4', 'fe80::1:2:3:4'],
    ['::ffff:198.18.0.1', '::ffff:c612:1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
  ])('IPv6 %s ↔ %s', (input, text) => {
    expect(formatIpv6(ipv6Bytes(input), 0)).toBe(text);
  });
  it('rejects invalid addresses before anything is sent', () => {
    expect(() => hex((w) => ipv4.encode(w, '198.18.0.256'))).toThrow(/invalid IPv4 address/);
    expect(() => hex((w) => ipv6.encode(w, 'fe80::1%eth0'))).toThrow(/invalid IPv6 address/);
    expect(() => hex((w) => lladdr.encode(w, '02:00:00:00:00:0g'))).toThrow(/invalid link-layer address/);
    expect(() => hex((w) => be32.encode(w, 1.5))).toThrow(/be32 must be an integer/);
  });
});

describe('writer', () => {
  it('grows and back-patches message and attribute lengths', () => {
    const w = new Writer(4);
    const m = w.beginMessage(16, 5, 7, 0);
    const a = w.beginAttr(3);
    w.utf8('eth0');
    w.u8(0);
    w.endAttr(a);
    w.endMessage(m);
    expect(w.toBuffer().toString('hex')).toBe('1c000000' + '1000' + '0500' + '07000000' + '00000000' + '0900' + '0300' + '6574683000' + '000000');
  });
});
