/** The netlink core: sockets, framing, attributes and structs, the request engine, errors, netns. */
export * from './constants.js';
export * from './errno.js';
export * from './errors.js';
export * from './writer.js';
export * from './codec.js';
export * from './struct.js';
export * from './attributes.js';
export { withInterpretedDecoders } from './attr-compile.js';
export * from './message.js';
export * from './framing.js';
export * from './shim.js';
export * from './socket.js';
export * from './session.js';
export * from './events.js';
export * from './netns.js';
