import { NLMSG, NLM_F } from './constants.js';
import type { BatchResult, NetlinkWarning, RequestInfo } from './errors.js';
import { ClosedError, EncodeError, NetlinkError, OverrunError, TimeoutError } from './errors.js';
import type { RequestFailure } from './errors.js';
import type { NetlinkMessage } from './framing.js';
import { parseDonePayload, parseErrorPayload, parseMessages } from './framing.js';
import type { MessageSchema } from './message.js';
import { pathInMessage } from './message.js';
import { NetlinkSocket, RECV_EMPTY, RECV_OVERRUN, RECV_TRUNCATED } from './socket.js';
import { Writer } from './writer.js';
import type { ChunkLimits } from './batch-layout.js';
import { chunkEnd, encodeBatch } from './batch-layout.js';
import type { DumpAttempt } from './dump-policy.js';
import { dumpUnderPolicy } from './dump-policy.js';
import type { AckResult, DumpOptions, Request, RequestOptions, SessionOptions } from './session-types.js';

export type { AckResult, DumpOptions, InterruptedPolicy, Request, RequestOptions, SessionOptions } from './session-types.js';

type Outcome = { error: Error } | { error?: undefined; warnings: NetlinkWarning[]; replies: unknown[]; interrupted: boolean };

interface Pending {
  info: RequestInfo;
  schema: MessageSchema | undefined;
  dump: boolean;
  decode: ((msg: NetlinkMessage) => unknown) | undefined;
  replies: unknown[];
  interrupted: boolean;
  timeoutMs: number;
  deadline: number;
  settle: (o: Outcome) => void;
}

/** The error's extended ack, with the offending attribute named from our own request's schema. */
function withAttributePath(e: ReturnType<typeof parseErrorPayload>, schema: MessageSchema | undefined) {
  const extack = e.extack;
  if (extack?.offset !== undefined && schema && e.request.length > 16) extack.attributePath = pathInMessage(schema, e.request, extack.offset);
  return extack;
}

/** The requests of a batch chunk sent without NLM_F_ACK: they answer only when refused. */
interface SilentRange {
  firstSeq: number;
  count: number;
  refused: (index: number, m: NetlinkMessage) => void;
}

const copyMessage = (m: NetlinkMessage): NetlinkMessage => {
  const raw = Buffer.from(m.raw);
  return { type: m.type, flags: m.flags, seq: m.seq, pid: m.pid, raw, payload: raw.subarray(16) };
};

/**
 * The request engine over one netlink socket: sequence numbers, replies matched to requests
 * (and only from the kernel), ACK and dump collection, timeouts, dump serialisation, batches with
 * one result per request, and extended-ack decoding. Promise API; answers that are already queued
 * when a request has been sent (rtnetlink answers synchronously) are collected without waiting
 * for the event loop.
 */
export class NetlinkSession {
  readonly socket: NetlinkSocket;
  private readonly pending = new Map<number, Pending>();
  private readonly silent: SilentRange[] = [];
  private seq: number;
  private readonly writer = new Writer(16 << 10);
  private readonly timeoutMs: number;
  private readonly typeNames: ReadonlyMap<number, string> | undefined;
  private readonly onWarning: ((w: NetlinkWarning) => void) | undefined;
  /** How much one send of a batch carries at most. */
  private readonly chunk: ChunkLimits;
  private dumpQueue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private draining = false;

  /** Messages that belong to no request (notifications), if anyone wants them. */
  onUnsolicited: ((msg: NetlinkMessage) => void) | undefined;

  /** A session on an open socket (the session owns it: close() closes it). Socket options in `options` are ignored. */
  constructor(socket: NetlinkSocket, options: SessionOptions = {}) {
    this.socket = socket;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.typeNames = options.typeNames;
    this.onWarning = options.onWarning;
    this.chunk = { batchBytes: options.batchBytes ?? 128 << 10, batchMessages: options.batchMessages ?? 1024 };
    this.seq = (Math.floor(Math.random() * 0x7fff0000) + 1) >>> 0;
  }

  /**
   * Open a socket (in `options.netns` if given) and a session on it. Throws NetnsError when the
   * namespace does not exist or cannot be entered, SocketError when the socket cannot be opened.
   */
  static open(options: SessionOptions = {}): NetlinkSession {
    return new NetlinkSession(NetlinkSocket.open(options), options);
  }

