import type { AttrSet } from './attributes.js';
import { attrSet } from './attributes.js';
import { bytes, string, u32 } from './codec.js';
import { NLMSGERR_ATTR, NLMSG_HDRLEN, NLM_F, align4 } from './constants.js';
import { DecodeError } from './errors.js';
import type { ExtendedAck } from './errors.js';

/** One netlink message as received: header fields and a view of its payload. */
export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** The bytes after the nlmsghdr: a view into the receive buffer, valid during dispatch only. */
  payload: Buffer;
  /** The whole message including its header: also a view. */
  raw: Buffer;
}

/** Split a datagram into its messages. Malformed framing raises a DecodeError. */
export function parseMessages(buf: Buffer, length = buf.length): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let at = 0;
  while (at < length) {
    if (length - at < NLMSG_HDRLEN) throw new DecodeError(`${length - at} bytes left, too few for an nlmsghdr`, ['nlmsghdr'], at);
    const len = buf.readUInt32LE(at);
    if (len < NLMSG_HDRLEN || at + len > length) throw new DecodeError(`nlmsg_len ${len} does not fit the ${length - at} bytes left`, ['nlmsghdr'], at);
    out.push({
      type: buf.readUInt16LE(at + 4),
      flags: buf.readUInt16LE(at + 6),
      seq: buf.readUInt32LE(at + 8),
      pid: buf.readUInt32LE(at + 12),
      payload: buf.subarray(at + NLMSG_HDRLEN, at + len),
      raw: buf.subarray(at, at + len),
    });
    at += align4(len);
  }
  return out;
}

/** The extended-ack TLVs (enum nlmsgerr_attrs). */
export const NLMSGERR: AttrSet = attrSet('NLMSGERR_ATTR', {
  msg: [NLMSGERR_ATTR.MSG, string],
  offs: [NLMSGERR_ATTR.OFFS, u32],
  cookie: [NLMSGERR_ATTR.COOKIE, bytes],
  policy: [NLMSGERR_ATTR.POLICY, bytes],
  missType: [NLMSGERR_ATTR.MISS_TYPE, u32],
  missNest: [NLMSGERR_ATTR.MISS_NEST, u32],
});

function decodeExtack(payload: Buffer, start: number): ExtendedAck | undefined {
  if (start >= payload.length) return undefined;
  const a = NLMSGERR.decode(payload, start, payload.length) as Record<string, unknown>;
  const ack: ExtendedAck = {};
  if (a.msg !== undefined) ack.message = a.msg as string;
  if (a.offs !== undefined) ack.offset = a.offs as number;
  if (a.cookie !== undefined) ack.cookie = a.cookie as Buffer;
  if (a.policy !== undefined) ack.policy = a.policy as Buffer;
  if (a.missType !== undefined) ack.missingType = a.missType as number;
  if (a.missNest !== undefined) ack.missingNestOffset = a.missNest as number;
  return Object.keys(ack).length ? ack : undefined;
}

/** An NLMSG_ERROR payload: the error (0 = ACK), the echoed request and the extended ack. */
export interface ErrorPayload {
  /** 0 for success, else a negative errno as the kernel sends it. */
  error: number;
  /** The echoed request: its header always, its body unless the ACK was capped. */
  request: Buffer;
  requestType: number;
  requestFlags: number;
  requestSeq: number;
  extack: ExtendedAck | undefined;
}

export function parseErrorPayload(msg: Pick<NetlinkMessage, 'flags' | 'payload'>): ErrorPayload {
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new DecodeError(`NLMSG_ERROR needs ${4 + NLMSG_HDRLEN} bytes, got ${p.length}`, ['nlmsgerr'], 0);
  const error = p.readInt32LE(0);
  const origLen = p.readUInt32LE(4);
  const capped = (msg.flags & NLM_F.CAPPED) !== 0;
  const echoed = capped ? NLMSG_HDRLEN : Math.max(NLMSG_HDRLEN, origLen);
  if (4 + echoed > p.length) throw new DecodeError(`NLMSG_ERROR echoes ${echoed} request bytes but has ${p.length - 4}`, ['nlmsgerr'], 4);
  const hasTlvs = (msg.flags & NLM_F.ACK_TLVS) !== 0;
  let extack: ExtendedAck | undefined;
  try {
    extack = hasTlvs ? decodeExtack(p, 4 + align4(echoed)) : undefined;
  } catch (e) {
    if (e instanceof DecodeError) throw new DecodeError(e.reason, ['nlmsgerr', ...e.path], e.offset);
    throw e;
  }
  return {
    error,
    request: p.subarray(4, 4 + echoed),
    requestType: p.readUInt16LE(8),
    requestFlags: p.readUInt16LE(10),
    requestSeq: p.readUInt32LE(12),
    extack,
  };
}

/** An NLMSG_DONE payload: the dump's final status and any extended ack. */
export function parseDonePayload(msg: Pick<NetlinkMessage, 'flags' | 'payload'>): { error: number; extack: ExtendedAck | undefined } {
  const p = msg.payload;
  if (p.length < 4) return { error: 0, extack: undefined }; // very old kernels send an empty DONE
  const error = p.readInt32LE(0);
  let extack: ExtendedAck | undefined;
  if (msg.flags & NLM_F.ACK_TLVS) {
    try {
      extack = decodeExtack(p, 4);
    } catch (e) {
      if (e instanceof DecodeError) throw new DecodeError(e.reason, ['NLMSG_DONE', ...e.path], e.offset);
      throw e;
    }
  }
  return { error, extack };
}
