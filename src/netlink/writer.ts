import { NLA_HDRLEN, NLMSG_HDRLEN, align4 } from './constants.js';

// Plain byte stores, for encoders that write thousands of messages: several times cheaper than
// Buffer#writeUInt32LE and friends, whose range checks values validated beforehand do not need.
// Negative numbers are stored in two's complement (s16, s32).
export function storeLe16(b: Buffer, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
}
export function storeLe32(b: Buffer, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}
export function storeBe16(b: Buffer, at: number, v: number): void {
  b[at] = (v >>> 8) & 0xff;
  b[at + 1] = v & 0xff;
}
export function storeBe32(b: Buffer, at: number, v: number): void {
  b[at] = (v >>> 24) & 0xff;
  b[at + 1] = (v >>> 16) & 0xff;
  b[at + 2] = (v >>> 8) & 0xff;
  b[at + 3] = v & 0xff;
}
function checkField(name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer in 0..${max}, got ${v}`);
}

/**
 * A growable byte writer for netlink messages. One writer serves a whole batch: messages and
 * attributes are opened with a placeholder length and back-patched when closed, so nothing is
 * copied or concatenated. Host byte order is little-endian (checked in shim.ts).
 */
export class Writer {
  private buf: Buffer;
  /** Current write position. */
  pos = 0;

  constructor(initialSize = 4096) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  /** Make room for `n` more bytes. */
  ensure(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  s16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16LE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
  }
  s32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32LE(v, this.pos);
    this.pos += 4;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(v, this.pos);
    this.pos += 8;
  }
  s64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigInt64LE(v, this.pos);
    this.pos += 8;
  }
  be16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  be32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** A string's UTF-8 bytes (no terminator). */
  utf8(s: string): void {
    const n = Buffer.byteLength(s);
    this.ensure(n);
    this.buf.write(s, this.pos, 'utf8');
    this.pos += n;
  }
  zeros(n: number): void {
    this.ensure(n);
    this.buf.fill(0, this.pos, this.pos + n);
    this.pos += n;
  }
  /** Pad with zeros to the next 4-byte boundary. */
  align(): void {
    const pad = align4(this.pos) - this.pos;
    if (pad) this.zeros(pad);
  }

  /** Open a netlink message: writes an nlmsghdr with a placeholder length; returns its offset. */
  beginMessage(type: number, flags: number, seq: number, pid = 0): number {
    const start = this.pos;
    this.ensure(NLMSG_HDRLEN);
    const b = this.buf;
    checkField('nlmsg_type', type, 0xffff);
    checkField('nlmsg_flags', flags, 0xffff);
    // Byte stores: this runs once per message of a batch of thousands.
    storeLe32(b, start, 0);
    storeLe16(b, start + 4, type);
    storeLe16(b, start + 6, flags);
    storeLe32(b, start + 8, seq >>> 0);
    storeLe32(b, start + 12, pid >>> 0);
    this.pos += NLMSG_HDRLEN;
    return start;
  }
  /** Close a message: back-patch nlmsg_len and align. */
  endMessage(start: number): void {
    this.align();
    storeLe32(this.buf, start, this.pos - start);
  }

  /** Open an attribute (type includes any NLA_F_* flags); returns its offset. */
  beginAttr(type: number): number {
    const start = this.pos;
    this.ensure(NLA_HDRLEN);
    this.buf.writeUInt16LE(0, start); // nla_len, patched in endAttr
    this.buf.writeUInt16LE(type, start + 2);
    this.pos += NLA_HDRLEN;
    return start;
  }
  /** Close an attribute: nla_len excludes the trailing padding, which is then written. */
  endAttr(start: number): void {
    const len = this.pos - start;
    if (len > 0xffff) throw new RangeError(`attribute of ${len} bytes exceeds the 65535-byte netlink limit`);
    this.buf.writeUInt16LE(len, start);
    this.align();
  }

  /**
   * Room for `n` more bytes at `pos`, for encoders that write a known layout straight into the
   * buffer: returns the buffer to write into (valid until the next write); advance `pos` yourself.
   */
  room(n: number): Buffer {
    this.ensure(n);
    return this.buf;
  }

  /** Overwrite a u32 already written (host order). */
  patchU32(offset: number, v: number): void {
    this.buf.writeUInt32LE(v >>> 0, offset);
  }

  /** The bytes written so far: a view, valid until the next write or reset. */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
  /** The bytes written so far, copied into a buffer of their own. */
  toBuffer(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
  reset(): void {
    this.pos = 0;
  }
}
