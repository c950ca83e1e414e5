/**
 * A configuration error: bad flags, or flags that do not fit this host. The CLI prints the
 * message as one line and exits 2. `flag` names the offending flag (Mesos spelling).
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(`--${flag}: ${message}`);
  }
}

/** A runtime failure of an isolator operation (exit 1); nothing half-built is left behind. */
export class IsolatorError extends Error {
  override readonly name: string = 'IsolatorError';
  constructor(
    message: string,
    /** Underlying errors, e.g. every failure cleanup went past. */
    readonly causes: Error[] = [],
  ) {
    super(message);
  }
}

/** Asked about a container that does not exist (HTTP 404, CLI exit 1). */
export class UnknownContainerError extends IsolatorError {
  override readonly name = 'UnknownContainerError';
  constructor(readonly id: string) {
    super(`Unknown container ${id}`);
  }
}
