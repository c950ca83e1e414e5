/**
 * Netlink constants under their kernel names (include/uapi/linux/netlink.h, socket.h, sched.h,
 * mount.h). Grouped by prefix in frozen objects; never renumbered.
 */

/** Netlink protocol families (`NETLINK_ROUTE`, ...), the third argument of socket(2). */
export const NETLINK = Object.freeze({
  ROUTE: 0,
  USERSOCK: 2,
  SOCK_DIAG: 4,
  NFLOG: 5,
  XFRM: 6,
  SELINUX: 7,
  AUDIT: 9,
  FIB_LOOKUP: 10,
  CONNECTOR: 11,
  NETFILTER: 12,
  KOBJECT_UEVENT: 15,
  GENERIC: 16,
  CRYPTO: 21,
} as const);

/** Socket options at level SOL_NETLINK (`NETLINK_ADD_MEMBERSHIP`, ...). */
export const NETLINK_OPT = Object.freeze({
  ADD_MEMBERSHIP: 1,
  DROP_MEMBERSHIP: 2,
  PKTINFO: 3,
  BROADCAST_ERROR: 4,
  NO_ENOBUFS: 5,
  LISTEN_ALL_NSID: 8,
  LIST_MEMBERSHIPS: 9,
  CAP_ACK: 10,
  EXT_ACK: 11,
  GET_STRICT_CHK: 12,
} as const);

export const SOL_NETLINK = 270;
export const SOL_SOCKET = 1;

/** Generic socket options used on netlink sockets. */
export const SO = Object.freeze({
  SNDBUF: 7,
  RCVBUF: 8,
  SNDBUFFORCE: 32,
  RCVBUFFORCE: 33,
} as const);

/** nlmsghdr flags. The same bits mean different things for GET, NEW and DELETE requests. */
export const NLM_F = Object.freeze({
  REQUEST: 0x01,
  MULTI: 0x02,
  ACK: 0x04,
  ECHO: 0x08,
  DUMP_INTR: 0x10,
  DUMP_FILTERED: 0x20,
  // GET requests
  ROOT: 0x100,
  MATCH: 0x200,
  ATOMIC: 0x400,
  DUMP: 0x300,
  // NEW requests
  REPLACE: 0x100,
  EXCL: 0x200,
  CREATE: 0x400,
  APPEND: 0x800,
  // DELETE requests
  NONREC: 0x100,
  BULK: 0x200,
  // ACK messages
  CAPPED: 0x100,
  ACK_TLVS: 0x200,
} as const);

/** Control message types, below NLMSG_MIN_TYPE. */
export const NLMSG = Object.freeze({
  NOOP: 0x1,
  ERROR: 0x2,
  DONE: 0x3,
  OVERRUN: 0x4,
  MIN_TYPE: 0x10,
} as const);

export const NLMSG_HDRLEN = 16;
export const NLMSG_ALIGNTO = 4;
export const NLA_HDRLEN = 4;
export const NLA_ALIGNTO = 4;

/** Extended-ack TLVs carried by NLMSG_ERROR and NLMSG_DONE (enum nlmsgerr_attrs). */
export const NLMSGERR_ATTR = Object.freeze({
  UNUSED: 0,
  MSG: 1,
  OFFS: 2,
  COOKIE: 3,
  POLICY: 4,
  MISS_TYPE: 5,
  MISS_NEST: 6,
} as const);

/** Attribute type flags (top bits of nla_type). */
export const NLA_F = Object.freeze({
  NESTED: 1 << 15,
  NET_BYTEORDER: 1 << 14,
} as const);
export const NLA_TYPE_MASK = ~(NLA_F.NESTED | NLA_F.NET_BYTEORDER) & 0xffff;

/** unshare(2)/setns(2) namespace types. */
export const CLONE = Object.freeze({
  NEWNET: 0x40000000,
} as const);

/** mount(2) flags used to pin a namespace. */
export const MS = Object.freeze({
  NOSUID: 2,
  NODEV: 4,
  NOEXEC: 8,
  BIND: 4096,
  REC: 16384,
  PRIVATE: 1 << 18,
  SHARED: 1 << 20,
} as const);

/** umount2(2) flags. */
export const MNT = Object.freeze({
  DETACH: 2,
} as const);

/** flock(2) operations. */
export const LOCK = Object.freeze({
  SH: 1,
  EX: 2,
  NB: 4,
  UN: 8,
} as const);

/** recvmsg(2) flags and msg_flags bits. */
export const MSG = Object.freeze({
  PEEK: 0x2,
  TRUNC: 0x20,
  DONTWAIT: 0x40,
} as const);

export const align4 = (n: number): number => (n + 3) & ~3;