  /** Pending requests (diagnostics). */
  get pendingCount(): number {
    return this.pending.size;
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private info(type: number, flags: number, seq: number): RequestInfo {
    const typeName = this.typeNames?.get(type);
    return typeName ? { type, typeName, flags, seq } : { type, flags, seq };
  }

  private write(w: Writer, req: Request, flags: number): number {
    const seq = this.nextSeq();
    const start = w.beginMessage(req.type, flags, seq, 0);
    try {
      req.encode?.(w);
    } catch (e) {
      w.pos = start;
      if (e instanceof EncodeError) throw new EncodeError(e.reason, [this.typeNames?.get(req.type) ?? `type ${req.type}`, ...e.path]);
      throw e;
    }
    w.endMessage(start);
    return seq;
  }

  /**
   * Send one request and wait for its ACK (NLM_F_ACK is set). Replies the kernel sends before the
   * ACK (a GET's answer, or ECHO) are returned in `replies`. Rejects with NetlinkError on refusal.
   */
  request<T = NetlinkMessage>(req: Request, options: RequestOptions<T> = {}): Promise<AckResult<T>> {
    return new Promise<AckResult<T>>((resolve, reject) => {
      this.checkOpen();
      const flags = NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0);
      const w = this.writer;
      w.reset();
      const seq = this.write(w, req, flags);
      this.register(seq, req, flags, false, options.decode ?? copyMessage, options.timeoutMs, (o) =>
        o.error ? reject(o.error) : resolve({ warnings: o.warnings, replies: o.replies as T[] }),
      );
      if (!options.offload) {
        this.transmit(w.view(), [seq]);
        return;
      }
      this.schedule(); // the answer arrives through the poller, or the timeout fires
      this.socket.sendInBackground(w.toBuffer()).then(
        () => this.drain(),
        (e: Error) => this.finish(seq, { error: e }),
      );
    });
  }

