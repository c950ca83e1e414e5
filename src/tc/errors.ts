import { EncodeError } from '../netlink/errors.js';

/**
 * A tc object description that cannot be sent: an impossible handle, a mask that is not a mask,
 * a port out of range, a zero rate. Raised while the request is built, before anything is sent;
 * it is an EncodeError, so batches refuse it the same way.
 */
export class TcInputError extends EncodeError {
  /** The message is `path › …: reason`. */
  constructor(reason: string, path: readonly string[] = []) {
    super(reason, path);
    Object.defineProperty(this, 'name', { value: 'TcInputError' });
  }
}

/** Throw a TcInputError unless `v` is an integer in min..max. */
export function checkInt(what: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const shown = typeof v === 'number' && Number.isInteger(v) && max > 0xff ? `${v} (0x${(v >>> 0).toString(16)})` : String(v);
    throw new TcInputError(`${what} must be an integer in ${min}..${max}, got ${shown}`);
  }
  return v;
}
