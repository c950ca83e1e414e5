/**
 * A scripted stand-in for the native shim: requests sent on a fake socket are handed to a script,
 * whose answers are queued as datagrams for recv(). Lets the request engine be tested for
 * sequence matching, multipart dumps, extended acks, interrupted dumps, overruns, partial batch
 * failure and timeouts without a kernel.
 */
import type { NativePoller, NativeShim } from '../../src/netlink/shim.js';
import { parseMessages, type NetlinkMessage } from '../../src/netlink/framing.js';
import { NLMSG, NLM_F, NLMSGERR_ATTR } from '../../src/netlink/constants.js';
import { Writer } from '../../src/netlink/writer.js';

export interface Datagram {
  bytes: Buffer;
  sender?: number;
  /** Deliver only after this many ms (through the poller) instead of immediately. */
  delayMs?: number;
}
export type Script = (msg: NetlinkMessage, kernel: FakeKernel) => Array<Buffer | Datagram> | void;

const EAGAIN = 11;
const ENOBUFS = 105;

export class FakeKernel implements NativeShim {
  readonly sent: NetlinkMessage[] = [];
  readonly sendCalls: number[] = [];
  private queue: Array<Buffer | 'overrun'> = [];
  private pollers = new Set<FakePoller>();
  private opts = new Map<string, number>();
  closedFds: number[] = [];
  constructor(public script: Script = () => []) {}

  socket(): number {
    return 100;
  }
  bind(): number {
    return 4242;
  }
  setsockopt(_fd: number, level: number, name: number, value: number): void {
    this.opts.set(`${level}:${name}`, value);
  }
  getsockopt(_fd: number, level: number, name: number): number {
    return this.opts.get(`${level}:${name}`) ?? 0;
  }
  send(_fd: number, buf: Buffer, length: number): number {
    const copy = Buffer.from(buf.subarray(0, length));
    const msgs = parseMessages(copy);
    this.sendCalls.push(msgs.length);
    for (const m of msgs) {
      this.sent.push(m);
      for (const out of this.script(m, this) ?? []) {
        // Like netlink_rcv_skb: a success is acknowledged only when NLM_F_ACK asked for it.
        if (!(m.flags & NLM_F.ACK) && isAckOf(out, m)) continue;
        this.deliver(out);
      }
    }
    return length;
  }
  sendInBackground(fd: number, buf: Buffer, length: number, done: (result: number) => void): void {
    setImmediate(() => {
      done(this.send(fd, buf, length));
      this.wake();
    });
  }
  sendmmsg(fd: number, bufs: Buffer[]): number {
    for (const b of bufs) this.send(fd, b, b.length);
    return bufs.length;
  }
  recv(_fd: number, buf: Buffer, _flags: number, meta: Int32Array): number {
    const next = this.queue.shift();
    if (next === undefined) return -EAGAIN;
    if (next === 'overrun') return -ENOBUFS;
    const sender = (next as Buffer & { sender?: number }).sender ?? 0;
    next.copy(buf, 0, 0, Math.min(next.length, buf.length));
    meta[0] = sender;
    meta[1] = 0;
    meta[2] = 0;
    return next.length;
  }
  waitReadable(_fd: number, timeoutMs: number): number {
    if (this.queue.length) return 1;
    // A scripted kernel answers synchronously or through timers, which cannot fire while blocked.
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      /* spin: mimics a blocking poll */
    }
    return this.queue.length ? 1 : 0;
  }
  flock(): number {
    return 0;
  }
  flockAsync(): Promise<number> {
    return Promise.resolve(0);
  }
  flockCancel(): void {}
  close(fd: number): void {
    this.closedFds.push(fd);
  }
  setns(): void {}
  unshare(): void {}
  mount(): void {}
  umount2(): void {}
  Poller = ((kernel: FakeKernel) =>
    class implements NativePoller {
      active = false;
      constructor(
        _fd: number,
        readonly onReadable: (errno: number) => void,
      ) {
        kernel.pollers.add(this as unknown as FakePoller);
      }
      start() {
        this.active = true;
      }
      stop() {
        this.active = false;
      }
      close() {
        this.active = false;
        kernel.pollers.delete(this as unknown as FakePoller);
      }
      ref() {}
      unref() {}
    })(this);

  /** Queue a datagram (now, or later through the poller). */
  deliver(out: Buffer | Datagram): void {
    const d: Datagram = Buffer.isBuffer(out) ? { bytes: out } : out;
    const bytes = Object.assign(Buffer.from(d.bytes), { sender: d.sender ?? 0 });
    if (d.delayMs === undefined) {
      this.queue.push(bytes);
      return;
    }
    setTimeout(() => {
      this.queue.push(bytes);
      this.wake();
    }, d.delayMs);
  }
  /** Make the next recv fail with ENOBUFS. */
  overrun(): void {
    this.queue.push('overrun');
  }
  /** Tell active pollers the socket is readable. */
  wake(): void {
    for (const p of this.pollers) if (p.active) p.onReadable(0);
  }
  get queued(): number {
    return this.queue.length;
  }
}
function isAckOf(out: Buffer | Datagram, req: NetlinkMessage): boolean {
  const b = Buffer.isBuffer(out) ? out : out.bytes;
  return b.length >= 20 && b.readUInt16LE(4) === NLMSG.ERROR && b.readUInt32LE(8) === req.seq && b.readInt32LE(16) === 0;
}

interface FakePoller {
  active: boolean;
  onReadable: (errno: number) => void;
}

/** Builders for kernel answers. */
export function message(type: number, seq: number, flags: number, body: (w: Writer) => void = () => {}): Buffer {
  const w = new Writer();
  const start = w.beginMessage(type, flags, seq, 4242);
  body(w);
  w.endMessage(start);
  return w.toBuffer();
}

export interface FakeExtack {
  msg?: string;
  offs?: number;
  missType?: number;
}

/** NLMSG_ERROR answering `req` with `error` (0 = ACK), echoing the request unless capped. */
export function errorReply(req: NetlinkMessage, error: number, extack?: FakeExtack): Buffer {
  const capped = error === 0;
  const flags = (capped ? NLM_F.CAPPED : 0) | (extack ? NLM_F.ACK_TLVS : 0);
  return message(NLMSG.ERROR, req.seq, flags, (w) => {
    w.s32(-Math.abs(error));
    if (capped) w.bytes(req.raw.subarray(0, 16));
    else w.bytes(req.raw);
    if (extack) writeExtack(w, extack);
  });
}

export function writeExtack(w: Writer, e: FakeExtack): void {
  if (e.msg !== undefined) {
    const a = w.beginAttr(NLMSGERR_ATTR.MSG);
    w.utf8(e.msg);
    w.u8(0);
    w.endAttr(a);
  }
  if (e.offs !== undefined) {
    const a = w.beginAttr(NLMSGERR_ATTR.OFFS);
    w.u32(e.offs);
    w.endAttr(a);
  }
  if (e.missType !== undefined) {
    const a = w.beginAttr(NLMSGERR_ATTR.MISS_TYPE);
    w.u32(e.missType);
    w.endAttr(a);
  }
}

export function doneReply(seq: number, flags = 0, error = 0, extack?: FakeExtack): Buffer {
  return message(NLMSG.DONE, seq, NLM_F.MULTI | flags | (extack ? NLM_F.ACK_TLVS : 0), (w) => {
    w.s32(error);
    if (extack) writeExtack(w, extack);
  });
}

/** Concatenate messages into one datagram. */
export function datagram(...msgs: Buffer[]): Buffer {
  return Buffer.concat(msgs);
}
