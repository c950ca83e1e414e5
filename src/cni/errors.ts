/**
 * CNI error results (spec 1.1.0 §5 "Error"): `{cniVersion, code, msg, details}` on stdout and a
 * non-zero exit. Codes 1–11 are the spec's; 100+ are this plugin's own.
 */
import type { ErrorKind } from '../isolator/errors.js';
import { ConfigError, IsolatorError, PortmapError, errorReport } from '../isolator/errors.js';

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
  /** STATUS (1.1.0): the plugin cannot service ADD (a kernel feature, the work_dir or the host is missing). */
  PLUGIN_NOT_AVAILABLE: 50,
  /** STATUS (1.1.0): not available, and existing containers may have limited connectivity (host objects missing). */
  PLUGIN_NOT_AVAILABLE_LIMITED: 51,
  /** Plugin: the ports asked for are held by another container, or no ephemeral block (or egress flow) is free. */
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

/**
 * The CNI code of each kind of isolator error (errors.ts): a Record, so that a new kind cannot
 * go without one.
 */
export const CNI_CODE_OF_KIND: Readonly<Record<ErrorKind, CniErrorCode>> = Object.freeze({
  config: CNI_ERR.INVALID_NETWORK_CONFIG,
  refused_namespace: CNI_ERR.INVALID_ENVIRONMENT,
  invalid_ports: CNI_ERR.INVALID_NETWORK_CONFIG,
  invalid_container_id: CNI_ERR.INVALID_ENVIRONMENT,
  ports_not_managed: CNI_ERR.INVALID_NETWORK_CONFIG,
  ports_held: CNI_ERR.PORTS_UNAVAILABLE,
  ephemeral_exhausted: CNI_ERR.PORTS_UNAVAILABLE,
  flows_exhausted: CNI_ERR.PORTS_UNAVAILABLE,
  container_exists: CNI_ERR.ALREADY_EXISTS,
  interface_exists: CNI_ERR.ALREADY_EXISTS,
  unknown_container: CNI_ERR.UNKNOWN_CONTAINER,
  lock_timeout: CNI_ERR.TRY_AGAIN_LATER,
  failed: CNI_ERR.INTERNAL,
});

/** Any failure as a CniError with the most specific code: by type (the error's kind), never by message. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (!(e instanceof PortmapError)) {
    const err = e instanceof Error ? e : new Error(String(e));
    return new CniError(CNI_ERR.INTERNAL, oneLine(err.message), err.name && err.name !== 'Error' ? err.name : '');
  }
  const { kind } = errorReport(e);
  const code = CNI_CODE_OF_KIND[kind];
  if (e instanceof ConfigError) {
    const text = oneLine(e.message).replace(`--${e.flag}: `, '');
    if (kind === 'refused_namespace') return new CniError(code, `CNI_NETNS: ${text}`, 'the runtime must give each container a network namespace of its own');
    return new CniError(
      code,
      `invalid network configuration: "${e.flag}": ${text}`,
      `the "${e.flag}" field of the network configuration (the CLI's --${e.flag})`,
    );
  }
  const msg = oneLine(e.message);
  if (kind === 'lock_timeout') return new CniError(code, msg, 'another portmap-isolator process (CLI, agent or CNI plugin) holds the work_dir lock');
  if (kind === 'unknown_container') return new CniError(code, msg);
  const causes = e instanceof IsolatorError ? e.causes : [];
  const details = causes
    .map((c) => oneLine(c.message))
    .filter((c) => !msg.includes(c))
    .join('; ');
  return new CniError(code, msg, details);
}
