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

/** ARP hardware types (if_arp.h) seen on links. */
export const ARPHRD = Object.freeze({
  ETHER: 1,
  LOOPBACK: 772,
  NONE: 0xfffe,
} as const);
