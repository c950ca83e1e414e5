import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A readiness watcher on the event loop (uv_poll). */
export interface NativePoller {
  start(): void;
  stop(): void;
  close(): void;
  ref(): void;
  unref(): void;
}

/**
 * The native shim's interface: the system calls Node lacks. Everything above depends on this
 * interface only, so tests can swap in a scripted fake kernel.
 *
 * send/sendmmsg/recv return -errno on failure (hot path); the rest throw an Error with `errno`.
 */
export interface NativeShim {
  socket(protocol: number): number;
  /** Bind with the given multicast groups; returns the port id the kernel assigned. */
  bind(fd: number, groups: number): number;
  setsockopt(fd: number, level: number, name: number, value: number): void;
  getsockopt(fd: number, level: number, name: number): number;
  send(fd: number, buf: Buffer, length: number): number;
  sendmmsg(fd: number, bufs: Buffer[]): number;
  /** send() on a threadpool thread; the callback gets bytes sent or -errno. */
  sendInBackground(fd: number, buf: Buffer, length: number, done: (result: number) => void): void;
  /** Non-blocking receive of one datagram; meta ← [sender port id, msg_flags, groups]. */
  recv(fd: number, buf: Buffer, flags: number, meta: Int32Array): number;
  /** Block until readable or timeout: 1 readable, 0 timed out, -errno. */
  waitReadable(fd: number, timeoutMs: number): number;
  /** flock(2): 0 or -errno. */
  flock(fd: number, operation: number): number;
  /**
   * flock(2) blocking on a threadpool thread: resolves 0 or -errno, never rejects. A caller that
   * stops waiting calls flockCancel(cancel): a lock the worker gets afterwards is released at once
   * and the call resolves -ECANCELED. Each pending call occupies a threadpool thread: keep one per lock.
   */
  flockAsync(fd: number, operation: number, cancel?: Int32Array): Promise<number>;
  /** Give up the flockAsync wait given `cancel`: returns once its thread has left flock(2) (a signal interrupts it). */
  flockCancel(cancel: Int32Array): void;
  close(fd: number): void;
  setns(fd: number, nstype: number): void;
  unshare(flags: number): void;
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  umount2(target: string, flags: number): void;
  Poller: new (fd: number, onReadable: (errno: number) => void) => NativePoller;
}

let loaded: NativeShim | undefined;

/** The package root: two levels above this file in both src/netlink and dist/netlink. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Load the native shim (a prebuild for this platform, else the locally compiled build). */
export function nativeShim(): NativeShim {
  if (loaded) return loaded;
  if (process.platform !== 'linux') throw new Error(`portmap-isolator needs Linux (netlink); this is ${process.platform}`);
  if (endianness() !== 'LE') throw new Error('portmap-isolator supports little-endian hosts only');
  const require = createRequire(import.meta.url);
  const load = require('node-gyp-build') as (dir: string) => NativeShim;
  try {
    loaded = load(PACKAGE_ROOT);
  } catch (e) {
    throw new Error(
      `cannot load the native netlink shim (${(e as Error).message.split('\n')[0]}). ` +
        `Build it with 'npm run build:shim' (needs python3, make and g++), or install a package that ships a prebuild for ${process.platform}-${process.arch}.`,
    );
  }
  return loaded;
}
