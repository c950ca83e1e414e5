import { constants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/** errno number → symbolic code ('EEXIST'), preferring the names the kernel's headers use. */
const CODE_BY_ERRNO = new Map<number, string>();
const PREFERRED = new Set(['EAGAIN', 'EOPNOTSUPP', 'EDEADLK']);
for (const [name, num] of Object.entries(constants.errno)) {
  if (!CODE_BY_ERRNO.has(num) || PREFERRED.has(name)) CODE_BY_ERRNO.set(num, name);
}
const SYSTEM_ERRORS = getSystemErrorMap();

/** Symbolic name of an errno (sign ignored): 17 → 'EEXIST'. */
export function errnoCode(errno: number): string {
  return CODE_BY_ERRNO.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/** Human text of an errno (sign ignored): 17 → 'file already exists'. */
export function errnoMessage(errno: number): string {
  return SYSTEM_ERRORS.get(-Math.abs(errno))?.[1] ?? `error ${Math.abs(errno)}`;
}

/** errno numbers by name, as Node knows them. */
export const ERRNO: Readonly<Record<string, number>> = constants.errno;
