/** The message schemas golden vectors name in their `schema` field. */
import type { MessageSchema } from '../../src/netlink/index.js';
import { addressMessage, linkMessage, neighMessage, routeMessage, ruleMessage } from '../../src/rtnl/index.js';

export const SCHEMAS: Readonly<Record<'link' | 'address' | 'route' | 'neigh' | 'rule', MessageSchema>> = {
  link: linkMessage,
  address: addressMessage,
  route: routeMessage,
  neigh: neighMessage,
  rule: ruleMessage,
};
