import { attrSet, bytes, field, ipAddr, messageSchema, string, struct, u32, u8 } from '../../netlink/index.js';
import type { MessageBody } from '../../netlink/index.js';

/** struct fib_rule_hdr (linux/fib_rules.h). */
export const fibRuleHdr = struct('fib_rule_hdr', [
  ['family', field.u8],
  ['dstLen', field.u8],
  ['srcLen', field.u8],
  ['tos', field.u8],
  ['table', field.u8],
  ['res1', field.u8],
  ['res2', field.u8],
  ['action', field.u8],
  ['flags', field.u32],
] as const);
export type FibRuleHdr = ReturnType<typeof fibRuleHdr.zero>;

/** struct fib_rule_port_range: inclusive, host byte order. */
export const fibRulePortRange = struct('fib_rule_port_range', [
  ['start', field.u16],
  ['end', field.u16],
] as const);

/** struct fib_rule_uid_range. */
export const fibRuleUidRange = struct('fib_rule_uid_range', [
  ['start', field.u32],
  ['end', field.u32],
] as const);

/** Rule attributes (enum FRA_*). */
export const FRA = attrSet('FRA', {
  dst: [1, ipAddr],
  src: [2, ipAddr],
  iifname: [3, string],
  goto: [4, u32],
  priority: [6, u32],
  fwmark: [10, u32],
  flow: [11, u32],
  tunId: [12, bytes], // big-endian 64 bits
  suppressIfgroup: [13, u32],
  suppressPrefixlen: [14, u32],
  table: [15, u32],
  fwmask: [16, u32],
  oifname: [17, string],
  pad: [18, bytes],
  l3mdev: [19, u8],
  uidRange: [20, fibRuleUidRange],
  protocol: [21, u8],
  ipProto: [22, u8],
  sportRange: [23, fibRulePortRange],
  dportRange: [24, fibRulePortRange],
} as const);

/** RTM_NEWRULE/DELRULE/GETRULE body. */
export const ruleMessage = messageSchema(fibRuleHdr, FRA);
export type RuleMessage = MessageBody<FibRuleHdr, typeof FRA.defs>;
