/**
 * CNI error results (spec 1.0.0 §5 "Error"): `{cniVersion, code, msg, details}` on stdout and a
 * non-zero exit. Codes 1–11 are the spec's; 100+ are this plugin's own.
 */
import { ConfigError, IsolatorError } from '../isolator/errors.js';
import { UnknownContainerError } from '../isolator/engine.js';
import { LockTimeoutError } from '../isolator/state.js';
import { RefusedNamespaceError } from '../isolator/target-netns.js';

export const CNI_ERR = Object.freeze({
  /** Incompatible CNI version. */
  INCOMPATIBLE_VERSION: 1,
  /** Unsupported field in the network configuration (the message names key and value). */
  UNSUPPORTED_FIELD: 2,
  /** Container unknown or does not exist: the runtime need not clean up. */
  UNKNOWN_CONTAINER: 3,
  /** Invalid necessary environment variables (the message names them). */
  INVALID_ENVIRONMENT: 4,
  /** I/O failure, e.g. reading the configuration from stdin. */
  IO_FAILURE: 5,
  /** Failed to decode content (the configuration is not JSON). */
  DECODING_FAILURE: 6,
  /** Invalid network configuration (including flags that do not fit this host). */
  INVALID_NETWORK_CONFIG: 7,
  /** Try again later: the work_dir is locked by another portmap-isolator process. */
  TRY_AGAIN_LATER: 11,
  /** Plugin: the ports asked for are held by another container, or no ephemeral block is free. */
  PORTS_UNAVAILABLE: 100,
  /** Plugin: CHECK found the container's kernel objects missing or wrong. */
  CHECK_FAILED: 101,
  /** Plugin: ADD for a container id, or an interface in the sandbox, that already exists. */
  ALREADY_EXISTS: 102,
  /** Plugin: any other failure (netlink, kernel, state). */
  INTERNAL: 999,
});

export type CniErrorCode = (typeof CNI_ERR)[keyof typeof CNI_ERR];

export class CniError extends Error {
  override readonly name = 'CniError';
  constructor(
    readonly code: number,
    /** Short: what went wrong. */
    message: string,
    /** Longer: why, and what to do. */
    readonly details = '',
  ) {
    super(message);
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, '; ').trim();
}

/** Any failure as a CniError with the most specific code. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof RefusedNamespaceError) {
    return new CniError(CNI_ERR.INVALID_ENVIRONMENT, `CNI_NETNS: ${oneLine(e.message).replace(`--${e.flag}: `, '')}`, 'the runtime must give each container a network namespace of its own');
  }
  if (e instanceof ConfigError) {
    const text = oneLine(e.message).replace(`--${e.flag}: `, '');
    return new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, `invalid network configuration: "${e.flag}": ${text}`, `the "${e.flag}" field of the network configuration (the CLI's --${e.flag})`);
  }
  if (e instanceof LockTimeoutError) return new CniError(CNI_ERR.TRY_AGAIN_LATER, oneLine(e.message), 'another portmap-isolator process (CLI, agent or CNI plugin) holds the work_dir lock');
  if (e instanceof UnknownContainerError) return new CniError(CNI_ERR.UNKNOWN_CONTAINER, oneLine(e.message));
  if (e instanceof IsolatorError) {
    const msg = oneLine(e.message);
    const details = e.causes.map((c) => oneLine(c.message)).filter((c) => !msg.includes(c)).join('; ');
    if (/already held by another container|Failed to allocate ephemeral ports/.test(msg)) return new CniError(CNI_ERR.PORTS_UNAVAILABLE, msg, details);
    if (/not managed by the isolator/.test(msg)) return new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, msg, details);
    if (/already exists/.test(msg)) return new CniError(CNI_ERR.ALREADY_EXISTS, msg, details);
    return new CniError(CNI_ERR.INTERNAL, msg, details);
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return new CniError(CNI_ERR.INTERNAL, oneLine(err.message), err.name && err.name !== 'Error' ? err.name : '');
}
