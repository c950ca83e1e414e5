import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import type { Netns } from '../netlink/index.js';
import { InvalidArgumentError } from './validate.js';

/**
 * Per-namespace sysctls under /proc/sys/net. /proc/sys/net shows the network namespace of the
 * thread that opens the file, so each access switches into the namespace for the open (and the
 * read or write), synchronously, and back (Netns.run).
 */

/** 'net.ipv4.ip_local_port_range' or ['net', 'ipv4', 'conf', 'eth0.5', 'rp_filter'] → the /proc path. */
export function sysctlPath(key: string | readonly string[]): string {
  const parts = typeof key === 'string' ? key.split('.') : [...key];
  if (parts[0] !== 'net' || parts.length < 2 || parts.some((p) => !p || p === '.' || p === '..' || /[/\0]/.test(p))) {
    throw new InvalidArgumentError(`sysctl ${JSON.stringify(key)} is not a net.* key (use an array for names containing dots)`);
  }
  return `/proc/sys/${parts.join('/')}`;
}

export function readSysctl(ns: Netns, key: string | readonly string[]): string {
  const path = sysctlPath(key);
  return ns.run(() => readFileSync(path, 'utf8')).trim();
}

export function writeSysctl(ns: Netns, key: string | readonly string[], value: string | number): void {
  const path = sysctlPath(key);
  ns.run(() => writeSysctlHere(path, value));
}

/**
 * Write a sysctl of the namespace the thread is in now: for several writes inside one
 * Netns.run (one switch instead of one per key).
 */
export function writeSysctlHere(key: string | readonly string[], value: string | number): void {
  const path = typeof key === 'string' && key.startsWith('/proc/sys/') ? key : sysctlPath(key);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, `${value}\n`);
  } finally {
    closeSync(fd);
  }
}
