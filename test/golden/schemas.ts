/** The message schemas golden vectors name in their `schema` field. */
import type { MessageSchema } from '../../src/netlink/index.js';
import { addressMessage, linkMessage } from '../../src/rtnl/index.js';

export const SCHEMAS: Readonly<Record<'link' | 'address', MessageSchema>> = {
  link: linkMessage,
  address: addressMessage,
};
