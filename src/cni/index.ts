/** The CNI plugin mode (issue #9): run one invocation in-process, or be the executable. */
export { cniMain, runCni } from './plugin.js';
export type { CniInvocation, CniOutcome } from './plugin.js';
export { CNI_ERR, CniError, toCniError } from './errors.js';
export { SUPPORTED_VERSIONS, mergeResult, convertResult } from './result.js';
export type { CniResult, CniInterface, CniIp, CniRoute, CniDns, CniVersion } from './result.js';
export { parseNetConf, parseCniArgs, parseEnv, parsePortMappings } from './netconf.js';
export type { NetConf, CniEnv, PortMapping } from './netconf.js';
