import { MSG, NETLINK, NETLINK_OPT, SOL_NETLINK, SOL_SOCKET, SO } from './constants.js';
import { NetnsError, SocketError } from './errors.js';
import type { Netns } from './netns.js';
import type { NativePoller, NativeShim } from './shim.js';
import { nativeShim } from './shim.js';

/** Options of NetlinkSocket.open (and of NetlinkSession.open, which extends them). */
export interface SocketOptions {
  /** Netlink protocol (NETLINK.ROUTE by default). */
  protocol?: number;
  /** Multicast groups bitmask to bind with (legacy groups 1..32). */
  groups?: number;
  /** Open the socket inside this network namespace (it stays bound there). */
  netns?: Netns;
  /** Receive buffer size in bytes (default 4 MiB); set with SO_RCVBUFFORCE when allowed, so batches never lose ACKs. */
  rcvbufBytes?: number;
  /** Send buffer size in bytes (default 1 MiB; bounds the size of one batch datagram). */
  sndbufBytes?: number;
  /** Ask for extended ACKs (NETLINK_EXT_ACK). Default true. */
  extendedAck?: boolean;
  /** Strict checking of dump requests (NETLINK_GET_STRICT_CHK). Default true. */
  strictCheck?: boolean;
  /** An alternative shim (a fake kernel in tests). */
  shim?: NativeShim;
}

/** One received datagram: a view of the socket's receive buffer, valid until the next receive. */
export interface Datagram {
  /** The datagram's bytes (a view, see above). */
  data: Buffer;
  /** The sender's port id: 0 for the kernel. */
  senderPort: number;
  /** The multicast group bitmask it was sent to (0 for a unicast answer). */
  groups: number;
}

const DEFAULT_RCVBUF = 4 << 20;
const DEFAULT_SNDBUF = 1 << 20;
const INITIAL_RECV_BUFFER = 64 << 10;

/** NetlinkSocket.receive(): nothing is queued. */
export const RECV_EMPTY = 0;
/** NetlinkSocket.receive(): the kernel dropped messages (ENOBUFS). */
export const RECV_OVERRUN = -1;
/** NetlinkSocket.receive(): a datagram was larger than the receive buffer and was lost (the buffer grows for the next). */
export const RECV_TRUNCATED = -2;

/**
 * An AF_NETLINK socket: open/bind/options, datagram send and non-blocking receive, and a
 * readiness callback on the event loop. No protocol logic: see session.ts.
 */
export class NetlinkSocket {
  readonly fd: number;
  readonly protocol: number;
  /** The port id the kernel assigned at bind time. */
  readonly portId: number;
  readonly shim: NativeShim;
  private recvBuf = Buffer.allocUnsafe(INITIAL_RECV_BUFFER);
  private readonly meta = new Int32Array(3);
  private poller: NativePoller | undefined;
  private polling = false;
  private refed = true;
  /** Size of the last datagram that did not fit the receive buffer. */
  lastTruncatedBytes = 0;
  private closed = false;

  private constructor(shim: NativeShim, fd: number, protocol: number, portId: number) {
    this.shim = shim;
    this.fd = fd;
    this.protocol = protocol;
    this.portId = portId;
  }

  /**
   * Open and bind a socket, inside `netns` when given (synchronously, see Netns.run): it stays in
   * that namespace. Throws NetnsError when the namespace does not exist or cannot be entered,
   * SocketError when a system call fails.
   */
  static open(options: SocketOptions = {}): NetlinkSocket {
    const shim = options.shim ?? nativeShim();
    const protocol = options.protocol ?? NETLINK.ROUTE;
    const create = () => {
      const fd = shim.socket(protocol);
      try {
        NetlinkSocket.configure(shim, fd, options);
        const portId = shim.bind(fd, options.groups ?? 0);
        return new NetlinkSocket(shim, fd, protocol, portId);
      } catch (e) {
        shim.close(fd);
        throw e;
      }
    };
    try {
      return options.netns ? options.netns.run(create) : create();
    } catch (e) {
      if (e instanceof NetnsError) throw e; // names the namespace's path already
      const err = e as { errno?: number; syscall?: string; message: string };
      if (typeof err.errno === 'number' && err.syscall) throw new SocketError(err.syscall, err.errno, 'opening a netlink socket');
      throw e;
    }
  }

  private static configure(shim: NativeShim, fd: number, o: SocketOptions): void {
    setBuffer(shim, fd, SO.RCVBUFFORCE, SO.RCVBUF, o.rcvbufBytes ?? DEFAULT_RCVBUF);
    setBuffer(shim, fd, SO.SNDBUFFORCE, SO.SNDBUF, o.sndbufBytes ?? DEFAULT_SNDBUF);
    if (o.extendedAck ?? true) trySet(shim, fd, NETLINK_OPT.EXT_ACK, 1);
    if (o.strictCheck ?? true) trySet(shim, fd, NETLINK_OPT.GET_STRICT_CHK, 1);
  }

  /** The send buffer the kernel granted, in bytes (it doubles what was asked). */
  get sndbufBytes(): number {
    return this.shim.getsockopt(this.fd, SOL_SOCKET, SO.SNDBUF);
  }
  /** The receive buffer the kernel granted, in bytes (it doubles what was asked). */
  get rcvbufBytes(): number {
    return this.shim.getsockopt(this.fd, SOL_SOCKET, SO.RCVBUF);
  }

  /** setsockopt(SOL_NETLINK, name, value), e.g. NETLINK_OPT.EXT_ACK. Throws SocketError. */
  setOption(name: number, value: number): void {
    this.checkOpen();
    try {
      this.shim.setsockopt(this.fd, SOL_NETLINK, name, value);
    } catch (e) {
      throw new SocketError('setsockopt', (e as { errno: number }).errno);
    }
  }

