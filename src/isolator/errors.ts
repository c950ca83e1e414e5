/**
 * The isolator's errors: one class for every failure a caller can meet, each carrying how the
 * applications report it — `httpStatus` (the agent, DESIGN.md §5), `exitCode` (the CLI, §4: 2 for
 * configuration errors and malformed arguments, 1 for runtime failures) and `kind`, a stable name
 * the CNI plugin maps to its error code. Callers map by type (`errorReport`), never by message.
 * Messages are Mesos' and the tests' contract: they are kept word for word.
 *
 * | class                        | kind                 | HTTP | exit |
 * |------------------------------|----------------------|------|------|
 * | ConfigError                  | config               | 400  | 2    |
 * | RefusedNamespaceError        | refused_namespace    | 400  | 2    |
 * | InvalidPortsError            | invalid_ports        | 400  | 2    |
 * | InvalidContainerIdError      | invalid_container_id | 400  | 2    |
 * | PortsNotManagedError         | ports_not_managed    | 400  | 1    |
 * | PortsHeldError               | ports_held           | 409  | 1    |
 * | EphemeralPortsExhaustedError | ephemeral_exhausted  | 409  | 1    |
 * | NoFreeFlowError              | flows_exhausted      | 409  | 1    |
 * | ContainerExistsError         | container_exists     | 409  | 1    |
 * | InterfaceExistsError         | interface_exists     | 409  | 1    |
 * | UnknownContainerError        | unknown_container    | 404  | 1    |
 * | LockTimeoutError             | lock_timeout         | 503  | 1    |
 * | IsolatorError (the rest)     | failed               | 500  | 1    |
 * | any other error (netlink, kernel, I/O) | failed     | 500  | 1    |
 *
 * A 400 that names a `field` is exactly an exit-2 error: the CLI, reading an agent's answer,
 * relies on that.
 */

/** What went wrong, as a stable name (the CNI plugin keys its codes on it). */
export type ErrorKind =
  | 'config'
  | 'refused_namespace'
  | 'invalid_ports'
  | 'invalid_container_id'
  | 'ports_not_managed'
  | 'ports_held'
  | 'ephemeral_exhausted'
  | 'flows_exhausted'
  | 'container_exists'
  | 'interface_exists'
  | 'unknown_container'
  | 'lock_timeout'
  | 'failed';

/** How a failure is reported: its kind, HTTP status, CLI exit status and the field or flag at fault. */
export interface ErrorReport {
  kind: ErrorKind;
  httpStatus: number;
  exitCode: number;
  field?: string;
}

/** The base of every isolator error: a failure that knows how it is reported. */
export abstract class PortmapError extends Error {
  abstract readonly kind: ErrorKind;
  abstract readonly httpStatus: number;
  abstract readonly exitCode: number;
  /** The flag or request field at fault (400s that are exit 2); undefined otherwise. */
  get field(): string | undefined {
    return undefined;
  }
}

/**
 * A configuration error: bad flags, or flags that do not fit this host. The CLI prints the
 * message as one line and exits 2. `flag` names the offending flag (Mesos spelling).
 */
export class ConfigError extends PortmapError {
  override readonly name: string = 'ConfigError';
  readonly kind: ErrorKind = 'config';
  readonly httpStatus: number = 400;
  readonly exitCode: number = 2;
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`--${flag}: ${message}`);
  }
  override get field(): string {
    return this.flag;
  }
}

/** A namespace given to `create` that the isolator must not use as a container's (exit 2, HTTP 400). */
export class RefusedNamespaceError extends ConfigError {
  override readonly name: string = 'RefusedNamespaceError';
  override readonly kind: ErrorKind = 'refused_namespace';
}

/** A runtime failure of an isolator operation (exit 1, HTTP 500); nothing half-built is left behind. */
export class IsolatorError extends PortmapError {
  override readonly name: string = 'IsolatorError';
  readonly kind: ErrorKind = 'failed';
  readonly httpStatus: number = 500;
  readonly exitCode: number = 1;
  constructor(
    message: string,
    /** Underlying errors, e.g. every failure cleanup went past. */
    readonly causes: Error[] = [],
  ) {
    super(message);
  }
}

/** Ports that are not Mesos' range syntax (HTTP 400, exit 2). */
export class InvalidPortsError extends IsolatorError {
  override readonly name: string = 'InvalidPortsError';
  override readonly kind: ErrorKind = 'invalid_ports';
  override readonly httpStatus: number = 400;
  override readonly exitCode: number = 2;
  constructor(
    readonly id: string,
    /** Why the ports do not parse. */
    detail: string,
  ) {
    super(`invalid ports for container ${id}: ${detail}`);
  }
  override get field(): string {
    return 'ports';
  }
}

