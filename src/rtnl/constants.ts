/** rtnetlink constants under their kernel names (include/uapi/linux/rtnetlink.h, if_link.h, if_addr.h). */

/** rtnetlink message types. */
export const RTM = Object.freeze({
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  SETLINK: 19,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWNEIGH: 28,
  DELNEIGH: 29,
  GETNEIGH: 30,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
  NEWQDISC: 36,
  DELQDISC: 37,
  GETQDISC: 38,
  NEWTCLASS: 40,
  DELTCLASS: 41,
  GETTCLASS: 42,
  NEWTFILTER: 44,
  DELTFILTER: 45,
  GETTFILTER: 46,
  NEWACTION: 48,
  DELACTION: 49,
  GETACTION: 50,
  NEWNSID: 88,
  DELNSID: 89,
  GETNSID: 90,
  NEWSTATS: 92,
  GETSTATS: 94,
  SETSTATS: 95,
  NEWCHAIN: 100,
  DELCHAIN: 101,
  GETCHAIN: 102,
} as const);

/** 'RTM_NEWLINK' etc. by number, for error messages. */
export const RTM_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(RTM).map(([k, v]) => [v, `RTM_${k}`]));

/** rtnetlink multicast groups (enum rtnetlink_groups). */
export const RTNLGRP = Object.freeze({
  LINK: 1,
  NOTIFY: 2,
  NEIGH: 3,
  TC: 4,
  IPV4_IFADDR: 5,
  IPV4_MROUTE: 6,
  IPV4_ROUTE: 7,
  IPV4_RULE: 8,
  IPV6_IFADDR: 9,
  IPV6_MROUTE: 10,
  IPV6_ROUTE: 11,
  NSID: 28,
} as const);

/** Address families. */
export const AF = Object.freeze({
  UNSPEC: 0,
  INET: 2,
  BRIDGE: 7,
  INET6: 10,
  PACKET: 17,
} as const);

/** Interface flags (net/if.h IFF_*). */
export const IFF = Object.freeze({
  UP: 0x1,
  BROADCAST: 0x2,
  DEBUG: 0x4,
  LOOPBACK: 0x8,
  POINTOPOINT: 0x10,
  NOTRAILERS: 0x20,
  RUNNING: 0x40,
  NOARP: 0x80,
  PROMISC: 0x100,
  ALLMULTI: 0x200,
  MASTER: 0x400,
  SLAVE: 0x800,
  MULTICAST: 0x1000,
  PORTSEL: 0x2000,
  AUTOMEDIA: 0x4000,
  DYNAMIC: 0x8000,
  LOWER_UP: 0x10000,
  DORMANT: 0x20000,
  ECHO: 0x40000,
} as const);

/** IFLA_EXT_MASK bits. */
export const RTEXT_FILTER = Object.freeze({
  VF: 1,
  BRVLAN: 2,
  BRVLAN_COMPRESSED: 4,
  SKIP_STATS: 8,
} as const);

/** RTM_GETSTATS attributes (enum IFLA_STATS_*, if_link.h); UNSPEC doubles as the 64-bit pad attribute. */
export const IFLA_STATS = Object.freeze({
  UNSPEC: 0,
  LINK_64: 1,
  LINK_XSTATS: 2,
  LINK_XSTATS_SLAVE: 3,
  LINK_OFFLOAD_XSTATS: 4,
  AF_SPEC: 5,
} as const);

/** The if_stats_msg.filter_mask bit that asks for one IFLA_STATS_* attribute (the kernel's macro). */
export const IFLA_STATS_FILTER_BIT = (attr: number): number => 1 << (attr - 1);

/** ARP hardware types (if_arp.h) seen on links. */
export const ARPHRD = Object.freeze({
  ETHER: 1,
  LOOPBACK: 772,
  NONE: 0xfffe,
} as const);

/** Routing tables (enum rt_class_t). */
export const RT_TABLE = Object.freeze({
  UNSPEC: 0,
  DEFAULT: 253,
  MAIN: 254,
  LOCAL: 255,
} as const);

/** What a routing rule does when it matches (FR_ACT_*, linux/fib_rules.h). */
export const FR_ACT = Object.freeze({
  UNSPEC: 0,
  TO_TBL: 1,
  GOTO: 2,
  NOP: 3,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
} as const);

/** Route origins (RTPROT_*). */
export const RTPROT = Object.freeze({
  UNSPEC: 0,
  REDIRECT: 1,
  KERNEL: 2,
  BOOT: 3,
  STATIC: 4,
} as const);

/** Route scopes (enum rt_scope_t). */
export const RT_SCOPE = Object.freeze({
  UNIVERSE: 0,
  SITE: 200,
  LINK: 253,
  HOST: 254,
  NOWHERE: 255,
} as const);

/** Route types (RTN_*). */
export const RTN = Object.freeze({
  UNSPEC: 0,
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  ANYCAST: 4,
  MULTICAST: 5,
  BLACKHOLE: 6,
  UNREACHABLE: 7,
  PROHIBIT: 8,
  THROW: 9,
  NAT: 10,
} as const);

/** rtm_flags (RTM_F_*). */
export const RTM_F = Object.freeze({
  NOTIFY: 0x100,
  CLONED: 0x200,
  EQUALIZE: 0x400,
  PREFIX: 0x800,
  LOOKUP_TABLE: 0x1000,
  FIB_MATCH: 0x2000,
} as const);

/** Neighbour states (NUD_*). */
export const NUD = Object.freeze({
  INCOMPLETE: 0x01,
  REACHABLE: 0x02,
  STALE: 0x04,
  DELAY: 0x08,
  PROBE: 0x10,
  FAILED: 0x20,
  NOARP: 0x40,
  PERMANENT: 0x80,
  NONE: 0x00,
} as const);

/** Address flags (IFA_F_*). */
export const IFA_F = Object.freeze({
  SECONDARY: 0x01,
  NODAD: 0x02,
  OPTIMISTIC: 0x04,
  DADFAILED: 0x08,
  HOMEADDRESS: 0x10,
  DEPRECATED: 0x20,
  TENTATIVE: 0x40,
  PERMANENT: 0x80,
  MANAGETEMPADDR: 0x100,
  NOPREFIXROUTE: 0x200,
  MCAUTOJOIN: 0x400,
  STABLE_PRIVACY: 0x800,
} as const);

/** Operational states (IF_OPER_*), as `ip` names them. */
export const IF_OPER = Object.freeze(['UNKNOWN', 'NOTPRESENT', 'DOWN', 'LOWERLAYERDOWN', 'TESTING', 'DORMANT', 'UP'] as const);

/** Per-device IPv4 settings (enum IPV4_DEVCONF_*), settable through IFLA_AF_SPEC › AF_INET › IFLA_INET_CONF. */
export const IPV4_DEVCONF = Object.freeze({
  FORWARDING: 1,
  RP_FILTER: 8,
  SEND_REDIRECTS: 6,
  ACCEPT_LOCAL: 23,
  ROUTE_LOCALNET: 26,
} as const);

/** IFLA_AF_SPEC › AF_INET attributes. */
export const IFLA_INET = Object.freeze({
  CONF: 1,
} as const);

/** The loopback device's interface index, the same in every network namespace (the kernel's LOOPBACK_IFINDEX). */
export const LOOPBACK_IFINDEX = 1;
