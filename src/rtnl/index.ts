/** rtnetlink: links, link statistics, addresses, routes, neighbours, rules, sysctls — schemas, request builders and verbs. */
export * from './constants.js';
export * from './validate.js';
export * from './schemas/link.js';
export * from './schemas/address.js';
export * from './schemas/route.js';
export * from './schemas/neigh.js';
export * from './schemas/rule.js';
export * from './schemas/stats.js';
export * from './link.js';
export * from './stats.js';
export * from './address.js';
export * from './route.js';
export * from './neighbour.js';
export * from './rule.js';
export * from './sysctl.js';
export * from './events.js';
export * from './rtnl.js';
