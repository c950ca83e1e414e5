import { errnoCode, errnoMessage } from './errno.js';

/** What the kernel's extended ACK said about a request (NLMSGERR_ATTR_*). */
export interface ExtendedAck {
  /** NLMSGERR_ATTR_MSG: the kernel's own text, verbatim. */
  message?: string;
  /** NLMSGERR_ATTR_OFFS: byte offset of the offending attribute, from the start of our nlmsghdr. */
  offset?: number;
  /** The offset resolved against our request: attribute names from the outside in. */
  attributePath?: string[];
  /** NLMSGERR_ATTR_MISS_TYPE: a required attribute that was missing. */
  missingType?: number;
  /** NLMSGERR_ATTR_MISS_NEST: offset of the nest in which it was missing. */
  missingNestOffset?: number;
  /** NLMSGERR_ATTR_COOKIE. */
  cookie?: Buffer;
  /** NLMSGERR_ATTR_POLICY, undecoded. */
  policy?: Buffer;
}

/** The request a kernel answer refers to. */
export interface RequestInfo {
  /** nlmsg_type, e.g. 16 (RTM_NEWLINK). */
  type: number;
  /** e.g. 'RTM_NEWLINK', when the session knows the family's message names. */
  typeName?: string;
  /** NLM_F_* flags the request was sent with. */
  flags: number;
  /** Its sequence number. */
  seq: number;
}

function describeRequest(r: RequestInfo): string {
  return r.typeName ?? `message type ${r.type}`;
}

/** The kernel refused a request (NLMSG_ERROR with a non-zero error). */
export class NetlinkError extends Error {
  override readonly name = 'NetlinkError';
  readonly syscall = 'netlink';
  /** Positive errno, e.g. 17. */
  readonly errno: number;
  /** Symbolic errno, e.g. 'EEXIST'. */
  readonly code: string;
  /** The refused request: type (and name), flags, sequence number. */
  readonly request: RequestInfo;
  /** What the kernel's extended ACK said, if anything: its text and the offending attribute. */
  readonly extack: ExtendedAck | undefined;

  /** `errno` may be given negative, as the kernel sends it. */
  constructor(errno: number, request: RequestInfo, extack?: ExtendedAck) {
    const e = Math.abs(errno);
    const where = extack?.attributePath?.length ? ` (at ${extack.attributePath.join(' › ')})` : '';
    const text = extack?.message ? `${extack.message}${where}` : `${errnoMessage(e)}${where}`;
    super(`${describeRequest(request)}: ${errnoCode(e)}: ${text}`);
    this.errno = e;
    this.code = errnoCode(e);
    this.request = request;
    this.extack = extack;
  }

  /** The object already exists (EEXIST), e.g. an exclusive create of something present. */
  isExists(): boolean {
    return this.code === 'EEXIST';
  }
  /** The object is not there: ENOENT, ENODEV, ESRCH or EADDRNOTAVAIL, as the kernel says it per object type. */
  isNotFound(): boolean {
    return this.code === 'ENOENT' || this.code === 'ENODEV' || this.code === 'ESRCH' || this.code === 'EADDRNOTAVAIL';
  }
  /** The kernel lacks the feature: EOPNOTSUPP, ENOTSUP or EPROTONOSUPPORT (e.g. a qdisc kind not built). */
  isNotSupported(): boolean {
    return this.code === 'EOPNOTSUPP' || this.code === 'ENOTSUP' || this.code === 'EPROTONOSUPPORT';
  }
}

/** A kernel warning carried by a successful ACK (extended-ack text with error 0). */
export interface NetlinkWarning {
  /** The kernel's text, verbatim. */
  message: string;
  /** The request it was about. */
  request: RequestInfo;
  /** The attribute it names, as a path in the request, when the kernel gave an offset. */
  attributePath?: string[];
}

/** Bytes that do not parse as what they claim to be. `path` names the attributes we were inside. */
export class DecodeError extends Error {
  override readonly name: string = 'DecodeError';
  /** The attributes we were inside, from the outside in. */
  readonly path: string[];
  /** Byte offset of the problem within the buffer being decoded. */
  readonly offset: number;
  /** What is wrong, without the path. */
  readonly reason: string;

  /** The message is `path › …: reason`. */
  constructor(reason: string, path: readonly string[] = [], offset = 0) {
    super(path.length ? `${path.join(' › ')}: ${reason}` : reason);
    this.path = [...path];
    this.offset = offset;
    this.reason = reason;
  }
}

