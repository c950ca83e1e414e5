/**
 * The lab (DESIGN.md §6) that the tests, the benchmarks and the demo run in: namespaces built with
 * the SDK, a lab set up for the isolator, and polling helpers. Not a published entry.
 */
export { GATEWAY, GATEWAY6, HOST_IP, HOST_IP6, LAB_PREFIX, Lab, sweepStaleLabs } from './lab.js';
export type { LabOptions } from './lab.js';
export { FIXTURE, IsolatorLab, LAB_HOST_LOCAL_PORTS, tmpfsDir } from './isolator-lab.js';
export { eventually, until } from './poll.js';
