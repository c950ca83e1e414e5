/** The message schemas golden vectors name in their `schema` field. */
import type { MessageSchema } from '../../src/netlink/index.js';
import { addressMessage, linkMessage, neighMessage, routeMessage } from '../../src/rtnl/index.js';

export const SCHEMAS: Readonly<Record<'link' | 'address' | 'route' | 'neigh', MessageSchema>> = {
  link: linkMessage,
  address: addressMessage,
  route: routeMessage,
  neigh: neighMessage,
};