/** A container id outside 1–128 of [A-Za-z0-9_.-], alphanumeric first (HTTP 400, exit 2). */
export class InvalidContainerIdError extends IsolatorError {
  override readonly name: string = 'InvalidContainerIdError';
  override readonly kind: ErrorKind = 'invalid_container_id';
  override readonly httpStatus: number = 400;
  override readonly exitCode: number = 2;
  constructor(readonly id: unknown) {
    super(`invalid container id ${JSON.stringify(id)}: use 1–128 letters, digits, '_', '.', '-' (not starting with a symbol)`);
  }
  override get field(): string {
    return 'id';
  }
}

/** Ports outside the `ports` of --resources (HTTP 400, but exit 1 as in Mesos: a refusal, not a malformed flag). */
export class PortsNotManagedError extends IsolatorError {
  override readonly name: string = 'PortsNotManagedError';
  override readonly kind: ErrorKind = 'ports_not_managed';
  override readonly httpStatus: number = 400;
  constructor(
    /** The ports asked for. */
    readonly ports: string,
    /** The ports the isolator manages. */
    readonly managed: string,
  ) {
    super(`Some non-ephemeral ports specified in ${ports} are not managed by the isolator (managed: ${managed})`);
  }
}

/** Ports another container holds (HTTP 409, exit 1). */
export class PortsHeldError extends IsolatorError {
  override readonly name: string = 'PortsHeldError';
  override readonly kind: ErrorKind = 'ports_held';
  override readonly httpStatus: number = 409;
  /** The ports asked for that another container holds. */
  constructor(readonly clash: string) {
    super(`ports ${clash} are already held by another container`);
  }
}

/** No block of ephemeral ports is free (HTTP 409, exit 1). */
export class EphemeralPortsExhaustedError extends IsolatorError {
  override readonly name: string = 'EphemeralPortsExhaustedError';
  override readonly kind: ErrorKind = 'ephemeral_exhausted';
  override readonly httpStatus: number = 409;
  constructor(
    readonly perContainer: number,
    /** The ephemeral range of --resources. */
    readonly range: string,
    readonly containers: number,
  ) {
    super(`Failed to allocate ephemeral ports: no free block of ${perContainer} ports is left in ${range} (${containers} containers)`);
  }
}

/** No fq_codel flow is free for a new container's egress (HTTP 409, exit 1). */
export class NoFreeFlowError extends IsolatorError {
  override readonly name: string = 'NoFreeFlowError';
  override readonly kind: ErrorKind = 'flows_exhausted';
  override readonly httpStatus: number = 409;
  constructor(
    readonly min: number,
    readonly max: number,
  ) {
    super(`no free egress flow is left (flows ${min}..${max} are taken)`);
  }
}

/** A create for an id that exists (HTTP 409, exit 1). */
export class ContainerExistsError extends IsolatorError {
  override readonly name: string = 'ContainerExistsError';
  override readonly kind: ErrorKind = 'container_exists';
  override readonly httpStatus: number = 409;
  constructor(readonly id: string) {
    super(`container ${id} already exists`);
  }
}

/** A container's interface name taken in the namespace it was given (HTTP 409, exit 1). */
export class InterfaceExistsError extends IsolatorError {
  override readonly name: string = 'InterfaceExistsError';
  override readonly kind: ErrorKind = 'interface_exists';
  override readonly httpStatus: number = 409;
  constructor(
    readonly ifname: string,
    /** The namespace, as shown. */
    readonly netns: string,
  ) {
    super(`interface ${ifname} already exists in ${netns}: a container's interface must be new`);
  }
}

/** Asked about a container that does not exist (HTTP 404, CLI exit 1). */
export class UnknownContainerError extends IsolatorError {
  override readonly name: string = 'UnknownContainerError';
  override readonly kind: ErrorKind = 'unknown_container';
  override readonly httpStatus: number = 404;
  constructor(readonly id: string) {
    super(`Unknown container ${id}`);
  }
}

/** The work_dir lock was not had in time: another process holds it (HTTP 503, exit 1). */
export class LockTimeoutError extends IsolatorError {
  override readonly name: string = 'LockTimeoutError';
  override readonly kind: ErrorKind = 'lock_timeout';
  override readonly httpStatus: number = 503;
  readonly code = 'EAGAIN';
}

/** How any failure is reported: a PortmapError as it says, anything else (netlink, kernel, I/O) as a runtime failure. */
export function errorReport(e: unknown): ErrorReport {
  if (e instanceof PortmapError) {
    const field = e.field;
    return { kind: e.kind, httpStatus: e.httpStatus, exitCode: e.exitCode, ...(field !== undefined ? { field } : {}) };
  }
  return { kind: 'failed', httpStatus: 500, exitCode: 1 };
}