  /**
   * The synchronous fast path of request(): sends, then reads answers on the spot, blocking the
   * thread until the ACK arrives or the timeout passes. rtnetlink answers while the request is
   * being sent, so nothing actually waits; measured ~1.5× faster than request() for small
   * requests (bench/raw.ts). Throws what request() rejects with.
   */
  requestSync<T = NetlinkMessage>(req: Request, options: RequestOptions<T> = {}): AckResult<T> {
    this.checkOpen();
    if (this.draining) throw new Error('requestSync cannot be called while answers are being dispatched');
    const flags = NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0);
    const w = this.writer;
    w.reset();
    const seq = this.write(w, req, flags);
    let outcome: Outcome | undefined;
    this.register(seq, req, flags, false, options.decode ?? copyMessage, options.timeoutMs, (o) => (outcome = o));
    const deadline = this.pending.get(seq)!.deadline;
    this.transmit(w.view(), [seq]);
    while (!outcome) {
      const left = deadline - Date.now();
      if (left <= 0 || !this.socket.waitReadable(left)) {
        if (!outcome) this.finish(seq, { error: new TimeoutError(this.info(req.type, flags, seq), options.timeoutMs ?? this.timeoutMs) });
        break;
      }
      this.drain();
    }
    const o = outcome!;
    if (o.error) throw o.error;
    return { warnings: o.warnings, replies: o.replies as T[] };
  }

  /**
   * Send a dump request (NLM_F_DUMP) and collect every message until NLMSG_DONE, each turned into
   * a value by `options.decode`. Dumps of one session run one at a time. Rejects with NetlinkError,
   * TimeoutError (no progress for `timeoutMs`), OverrunError, or DumpInterruptedError (see
   * `onInterrupted`).
   */
  dump<T>(req: Request, options: DumpOptions<T>): Promise<T[]> {
    const run = this.dumpQueue.then(() => dumpUnderPolicy(() => this.dumpOnce(req, options), options.onInterrupted, options.retries));
    this.dumpQueue = run.catch(() => undefined);
    return run;
  }

  private dumpOnce<T>(req: Request, options: DumpOptions<T>): Promise<DumpAttempt<T>> {
    return new Promise((resolve, reject) => {
      this.checkOpen();
      const flags = NLM_F.REQUEST | NLM_F.DUMP | (req.flags ?? 0);
      const w = this.writer;
      w.reset();
      const seq = this.write(w, req, flags);
      const info = this.info(req.type, flags, seq);
      this.register(seq, req, flags, true, options.decode, options.timeoutMs, (o) =>
        o.error ? reject(o.error) : resolve({ items: o.replies as T[], interrupted: o.interrupted, info }),
      );
      this.transmit(w.view(), [seq]);
    });
  }

  /**
   * Send many requests with as few system calls as fit the socket buffers. Resolves with one
   * result per request, in order; a refused request does not stop the others (the kernel goes on
   * with the next message). Every request is encoded before the first byte is sent, so bad input
   * sends nothing.
   *
   * Only the last request of each sendmsg carries NLM_F_ACK: the kernel processes a datagram's
   * messages in order inside sendmsg and always answers a refusal, so every request without an
   * error ahead of that ACK succeeded. This spares the kernel an ACK per request and us a receive
   * per request (measured: about half the cost of a batch of u32 filters). The price: the kernel's
   * warnings on successful requests are only seen with `ackEach: true`, and when a chunk's ACK
   * never comes (timeout, receive overrun), every request of the chunk not already refused fails
   * with that error.
   */
  async batch(reqs: Iterable<Request>, options: { timeoutMs?: number; ackEach?: boolean } = {}): Promise<BatchResult[]> {
    this.checkOpen();
    const ackEach = options.ackEach ?? false;
    const { buf, seqs, ends, sent } = encodeBatch(reqs, ackEach, this.chunk.batchBytes, (w, req, flags) => this.write(w, req, flags));
    const count = sent.length;
    const results: BatchResult[] = new Array(count);
    const ok: BatchResult = { ok: true, warnings: [] };
    let first = 0;
    while (first < count) {
      const chunkStart = first ? ends[first - 1]! : 0;
      const last = chunkEnd(first, ends, chunkStart, this.chunk);
      const chunkFirst = first;
      const chunkLast = last;
      let outstanding = ackEach ? last - first : 1;
      let wake: (() => void) | undefined;
      const settle = (i: number, o: Outcome) => {
        results[i] = o.error ? { ok: false, error: o.error as RequestFailure } : o.warnings.length ? { ok: true, warnings: o.warnings } : ok;
        if (--outstanding === 0) wake?.();
      };
      const flagsOf = (i: number) => NLM_F.REQUEST | (ackEach || i === chunkLast - 1 ? NLM_F.ACK : 0) | (sent[i]!.flags ?? 0);
      if (ackEach) {
        for (let i = first; i < last; i++) this.register(seqs[i]!, sent[i]!, flagsOf(i), false, undefined, options.timeoutMs, (o) => settle(i, o));
      } else {
        // The chunk's last message asks for the ACK; the others answer only when refused.
        buf.writeUInt16LE(flagsOf(last - 1), (last - 1 ? ends[last - 2]! : 0) + 6);
        const silent: SilentRange = {
          firstSeq: seqs[first]!,
          count: last - first - 1,
          refused: (k, m) => {
            const i = chunkFirst + k;
            if (m.payload.length >= 4 && m.payload.readInt32LE(0) === 0) return; // an ACK nobody asked for
            results[i] = { ok: false, error: this.refusal(this.info(sent[i]!.type, flagsOf(i), seqs[i]!), sent[i]!.schema, m) };
          },
        };
        this.silent.push(silent);
        this.register(seqs[last - 1]!, sent[last - 1]!, flagsOf(last - 1), false, undefined, options.timeoutMs, (o) => {
          this.silent.splice(this.silent.indexOf(silent), 1);
          // The kernel answered the last request (ACK or refusal): it went through the whole
          // chunk. Any other failure (timeout, overrun, closed) leaves the rest unknown.
          const unknown = o.error && !(o.error instanceof NetlinkError);
          for (let i = chunkFirst; i < chunkLast - 1; i++) {
            if (results[i]) continue;
            results[i] = unknown ? { ok: false, error: o.error as RequestFailure } : ok;
          }
          settle(chunkLast - 1, o);
        });
      }
      this.transmit(buf.subarray(chunkStart, ends[last - 1]!), seqs.slice(first, last));
      if (outstanding > 0) await new Promise<void>((r) => (wake = r));
      first = last;
    }
    return results;
  }

  private register(
    seq: number,
    req: Pick<Request, 'type' | 'schema'>,
    flags: number,
    dump: boolean,
    decode: ((m: NetlinkMessage) => unknown) | undefined,
    timeoutMs: number | undefined,
    settle: (o: Outcome) => void,
  ): void {
    const t = timeoutMs ?? this.timeoutMs;
    this.pending.set(seq, {
      info: this.info(req.type, flags, seq),
      schema: req.schema,
      dump,
      decode,
      replies: [],
      interrupted: false,
      timeoutMs: t,
      deadline: Date.now() + t,
      settle,
    });
  }

  /** Send bytes holding the messages `seqs`; collect what the kernel already answered. */
  private transmit(bytes: Buffer, seqs: number[]): void {
    try {
      this.socket.send(bytes, bytes.length);
    } catch (e) {
      for (const seq of seqs) this.finish(seq, { error: e as Error });
      return;
    }
    this.drain();
  }

  /** Read every queued datagram and dispatch its messages; poll when answers are still due. */
  private drain(): void {
    if (this.draining || this.socket.isClosed) return;
    this.draining = true;
    try {
      for (;;) {
        let d;
        try {
          d = this.socket.receive();
        } catch (e) {
          this.failAll(e as Error);
          break;
        }
        if (d === RECV_EMPTY) break;
        if (d === RECV_OVERRUN) {
          this.failAll(new OverrunError('netlink request socket'));
          continue;
        }
        if (d === RECV_TRUNCATED) {
          this.failAll(new OverrunError(`a ${this.socket.lastTruncatedBytes}-byte answer did not fit the receive buffer (now enlarged; retry)`));
          continue;
        }
        if (d.senderPort !== 0) continue; // only the kernel may answer us
        let messages: NetlinkMessage[];
        try {
          messages = parseMessages(d.data);
        } catch (e) {
          this.failAll(e as Error);
          continue;
        }
        for (const m of messages) this.dispatch(m);
      }
    } finally {
      this.draining = false;
    }
    this.schedule();
  }

  private dispatch(m: NetlinkMessage): void {
    const p = this.pending.get(m.seq);
    if (!p) {
      if (m.type === NLMSG.ERROR && this.silent.length && this.dispatchSilent(m)) return;
      if (m.type >= NLMSG.MIN_TYPE) this.onUnsolicited?.(m);
      return; // a late answer to a request that timed out, or a notification
    }
    if (m.flags & NLM_F.DUMP_INTR) p.interrupted = true;
    if (p.dump) p.deadline = Date.now() + p.timeoutMs; // a dump that makes progress is alive
    try {
      switch (m.type) {
        case NLMSG.NOOP:
          return;
        case NLMSG.ERROR: {
          const e = parseErrorPayload(m);
          const extack = withAttributePath(e, p.schema);
          if (e.error !== 0) {
            this.finish(m.seq, { error: new NetlinkError(-e.error, p.info, extack) });
          } else {
            const warnings: NetlinkWarning[] = [];
            if (extack?.message) {
              const warning: NetlinkWarning = { message: extack.message, request: p.info };
              if (extack.attributePath) warning.attributePath = extack.attributePath;
              warnings.push(warning);
              this.onWarning?.(warning);
            }
            this.finish(m.seq, { warnings, replies: p.replies, interrupted: p.interrupted });
          }
          return;
        }
        case NLMSG.DONE: {
          const d = parseDonePayload(m);
          if (d.error < 0) this.finish(m.seq, { error: new NetlinkError(-d.error, p.info, d.extack) });
          else this.finish(m.seq, { warnings: [], replies: p.replies, interrupted: p.interrupted });
          return;
        }
        case NLMSG.OVERRUN:
          this.finish(m.seq, { error: new OverrunError(p.info.typeName ?? `request ${p.info.seq}`) });
          return;
        default:
          if (p.decode) p.replies.push(p.decode(m));
      }
    } catch (e) {
      this.finish(m.seq, { error: e instanceof Error ? e : new Error(String(e)) });
    }
  }

  /** A refusal of a request sent without NLM_F_ACK in a batch; false when it is none of ours. */
  private dispatchSilent(m: NetlinkMessage): boolean {
    for (const r of this.silent) {
      const k = (m.seq - r.firstSeq) >>> 0;
      if (k >= r.count) continue;
      try {
        r.refused(k, m);
      } catch {
        return false; // a malformed error message: leave it to the chunk's ACK
      }
      return true;
    }
    return false;
  }

  /** The NetlinkError of an NLMSG_ERROR message answering the request described by `info`. */
  private refusal(info: RequestInfo, schema: MessageSchema | undefined, m: NetlinkMessage): NetlinkError {
    const e = parseErrorPayload(m);
    return new NetlinkError(-e.error, info, withAttributePath(e, schema));
  }

  private finish(seq: number, o: Outcome): void {
    const p = this.pending.get(seq);
    if (!p) return;
    this.pending.delete(seq);
    p.settle(o);
  }

  private failAll(error: Error): void {
    for (const seq of [...this.pending.keys()]) this.finish(seq, { error });
  }

  /** Poll and arm the timeout while answers are due; stop both when none are. */
  private schedule(): void {
    if (this.pending.size === 0) {
      this.socket.stopPolling();
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
      }
      return;
    }
    if (!this.socket.isClosed) this.socket.startPolling(() => this.drain());
    if (!this.timer) {
      let earliest = Infinity;
      for (const p of this.pending.values()) earliest = Math.min(earliest, p.deadline);
      this.timer = setTimeout(() => this.expire(), Math.max(0, earliest - Date.now()) + 1);
    }
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [seq, p] of [...this.pending]) {
      if (p.deadline <= now) this.finish(seq, { error: new TimeoutError(p.info, p.timeoutMs) });
    }
    this.schedule();
  }

  private checkOpen(): void {
    if (this.socket.isClosed) throw new ClosedError('netlink session');
  }

  /** Close the socket; requests still waiting are rejected with ClosedError. */
  close(): void {
    if (this.socket.isClosed) return;
    this.socket.close();
    this.failAll(new ClosedError('netlink session'));
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
