import { attrSet, bytes, field, ipAddr, messageSchema, nestedBytes, s32, struct, u32, u8, u16 } from '../../netlink/index.js';
import type { MessageBody } from '../../netlink/index.js';

/** struct rtmsg. */
export const rtmsg = struct('rtmsg', [
  ['family', field.u8],
  ['dstLen', field.u8],
  ['srcLen', field.u8],
  ['tos', field.u8],
  ['table', field.u8],
  ['protocol', field.u8],
  ['scope', field.u8],
  ['type', field.u8],
  ['flags', field.u32],
] as const);
export type RtMsg = ReturnType<typeof rtmsg.zero>;

/** Route attributes (enum rtattr_type_t, RTA_*). */
export const RTA = attrSet('RTA', {
  dst: [1, ipAddr],
  src: [2, ipAddr],
  iif: [3, u32],
  oif: [4, u32],
  gateway: [5, ipAddr],
  priority: [6, u32],
  prefsrc: [7, ipAddr],
  metrics: [8, nestedBytes],
  multipath: [9, bytes],
  flow: [11, u32],
  cacheinfo: [12, bytes],
  table: [15, u32],
  mark: [16, u32],
  mfcStats: [17, bytes],
  via: [18, bytes],
  newdst: [19, bytes],
  pref: [20, u8],
  encapType: [21, u16],
  encap: [22, nestedBytes],
  expires: [23, u32],
  pad: [24, bytes],
  uid: [25, u32],
  ttlPropagate: [26, u8],
  ipProto: [27, u8],
  sport: [28, u16],
  dport: [29, u16],
  nhId: [30, u32],
  flowlabel: [31, s32],
} as const);

/** RTM_NEWROUTE/DELROUTE/GETROUTE body. */
export const routeMessage = messageSchema(rtmsg, RTA);
export type RouteMessage = MessageBody<RtMsg, typeof RTA.defs>;
