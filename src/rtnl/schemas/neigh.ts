import { attrSet, bytes, field, ipAddr, lladdr, messageSchema, pad, struct, u16, u32, u8 } from '../../netlink/index.js';
import type { MessageBody } from '../../netlink/index.js';

/** struct ndmsg. */
export const ndmsg = struct('ndmsg', [
  ['family', field.u8],
  pad(3),
  ['ifindex', field.s32],
  ['state', field.u16],
  ['flags', field.u8],
  ['type', field.u8],
] as const);
export type NdMsg = ReturnType<typeof ndmsg.zero>;

/** Neighbour attributes (enum NDA_*). */
export const NDA = attrSet('NDA', {
  dst: [1, ipAddr],
  lladdr: [2, lladdr],
  cacheinfo: [3, bytes],
  probes: [4, u32],
  vlan: [5, u16],
  port: [6, bytes],
  vni: [7, u32],
  ifindex: [8, u32],
  master: [9, u32],
  linkNetnsid: [10, u32],
  srcVni: [11, u32],
  protocol: [12, u8],
  nhId: [13, u32],
  fdbExtAttrs: [14, bytes],
  flagsExt: [15, u32],
} as const);

/** RTM_NEWNEIGH/DELNEIGH/GETNEIGH body. */
export const neighMessage = messageSchema(ndmsg, NDA);
export type NeighMessage = MessageBody<NdMsg, typeof NDA.defs>;
