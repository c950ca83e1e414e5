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
  type: number;
  /** e.g. 'RTM_NEWLINK', when the session knows the family's message names. */
  typeName?: string;
  flags: number;
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
  readonly request: RequestInfo;
  readonly extack: ExtendedAck | undefined;

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

  isExists(): boolean {
    return this.code === 'EEXIST';
  }
  isNotFound(): boolean {
    return this.code === 'ENOENT' || this.code === 'ENODEV' || this.code === 'ESRCH' || this.code === 'EADDRNOTAVAIL';
  }
  isNotSupported(): boolean {
    return this.code === 'EOPNOTSUPP' || this.code === 'ENOTSUP' || this.code === 'EPROTONOSUPPORT';
  }
}

/** A kernel warning carried by a successful ACK (extended-ack text with error 0). */
export interface NetlinkWarning {
  message: string;
  request: RequestInfo;
  attributePath?: string[];
}

/** Bytes that do not parse as what they claim to be. `path` names the attributes we were inside. */
export class DecodeError extends Error {
  override readonly name: string = 'DecodeError';
  readonly path: string[];
  readonly offset: number;
  readonly reason: string;

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
  readonly path: string[];
  readonly reason: string;
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
  constructor(
    readonly request: RequestInfo,
    readonly timeoutMs: number,
  ) {
    super(`${describeRequest(request)}: no answer from the kernel within ${timeoutMs} ms (seq ${request.seq})`);
  }
}

/** The socket's receive buffer overflowed (ENOBUFS): messages were lost; resynchronise. */
export class OverrunError extends Error {
  override readonly name = 'OverrunError';
  readonly code = 'ENOBUFS';
  constructor(context: string) {
    super(`${context}: netlink receive buffer overrun (ENOBUFS): messages were lost`);
  }
}

/** A dump was interrupted by a concurrent change (NLM_F_DUMP_INTR); `partial` holds what arrived. */
export class DumpInterruptedError<T = unknown> extends Error {
  override readonly name = 'DumpInterruptedError';
  readonly code = 'EINTR';
  constructor(
    readonly request: RequestInfo,
    readonly partial: T[],
    attempts: number,
  ) {
    super(
      `${describeRequest(request)}: dump interrupted by a concurrent change (NLM_F_DUMP_INTR) after ${attempts} attempt(s); the ${partial.length} results may be inconsistent`,
    );
  }
}

/** A system call of the shim failed. */
export class SocketError extends Error {
  override readonly name = 'SocketError';
  readonly errno: number;
  readonly code: string;
  constructor(
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

/** The socket was closed while requests were waiting. */
export class ClosedError extends Error {
  override readonly name = 'ClosedError';
  readonly code = 'ECANCELED';
  constructor(what = 'netlink socket') {
    super(`${what} was closed`);
  }
}

/** Why one request failed: the kernel's refusal, or a transport problem. */
export type RequestFailure = NetlinkError | TimeoutError | OverrunError | ClosedError | SocketError | DecodeError;

/** One outcome per request of a batch: a failure does not hide the other requests' outcomes. */
export type BatchResult = { ok: true; warnings: NetlinkWarning[] } | { ok: false; error: RequestFailure };
