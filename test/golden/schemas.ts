/** The message schemas golden vectors name in their `schema` field. */
import { addressMessage, linkMessage } from '../../src/rtnl/index.js';

export const SCHEMAS = {
  link: linkMessage,
  address: addressMessage,
} as const;
