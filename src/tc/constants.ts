/**
 * Traffic-control constants under their kernel names (include/uapi/linux/pkt_sched.h, pkt_cls.h,
 * rtnetlink.h, gen_stats.h, tc_act/tc_mirred.h, if_ether.h). Frozen, grouped by prefix, never
 * renumbered.
 */

/** Special tc handles and minor numbers (TC_H_*). */
export const TC_H = Object.freeze({
  MAJ_MASK: 0xffff0000,
  MIN_MASK: 0x0000ffff,
  UNSPEC: 0,
  ROOT: 0xffffffff,
  INGRESS: 0xfffffff1,
  CLSACT: 0xfffffff1,
  MIN_PRIORITY: 0xffe0,
  MIN_INGRESS: 0xfff2,
  MIN_EGRESS: 0xfff3,
} as const);

/** Attributes of qdisc, class and filter messages (enum TCA_*). */
export const TCA = Object.freeze({
  UNSPEC: 0,
  KIND: 1,
  OPTIONS: 2,
  STATS: 3,
  XSTATS: 4,
  RATE: 5,
  FCNT: 6,
  STATS2: 7,
  STAB: 8,
  PAD: 9,
  DUMP_INVISIBLE: 10,
  CHAIN: 11,
  HW_OFFLOAD: 12,
  INGRESS_BLOCK: 13,
  EGRESS_BLOCK: 14,
  DUMP_FLAGS: 15,
  EXT_WARN_MSG: 16,
} as const);

/** Attributes nested in TCA_STATS2 and TCA_ACT_STATS (gen_stats.h). */
export const TCA_STATS = Object.freeze({
  UNSPEC: 0,
  BASIC: 1,
  RATE_EST: 2,
  QUEUE: 3,
  APP: 4,
  RATE_EST64: 5,
  PAD: 6,
  BASIC_HW: 7,
  PKT64: 8,
} as const);

/** Link layers of a tc_ratespec (lower 4 bits of `linklayer`). */
export const TC_LINKLAYER = Object.freeze({
  UNAWARE: 0,
  ETHERNET: 1,
  ATM: 2,
  MASK: 0x0f,
} as const);

/** HTB attributes (TCA_HTB_*). */
export const TCA_HTB = Object.freeze({
  UNSPEC: 0,
  PARMS: 1,
  INIT: 2,
  CTAB: 3,
  RTAB: 4,
  DIRECT_QLEN: 5,
  RATE64: 6,
  CEIL64: 7,
  PAD: 8,
  OFFLOAD: 9,
} as const);

/** The HTB protocol version iproute2 and the kernel agree on (TC_HTB_PROTOVER). */
export const TC_HTB_PROTOVER = 3;

/** fq_codel attributes (TCA_FQ_CODEL_*). */
export const TCA_FQ_CODEL = Object.freeze({
  UNSPEC: 0,
  TARGET: 1,
  LIMIT: 2,
  INTERVAL: 3,
  ECN: 4,
  FLOWS: 5,
  QUANTUM: 6,
  CE_THRESHOLD: 7,
  DROP_BATCH_SIZE: 8,
  MEMORY_LIMIT: 9,
  CE_THRESHOLD_SELECTOR: 10,
  CE_THRESHOLD_MASK: 11,
} as const);

/** The `type` of struct tc_fq_codel_xstats. */
export const TCA_FQ_CODEL_XSTATS = Object.freeze({
  QDISC: 0,
  CLASS: 1,
} as const);

/** TBF attributes (TCA_TBF_*). */
export const TCA_TBF = Object.freeze({
  UNSPEC: 0,
  PARMS: 1,
  RTAB: 2,
  PTAB: 3,
  RATE64: 4,
  PRATE64: 5,
  BURST: 6,
  PBURST: 7,
  PAD: 8,
} as const);

/** u32 classifier attributes (TCA_U32_*). */
export const TCA_U32 = Object.freeze({
  UNSPEC: 0,
  CLASSID: 1,
  HASH: 2,
  LINK: 3,
  DIVISOR: 4,
  SEL: 5,
  POLICE: 6,
  ACT: 7,
  INDEV: 8,
  PCNT: 9,
  MARK: 10,
  FLAGS: 11,
  PAD: 12,
} as const);

/** tc_u32_sel.flags (TC_U32_*), and the handle limits. */
export const TC_U32 = Object.freeze({
  TERMINAL: 1,
  OFFSET: 2,
  VAROFFSET: 4,
  EAT: 8,
  MAXDEPTH: 8,
  /** The largest hash-table divisor. */
  MAX_DIVISOR: 0x100,
  /** Keys per selector (iproute2's and the kernel's limit). */
  MAX_KEYS: 128,
} as const);