/** A value cannot be encoded (wrong type, out of range, unknown attribute name). Nothing was sent. */
export class EncodeError extends Error {
  override readonly name: string = 'EncodeError';
  /** The attributes we were inside, from the message type outwards in. */
  readonly path: string[];
  /** What is wrong, without the path. */
  readonly reason: string;
  /** The message is `path › …: reason`. */
  constructor(reason: string, path: readonly string[] = []) {
    super(path.length ? `${path.join(' › ')}: ${reason}` : reason);
    this.path = [...path];
    this.reason = reason;
  }
}

/** No answer in time. The request may still have been applied by the kernel. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  /** The message names the request, the wait and the sequence number. */
  constructor(
    /** The request that got no answer. */
    readonly request: RequestInfo,
    /** How long it waited, in milliseconds. */
    readonly timeoutMs: number,
  ) {
    super(`${describeRequest(request)}: no answer from the kernel within ${timeoutMs} ms (seq ${request.seq})`);
  }
}

/** The socket's receive buffer overflowed (ENOBUFS): messages were lost; resynchronise. */
export class OverrunError extends Error {
  override readonly name = 'OverrunError';
  readonly code = 'ENOBUFS';
  /** `context` names the socket or request that lost messages. */
  constructor(context: string) {
    super(`${context}: netlink receive buffer overrun (ENOBUFS): messages were lost`);
  }
}

/** A dump was interrupted by a concurrent change (NLM_F_DUMP_INTR); `partial` holds what arrived. */
export class DumpInterruptedError<T = unknown> extends Error {
  override readonly name = 'DumpInterruptedError';
  readonly code = 'EINTR';
  /** `attempts`: how many times the dump was tried. */
  constructor(
    /** The dump request. */
    readonly request: RequestInfo,
    /** What the last attempt collected, possibly inconsistent. */
    readonly partial: T[],
    attempts: number,
  ) {
    super(
      `${describeRequest(request)}: dump interrupted by a concurrent change (NLM_F_DUMP_INTR) after ${attempts} attempt(s); the ${partial.length} results may be inconsistent`,
    );
  }
}

/** A system call of the shim failed: `syscall`, `errno` and `code` say which and why. */
export class SocketError extends Error {
  override readonly name: string = 'SocketError';
  /** Positive errno, e.g. 2. */
  readonly errno: number;
  /** Symbolic errno, e.g. 'ENOENT'. */
  readonly code: string;
  /** The message is `context: syscall: CODE: strerror`; `errno` may be given negative. */
  constructor(
    /** The system call that failed, e.g. 'sendmsg'. */
    readonly syscall: string,
    errno: number,
    context?: string,
  ) {
    const e = Math.abs(errno);
    super(`${context ? context + ': ' : ''}${syscall}: ${errnoCode(e)}: ${errnoMessage(e)}`);
    this.errno = e;
    this.code = errnoCode(e);
  }
}

/**
 * A network namespace could not be opened or entered: the path does not exist
 * (`/run/netns/foo: no such network namespace (ENOENT)`), is not a namespace, or may not be
 * entered. `path` is the namespace's path; `errno`, `code` and `syscall` as in SocketError, of
 * which this is a kind.
 */
export class NetnsError extends SocketError {
  override readonly name: string = 'NetnsError';
  /** The message is `path: no such network namespace (ENOENT)` or the like, from `errno`. */
  constructor(
    /** The namespace's path (or `netns fd N` for a handle made from an fd). */
    readonly path: string,
    syscall: string,
    errno: number,
  ) {
    super(syscall, errno);
    const e = Math.abs(errno);
    const code = errnoCode(e);
    const what =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? 'no such network namespace'
        : code === 'EINVAL' && syscall === 'setns'
          ? 'not a network namespace'
          : `cannot open or enter the network namespace: ${errnoMessage(e)}`;
    this.message = `${path}: ${what} (${code})`;
  }
}

/** The socket was closed while requests were waiting. */
export class ClosedError extends Error {
  override readonly name = 'ClosedError';
  readonly code = 'ECANCELED';
  /** The message is `<what> was closed`. */
  constructor(what = 'netlink socket') {
    super(`${what} was closed`);
  }
}

/** Why one request failed: the kernel's refusal, or a transport problem. */
export type RequestFailure = NetlinkError | TimeoutError | OverrunError | ClosedError | SocketError | DecodeError;

/** One outcome per request of a batch: a failure does not hide the other requests' outcomes. */
export type BatchResult = { ok: true; warnings: NetlinkWarning[] } | { ok: false; error: RequestFailure };