  /** Join a multicast group (any number, including those above 32). Throws SocketError. */
  addMembership(group: number): void {
    this.setOption(NETLINK_OPT.ADD_MEMBERSHIP, group);
  }
  /** Leave a multicast group. Throws SocketError. */
  dropMembership(group: number): void {
    this.setOption(NETLINK_OPT.DROP_MEMBERSHIP, group);
  }

  /** Send one datagram (which may hold many messages). Throws SocketError on failure. */
  send(buf: Buffer, length = buf.length): void {
    this.checkOpen();
    const n = this.shim.send(this.fd, buf, length);
    if (n < 0) throw new SocketError('sendmsg', -n);
    if (n !== length) throw new SocketError('sendmsg', 5 /* EIO */, `short send: ${n} of ${length} bytes`);
  }

  /** Send one datagram from a threadpool thread; resolves when the kernel has taken (and processed) it, rejects with SocketError. */
  sendInBackground(buf: Buffer): Promise<void> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      this.shim.sendInBackground(this.fd, buf, buf.length, (n) => {
        if (n < 0) reject(new SocketError('sendmsg', -n));
        else resolve();
      });
    });
  }

  /** Send several datagrams in as few sendmmsg(2) calls as it takes. Throws SocketError. */
  sendMany(bufs: Buffer[]): void {
    this.checkOpen();
    let sent = 0;
    while (sent < bufs.length) {
      const n = this.shim.sendmmsg(this.fd, sent ? bufs.slice(sent) : bufs);
      if (n < 0) throw new SocketError('sendmmsg', -n);
      sent += n;
    }
  }

  /**
   * Receive one datagram without blocking. Returns RECV_EMPTY when nothing is queued and
   * RECV_OVERRUN when the kernel dropped messages (ENOBUFS); otherwise the datagram, whose
   * bytes stay valid until the next call. RECV_TRUNCATED: a datagram did not fit and was lost.
   * Throws SocketError for other failures.
   */
  receive(): Datagram | typeof RECV_EMPTY | typeof RECV_OVERRUN | typeof RECV_TRUNCATED {
    this.checkOpen();
    for (;;) {
      const n = this.shim.recv(this.fd, this.recvBuf, MSG.TRUNC, this.meta);
      if (n >= 0 && n <= this.recvBuf.length) {
        return { data: this.recvBuf.subarray(0, n), senderPort: this.meta[0]! >>> 0, groups: this.meta[2]! >>> 0 };
      }
      if (n > this.recvBuf.length) {
        // MSG_TRUNC told us the real size: that datagram is lost, so grow for the next one. The
        // kernel's dump datagrams are at most 32 KiB, so this takes a single message over 64 KiB.
        this.lastTruncatedBytes = n;
        this.recvBuf = Buffer.allocUnsafe(Math.max(n, this.recvBuf.length * 2));
        return RECV_TRUNCATED;
      }
      if (-n === 11 /* EAGAIN */) return RECV_EMPTY;
      if (-n === 105 /* ENOBUFS */) return RECV_OVERRUN;
      throw new SocketError('recvmsg', -n);
    }
  }

  /** Block the thread until a datagram is queued or `timeoutMs` (milliseconds) passes; true when readable. Throws SocketError. */
  waitReadable(timeoutMs: number): boolean {
    this.checkOpen();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = this.shim.waitReadable(this.fd, Math.max(0, Math.ceil(deadline - Date.now())));
      if (r === -4 /* EINTR: a signal, not a timeout */ && Date.now() < deadline) continue;
      if (r < 0 && r !== -4) throw new SocketError('poll', -r);
      return r === 1;
    }
  }

  /** Call `onReadable` from the event loop whenever a datagram is queued, until stopPolling(). */
  startPolling(onReadable: () => void): void {
    this.checkOpen();
    if (!this.poller) {
      this.poller = new this.shim.Poller(this.fd, () => onReadable());
      if (!this.refed) this.poller.unref();
    }
    if (!this.polling) {
      this.poller.start();
      this.polling = true;
    }
  }
  /** Stop the readiness callback (startPolling resumes it). */
  stopPolling(): void {
    if (this.poller && this.polling) {
      this.poller.stop();
      this.polling = false;
    }
  }
  /** Whether an active poll keeps the process alive (default yes). */
  ref(): void {
    this.refed = true;
    this.poller?.ref();
  }
  /** Let the process exit while polling. */
  unref(): void {
    this.refed = false;
    this.poller?.unref();
  }

  /** Whether close() was called. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Stop polling and close the fd. Idempotent; afterwards every other call throws SocketError (EBADF). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poller?.close();
    this.poller = undefined;
    this.shim.close(this.fd);
  }

  private checkOpen(): void {
    if (this.closed) throw new SocketError('netlink', 9 /* EBADF */, 'socket is closed');
  }
}

function setBuffer(shim: NativeShim, fd: number, force: number, plain: number, bytes: number): void {
  try {
    shim.setsockopt(fd, SOL_SOCKET, force, bytes);
  } catch {
    shim.setsockopt(fd, SOL_SOCKET, plain, bytes); // without CAP_NET_ADMIN: capped by net.core.*mem_max
  }
}

function trySet(shim: NativeShim, fd: number, opt: number, value: number): void {
  try {
    shim.setsockopt(fd, SOL_NETLINK, opt, value);
  } catch {
    // Older kernels lack the option; behaviour degrades gracefully (no extack / lenient dumps).
  }
}
