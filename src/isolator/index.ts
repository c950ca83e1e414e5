/** The port-mapping isolator: engine, configuration, port sets, rates, state and statistics. The CLI, agent and doctor are the './app' entry. */
export * from './engine.js';
export * from './config.js';
export * from './errors.js';
export * from './port-set.js';
// (The PortBlock type itself is the SDK's, from the main entry.)
export { blockFromBeginEnd, blockFromBeginMask, formatBlock, portSetBlocks } from './port-blocks.js';
export * from './allocator.js';
export * from './bytes.js';
export * from './rates.js';
export * from './state.js';
export * from './statistics.js';
export { parseResources } from './resources.js';