/** Classifier flags in TCA_U32_FLAGS / TCA_*_FLAGS (TCA_CLS_FLAGS_*). */
export const TCA_CLS_FLAGS = Object.freeze({
  SKIP_HW: 1 << 0,
  SKIP_SW: 1 << 1,
  IN_HW: 1 << 2,
  NOT_IN_HW: 1 << 3,
  VERBOSE: 1 << 4,
} as const);

/** bpf classifier attributes (TCA_BPF_*). */
export const TCA_BPF = Object.freeze({
  UNSPEC: 0,
  ACT: 1,
  POLICE: 2,
  CLASSID: 3,
  OPS_LEN: 4,
  OPS: 5,
  FD: 6,
  NAME: 7,
  FLAGS: 8,
  FLAGS_GEN: 9,
  TAG: 10,
  ID: 11,
} as const);

/** TCA_BPF_FLAGS bits (TCA_BPF_FLAG_*). */
export const TCA_BPF_FLAG = Object.freeze({
  /** Direct action: the program's return value is the verdict (TC_ACT_*), not a class. */
  ACT_DIRECT: 1 << 0,
} as const);

/** basic classifier attributes (TCA_BASIC_*). */
export const TCA_BASIC = Object.freeze({
  UNSPEC: 0,
  CLASSID: 1,
  EMATCHES: 2,
  ACT: 3,
  POLICE: 4,
  PCNT: 5,
  PAD: 6,
} as const);

/** Action attributes (TCA_ACT_*). */
export const TCA_ACT = Object.freeze({
  UNSPEC: 0,
  KIND: 1,
  OPTIONS: 2,
  INDEX: 3,
  STATS: 4,
  PAD: 5,
  COOKIE: 6,
  FLAGS: 7,
  HW_STATS: 8,
  USED_HW_STATS: 9,
  IN_HW_COUNT: 10,
} as const);

/** Attributes of RTM_*ACTION messages (TCA_ROOT_*; TCA_ACT_TAB is TCA_ROOT_TAB). */
export const TCA_ROOT = Object.freeze({
  UNSPEC: 0,
  TAB: 1,
  FLAGS: 2,
  COUNT: 3,
  TIME_DELTA: 4,
  EXT_WARN_MSG: 5,
} as const);

/** Action verdicts (TC_ACT_*). */
export const TC_ACT = Object.freeze({
  UNSPEC: -1,
  OK: 0,
  RECLASSIFY: 1,
  SHOT: 2,
  PIPE: 3,
  STOLEN: 4,
  QUEUED: 5,
  REPEAT: 6,
  REDIRECT: 7,
  TRAP: 8,
} as const);

/** mirred attributes (TCA_MIRRED_*). */
export const TCA_MIRRED = Object.freeze({
  UNSPEC: 0,
  TM: 1,
  PARMS: 2,
  PAD: 3,
  BLOCKID: 4,
} as const);

/** tc_mirred.eaction values (TCA_EGRESS_REDIR, ...), under their kernel names. */
export const TCA_MIRRED_EACTION = Object.freeze({
  EGRESS_REDIR: 1,
  EGRESS_MIRROR: 2,
  INGRESS_REDIR: 3,
  INGRESS_MIRROR: 4,
} as const);

/** gact attributes (TCA_GACT_*). */
export const TCA_GACT = Object.freeze({
  UNSPEC: 0,
  TM: 1,
  PARMS: 2,
  PROB: 3,
  PAD: 4,
} as const);

/** Ethertypes used as filter protocols (if_ether.h ETH_P_*). */
export const ETH_P = Object.freeze({
  ALL: 0x0003,
  IP: 0x0800,
  ARP: 0x0806,
  IPV6: 0x86dd,
  '8021Q': 0x8100,
  '8021AD': 0x88a8,
} as const);

/** IP protocol numbers the u32 `ipProto` (tcp, udp, icmp) and `ip6NextHeader` (tcp, udp, icmpv6) matches accept by name. */
export const IPPROTO = Object.freeze({
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPV6: 58,
} as const);

/**
 * How many u32 priorities (root hash tables) one block can hold: the first gets 800:, the others
 * come from an IDR of 2046 ids (801:–ffe:), shared with hash tables created with explicit ids.
 */
export const U32_MAX_PRIORITIES = 2047;
/** Node ids per u32 bucket: 1..0xfff. */
export const U32_MAX_NODES_PER_BUCKET = 0xfff;
