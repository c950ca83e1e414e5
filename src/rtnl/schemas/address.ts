import { attrSet, field, ipAddr, messageSchema, string, struct, u32, u8 } from '../../netlink/index.js';
import type { MessageBody } from '../../netlink/index.js';

/** struct ifaddrmsg. */
export const ifaddrmsg = struct('ifaddrmsg', [
  ['family', field.u8],
  ['prefixlen', field.u8],
  ['flags', field.u8],
  ['scope', field.u8],
  ['index', field.u32],
] as const);
export type IfAddr = ReturnType<typeof ifaddrmsg.zero>;

/** struct ifa_cacheinfo. */
export const ifaCacheinfo = struct('ifa_cacheinfo', [
  ['prefered', field.u32],
  ['valid', field.u32],
  ['cstamp', field.u32],
  ['tstamp', field.u32],
] as const);

/** Address attributes (enum IFA_*). */
export const IFA = attrSet('IFA', {
  address: [1, ipAddr],
  local: [2, ipAddr],
  label: [3, string],
  broadcast: [4, ipAddr],
  anycast: [5, ipAddr],
  cacheinfo: [6, ifaCacheinfo],
  multicast: [7, ipAddr],
  flags: [8, u32],
  rtPriority: [9, u32],
  targetNetnsid: [10, u32],
  proto: [11, u8],
} as const);

/** RTM_NEWADDR/DELADDR/GETADDR body. */
export const addressMessage = messageSchema(ifaddrmsg, IFA);
export type AddressMessage = MessageBody<IfAddr, typeof IFA.defs>;
