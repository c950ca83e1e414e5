import { EventEmitter } from 'node:events';
import type { NetlinkMessage } from './framing.js';
import { parseMessages } from './framing.js';
import type { SocketOptions } from './socket.js';
import { NetlinkSocket, RECV_EMPTY, RECV_OVERRUN, RECV_TRUNCATED } from './socket.js';

/** Options of NetlinkSubscription.open: the socket's (namespace, buffer sizes, protocol) and the groups. */
export interface SubscriptionOptions extends Omit<SocketOptions, 'groups'> {
  /** Multicast group numbers to join (RTNLGRP_LINK = 1, ...). */
  groups: readonly number[];
}

/** The events a NetlinkSubscription emits, with their listeners' arguments. */
export interface SubscriptionEvents {
  /** A notification. Its bytes are valid during the callback only: decode or copy them there. */
  message: [msg: NetlinkMessage];
  /** The kernel dropped notifications (ENOBUFS): state may have changed unseen; resynchronise. */
  overrun: [];
  /** Receiving or parsing failed (a SocketError or DecodeError); without a listener, a process warning. */
  error: [err: Error];
}

/**
 * A multicast subscription on its own socket. Notifications arrive as 'message' events; a
 * receive-buffer overflow is reported as 'overrun' rather than silently losing events. The
 * subscription does not keep the process alive unless ref() is called.
 */
export class NetlinkSubscription extends EventEmitter<SubscriptionEvents> {
  readonly socket: NetlinkSocket;
  /** Notifications dropped by the kernel were detected this many times. */
  overruns = 0;

  private constructor(socket: NetlinkSocket) {
    super();
    this.socket = socket;
  }

  /**
   * Open a socket (in `options.netns` if given), join `options.groups` and start listening. Throws
   * SocketError (NetnsError for the namespace) when the socket cannot be opened or a group joined.
   */
  static open(options: SubscriptionOptions): NetlinkSubscription {
    const socket = NetlinkSocket.open({ ...options, groups: 0 });
    try {
      for (const g of options.groups) socket.addMembership(g);
    } catch (e) {
      socket.close();
      throw e;
    }
    const sub = new NetlinkSubscription(socket);
    socket.unref();
    socket.startPolling(() => sub.drain());
    return sub;
  }

  /** 'error' without a listener would throw inside the event loop's poll callback: warn instead. */
  private fail(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
    else process.emitWarning(`netlink subscription: ${e.message}`);
  }

  /** Read what is queued now (also called from the event loop when the socket is readable). */
  drain(): void {
    while (!this.socket.isClosed) {
      let d;
      try {
        d = this.socket.receive();
      } catch (e) {
        this.fail(e as Error);
        return;
      }
      if (d === RECV_EMPTY) return;
      if (d === RECV_OVERRUN || d === RECV_TRUNCATED) {
        this.overruns++;
        this.emit('overrun');
        continue;
      }
      if (d.senderPort !== 0) continue;
      let messages: NetlinkMessage[];
      try {
        messages = parseMessages(d.data);
      } catch (e) {
        this.fail(e as Error);
        continue;
      }
      for (const m of messages) this.emit('message', m);
    }
  }

  /** Keep the process alive while subscribed. */
  ref(): this {
    this.socket.ref();
    return this;
  }
  /** Let the process exit while subscribed (the default). */
  unref(): this {
    this.socket.unref();
    return this;
  }

  /** Stop listening and close the socket. Idempotent. */
  close(): void {
    this.socket.close();
  }
}
