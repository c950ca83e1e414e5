/** The port-mapping isolator: engine, configuration, statistics and the HTTP agent. */
export * from './engine.js';
export * from './config.js';
export * from './errors.js';
export * from './port-set.js';
export * from './port-blocks.js';
export * from './allocator.js';
export * from './bytes.js';
export * from './rates.js';
export * from './state.js';
export * from './statistics.js';
export * from './agent.js';
export { loadCredentials } from './http-auth.js';
export type { HttpCredential } from './http-auth.js';
export * from './log.js';
export { parseResources } from './resources.js';
export { doctor } from './doctor.js';
export { RefusedNamespaceError } from './target-netns.js';
