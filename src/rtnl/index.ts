/** rtnetlink: message schemas and constants (links, addresses, routes, neighbours). */
export * from './constants.js';
export * from './schemas/link.js';
export * from './schemas/address.js';
