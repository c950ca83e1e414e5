/**
 * The request engine's public types: what a request is, and the options and answers of
 * request(), dump() and the session itself.
 */
import type { NetlinkWarning } from './errors.js';
import type { NetlinkMessage } from './framing.js';
import type { MessageSchema } from './message.js';
import type { SocketOptions } from './socket.js';
import type { Writer } from './writer.js';

/** A request to send: message type, flags and a body writer. NLM_F_REQUEST is always added. */
export interface Request {
  type: number;
  /** NLM_F_* flags (NLM_F_ACK is added for non-dump requests). */
  flags?: number;
  /** Writes the message body (everything after the nlmsghdr). */
  encode?: (w: Writer) => void;
  /** The body's schema, so that the kernel's NLMSGERR_ATTR_OFFS can be named as an attribute path. */
  schema?: MessageSchema;
}

export interface SessionOptions extends SocketOptions {
  /** Default time to wait for an answer. */
  timeoutMs?: number;
  /** Names of the family's message types, for errors ('RTM_NEWLINK'). */
  typeNames?: ReadonlyMap<number, string>;
  /** Called with every warning the kernel attaches to a successful ACK. */
  onWarning?: (w: NetlinkWarning) => void;
  /** Bytes of requests per sendmsg in a batch (bounded by the socket's send buffer). */
  batchBytes?: number;
  /** Requests per sendmsg in a batch (bounded so their ACKs fit the receive buffer). */
  batchMessages?: number;
}

export interface RequestOptions<T> {
  timeoutMs?: number;
  /**
   * Send from a threadpool thread, for requests the kernel processes slowly inside sendmsg
   * (deleting a veth waits ~20 ms for RCU): the event loop is not blocked meanwhile.
   */
  offload?: boolean;
  /** Turn each reply message into a value while its bytes are valid; default: a copy of the message. */
  decode?: (msg: NetlinkMessage) => T;
}

/** The answer to an acknowledged request: kernel warnings, and any reply messages (GET, ECHO). */
export interface AckResult<T = NetlinkMessage> {
  warnings: NetlinkWarning[];
  replies: T[];
}

/** What to do when the kernel flags a dump as interrupted by a concurrent change. */
export type InterruptedPolicy = 'retry' | 'throw' | 'accept';

export interface DumpOptions<T> {
  timeoutMs?: number;
  /** Default 'retry' (up to `retries` times, then throw DumpInterruptedError with the partial results). */
  onInterrupted?: InterruptedPolicy;
  retries?: number;
  decode: (msg: NetlinkMessage) => T;
}
