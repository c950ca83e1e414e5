/** portmap-isolator SDK: the netlink core, rtnetlink and tc. The isolator is the './isolator' entry. */
export * from './netlink/index.js';
export * from './rtnl/index.js';
export * from './tc/index.js';
