import { createRequire } from 'node:module';
import { endianness } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A readiness watcher on the event loop (uv_poll). */
export interface NativePoller {
  /** Start watching: the callback runs on the event loop whenever the fd is readable. */
  start(): void;
  /** Stop watching (start() resumes). */
  stop(): void;
  /** Stop and release the watcher; it cannot be used again. */
  close(): void;
  /** Keep the process alive while watching (the default). */
  ref(): void;
  /** Let the process exit while watching. */
  unref(): void;
}

/**
 * The native shim's interface: the system calls Node lacks. Everything above depends on this
 * interface only, so tests can swap in a scripted fake kernel.
 *
 * send/sendmmsg/recv return -errno on failure (hot path); the rest throw an Error with `errno`.
 */
export interface NativeShim {
  /** socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol): the fd. */
  socket(protocol: number): number;
  /** Bind with the given multicast groups; returns the port id the kernel assigned. */
  bind(fd: number, groups: number): number;
  /** setsockopt(2) with an int value. */
  setsockopt(fd: number, level: number, name: number, value: number): void;
  /** getsockopt(2) of an int value. */
  getsockopt(fd: number, level: number, name: number): number;
  /** Send `length` bytes of `buf` to the kernel as one datagram: bytes sent, or -errno. */
  send(fd: number, buf: Buffer, length: number): number;
  /** Send each buffer as a datagram in one sendmmsg(2): datagrams sent, or -errno. */
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
  /** close(2). */
  close(fd: number): void;
  /** setns(2) of the calling thread (CLONE_NEWNET: its network namespace). */
  setns(fd: number, nstype: number): void;
  /** unshare(2) of the calling thread. */
  unshare(flags: number): void;
  /** mount(2); MS_* flags. */
  mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null): void;
  /** umount2(2); MNT_* flags. */
  umount2(target: string, flags: number): void;
  /** The readiness watcher's constructor. */
  Poller: {
    /** A readiness watcher on `fd` (uv_poll): `onReadable` gets 0, or an errno when polling failed. */
    new (fd: number, onReadable: (errno: number) => void): NativePoller;
  };
}

let loaded: NativeShim | undefined;

/** The package root (where prebuilds/ and build/ are): two levels above this file in both src/netlink and dist/netlink. */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Load the native shim once: the locally compiled build/ if present, else the prebuild for this
 * platform (prebuilds/linux-x64), through node-gyp-build. Throws Error on other platforms than
 * Linux, on big-endian hosts, and when neither loads (saying how to build it).
 */
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
