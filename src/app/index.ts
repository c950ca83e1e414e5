/**
 * The applications built on the isolator (the './app' entry): the HTTP agent, logging and doctor.
 * The executable is main.ts (the CLI, or the CNI plugin when CNI_COMMAND is set).
 */
export * from './agent.js';
export { loadCredentials } from './http-auth.js';
export type { HttpCredential } from './http-auth.js';
export * from './log.js';
export { doctor } from './doctor.js';
export type { Check as DoctorCheck } from './doctor.js';
