/** portmap-isolator SDK: netlink core, rtnetlink and tc. */
export * from './netlink/index.js';
export * from './rtnl/index.js';
