import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, fstatSync, mkdirSync, openSync, statSync, unlinkSync, writeSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { CLONE, MNT, MS } from './constants.js';
import { NetnsError, SocketError } from './errors.js';
import type { NativeShim } from './shim.js';
import { nativeShim } from './shim.js';

/**
 * Network namespace handles and the one place where the thread's namespace is switched.
 *
 * setns(2) changes the calling thread only, and in Node that is the JS main thread, which runs
 * everything else too. So a switch is always: open the current namespace, setns into the target,
 * run a *synchronous* function (open a socket, a /proc/sys file), setns back in `finally`, and
 * verify by inode that we are home. An `await` can never happen while switched.
 */

/** Where `ip netns` (and createNetns with a name) pins named namespaces. */
export const NETNS_RUN_DIR = '/run/netns';
const THREAD_NETNS = '/proc/thread-self/ns/net';

/** Check an `ip netns` name: no slashes or NUL, not '.' or '..', not empty, at most 255 bytes. Throws TypeError. */
export function checkNetnsName(name: string): void {
  if (typeof name !== 'string' || name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0') || name.length > 255) {
    throw new TypeError(`invalid network namespace name ${JSON.stringify(name)}`);
  }
}

/**
 * A network namespace, by path (a pinned file or /proc/PID/ns/net) or by an open fd. Making a
 * handle opens nothing; the first use does, and a namespace that does not exist is then a
 * NetnsError naming the path (`/run/netns/foo: no such network namespace (ENOENT)`). Close it
 * when done (an fd handle made by fromFd is left open).
 */
export class Netns {
  private fdValue: number | undefined;
  private readonly ownsFd: boolean;

  private constructor(
    /** Where the namespace is pinned, if known. */
    readonly path: string | undefined,
    fd: number | undefined,
    private readonly shim: NativeShim | undefined,
  ) {
    this.fdValue = fd;
    this.ownsFd = fd === undefined;
  }

  /** The namespace `ip netns` calls NAME: /run/netns/NAME. Throws TypeError for an invalid name. */
  static fromName(name: string, shim?: NativeShim): Netns {
    checkNetnsName(name);
    return new Netns(join(NETNS_RUN_DIR, name), undefined, shim);
  }
  /** A pinned namespace file or any nsfs path. Throws TypeError unless absolute. */
  static fromPath(path: string, shim?: NativeShim): Netns {
    if (!isAbsolute(path)) throw new TypeError(`network namespace path must be absolute: ${JSON.stringify(path)}`);
    return new Netns(path, undefined, shim);
  }
  /** The namespace of a process: /proc/PID/ns/net. Throws TypeError unless PID is a positive integer. */
  static fromPid(pid: number, shim?: NativeShim): Netns {
    if (!Number.isInteger(pid) || pid <= 0) throw new TypeError(`invalid pid ${String(pid)}`);
    return new Netns(`/proc/${pid}/ns/net`, undefined, shim);
  }
  /** An already open namespace fd (not closed by this handle). */
  static fromFd(fd: number, shim?: NativeShim): Netns {
    return new Netns(undefined, fd, shim);
  }
  /** `NAME` → /run/netns/NAME, an absolute path as is: the CLI's --netns spelling. */
  static parse(spec: string, shim?: NativeShim): Netns {
    return spec.startsWith('/') ? Netns.fromPath(spec, shim) : Netns.fromName(spec, shim);
  }
  /** The calling thread's current namespace. */
  static current(shim?: NativeShim): Netns {
    return new Netns(THREAD_NETNS, undefined, shim);
  }

  /** An fd on the namespace, opened on first use. Throws NetnsError when the path cannot be opened. */
  get fd(): number {
    if (this.fdValue === undefined) {
      try {
        this.fdValue = openSync(this.path!, fsConstants.O_RDONLY);
      } catch (e) {
        throw new NetnsError(this.path!, 'open', (e as NodeJS.ErrnoException).errno ?? 2);
      }
    }
    return this.fdValue;
  }

  /** The namespace's inode number: equal inodes mean the same namespace. Opens nothing for a path; throws NetnsError when it does not exist. */
  get inode(): number {
    if (this.fdValue === undefined && this.path !== undefined) {
      try {
        return statSync(this.path).ino;
      } catch (e) {
        throw new NetnsError(this.path, 'stat', (e as NodeJS.ErrnoException).errno ?? 2);
      }
    }
    return fstatSync(this.fd).ino;
  }

  /** A short description for messages. */
  toString(): string {
    return this.path ?? `netns fd ${this.fdValue}`;
  }

  /**
   * Run `fn` with the calling thread inside this namespace and return its result. `fn` must be
   * synchronous: a returned Promise is rejected (TypeError), because the thread would switch back
   * before it ran. Throws NetnsError when the namespace cannot be opened or entered.
   */
  run<T>(fn: () => T): T {
    return runInNetns(this, fn, this.shim);
  }

  /**
   * Start a process inside this namespace: the fork happens while the calling thread is switched
   * in, so the child is born there (with every socket it opens), and the thread switches back.
   */
  spawn(command: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildProcess {
    return this.run(() => spawn(command, args, options));
  }

  /** Close the fd this handle opened, if any. Idempotent; the handle can be used again (it reopens). */
  close(): void {
    if (this.ownsFd && this.fdValue !== undefined) {
      closeSync(this.fdValue);
      this.fdValue = undefined;
    }
  }
}

function threadNetnsInode(): number {
  return statSync(THREAD_NETNS).ino;
}

/** Run synchronous `fn` inside `ns` and switch back: see Netns.run. Throws NetnsError, TypeError. */
export function runInNetns<T>(ns: Netns, fn: () => T, shim: NativeShim = nativeShim()): T {
  const targetIno = ns.inode;
  if (threadNetnsInode() === targetIno) return checkSync(fn());
  const home = openSync(THREAD_NETNS, fsConstants.O_RDONLY);
  try {
    const homeIno = fstatSync(home).ino;
    enter(shim, ns.fd, ns.toString());
    try {
      if (threadNetnsInode() !== targetIno) throw new Error(`setns into ${ns} did not take effect`);
      return checkSync(fn());
    } finally {
      returnHome(shim, home, homeIno, ns.toString());
    }
  } finally {
    closeSync(home);
  }
}

/** Switch back to the thread's home namespace; never continue anywhere else (abort instead). */
function returnHome(shim: NativeShim, home: number, homeIno: number, from: string): void {
  let ok = false;
  try {
    shim.setns(home, CLONE.NEWNET);
    ok = threadNetnsInode() === homeIno;
  } catch {
    ok = false;
  }
  if (!ok) {
    // Everything after would act on the wrong host.
    process.emitWarning(`portmap-isolator: could not return from network namespace ${from}; aborting`);
    process.abort();
  }
}

function enter(shim: NativeShim, fd: number, what: string): void {
  try {
    shim.setns(fd, CLONE.NEWNET);
  } catch (e) {
    throw new NetnsError(what, 'setns', (e as { errno: number }).errno ?? 22);
  }
}

function checkSync<T>(value: T): T {
  if (value && typeof (value as { then?: unknown }).then === 'function') {
    throw new TypeError('Netns.run needs a synchronous function: work done after an await would run in the wrong namespace');
  }
  return value;
}

function isMountPoint(path: string): boolean {
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.some((l) => l.split(' ')[4] === path);
}

/** Make the pin directory a shared mount, as `ip netns add` does, so pins propagate to other mount namespaces. */
function prepareRunDir(shim: NativeShim, dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (dir !== NETNS_RUN_DIR) return;
  try {
    if (!isMountPoint(dir)) shim.mount(dir, dir, 'none', MS.BIND | MS.REC, null);
    shim.mount('none', dir, null, MS.SHARED | MS.REC, null);
  } catch {
    // Not fatal: pins still work within this mount namespace.
  }
}

/** Options of createNetns, pinNetns, removeNetns and the procfs helpers. */
export interface CreateNetnsOptions {
  /** An alternative shim (a fake kernel in tests). */
  shim?: NativeShim;
}

/**
 * Create a new network namespace pinned at `NAME` (under /run/netns, visible to `ip netns`) or at
 * an absolute path, and return a handle to it (close it when done; removeNetns removes the
 * namespace). Needs CAP_SYS_ADMIN. Throws SocketError: EEXIST when the pin exists, EPERM
 * without privilege; TypeError for an invalid name.
 */
export function createNetns(nameOrPath: string, opts: CreateNetnsOptions = {}): Netns {
  const shim = opts.shim ?? nativeShim();
  const path = nameOrPath.startsWith('/') ? nameOrPath : (checkNetnsName(nameOrPath), join(NETNS_RUN_DIR, nameOrPath));
  prepareRunDir(shim, dirname(path));
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o444);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SocketError('open', err.errno ?? 17, `creating network namespace pin ${path}`);
  }
  closeSync(fd);
  const home = openSync(THREAD_NETNS, fsConstants.O_RDONLY);
  try {
    const homeIno = fstatSync(home).ino;
    try {
      shim.unshare(CLONE.NEWNET);
    } catch (e) {
      unlinkSync(path);
      throw new SocketError('unshare', (e as { errno: number }).errno ?? 1, `creating network namespace ${path}`);
    }
    try {
      shim.mount(THREAD_NETNS, path, 'none', MS.BIND, null);
    } catch (e) {
      unlinkQuiet(path);
      throw new SocketError('mount', (e as { errno: number }).errno ?? 1, `pinning network namespace at ${path}`);
    } finally {
      returnHome(shim, home, homeIno, path);
    }
  } finally {
    closeSync(home);
  }
  return Netns.fromPath(path, opts.shim);
}

/**
 * Pin an existing namespace (e.g. /proc/PID/ns/net) at `path` by a bind mount, so that it can be
 * reached by path even after the process is gone or its pid reused. Returns a handle to the pin.
 * Throws SocketError (EEXIST when `path` exists, EPERM without privilege).
 */
export function pinNetns(source: string, path: string, opts: CreateNetnsOptions = {}): Netns {
  const shim = opts.shim ?? nativeShim();
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  try {
    closeSync(openSync(path, fsConstants.O_RDONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o444));
  } catch (e) {
    throw new SocketError('open', (e as NodeJS.ErrnoException).errno ?? 17, `creating network namespace pin ${path}`);
  }
  try {
    shim.mount(source, path, 'none', MS.BIND, null);
  } catch (e) {
    unlinkQuiet(path);
    throw new SocketError('mount', (e as { errno: number }).errno ?? 1, `pinning ${source} at ${path}`);
  }
  return Netns.fromPath(path, opts.shim);
}

/**
 * Unpin and remove a namespace created by createNetns (or `ip netns add`), by name or absolute
 * path. The namespace itself goes away when nothing else (a process, an open fd, a socket) holds
 * it. Missing pins are not an error; returns whether a pin was removed. Throws SocketError when
 * the unmount fails otherwise, TypeError for an invalid name.
 */
export function removeNetns(nameOrPath: string, opts: CreateNetnsOptions = {}): boolean {
  const shim = opts.shim ?? nativeShim();
  const path = nameOrPath.startsWith('/') ? nameOrPath : (checkNetnsName(nameOrPath), join(NETNS_RUN_DIR, nameOrPath));
  let existed = true;
  try {
    shim.umount2(path, MNT.DETACH);
  } catch (e) {
    const errno = (e as { errno: number }).errno;
    if (errno === 2 /* ENOENT */) existed = false;
    else if (errno !== 22 /* EINVAL: not a mount point */) throw new SocketError('umount2', errno, `unpinning ${path}`);
  }
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    existed = false;
  }
  return existed;
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** Read a file (as UTF-8) from inside a namespace, e.g. /proc/sys/net/…; throws NetnsError or the fs error. */
export function readFileInNetns(ns: Netns, path: string, shim?: NativeShim): string {
  return runInNetns(ns, () => readFileSync(path, 'utf8'), shim);
}
/** Write a file from inside a namespace, e.g. /proc/sys/net/…; throws NetnsError or the fs error. */
export function writeFileInNetns(ns: Netns, path: string, data: string, shim?: NativeShim): void {
  runInNetns(
    ns,
    () => {
      const fd = openSync(path, 'w');
      try {
        writeSync(fd, data);
      } finally {
        closeSync(fd);
      }
    },
    shim,
  );
}

/**
 * Mount a procfs instance of its own at `dir` (made if missing), replacing one mounted there
 * before. Its dentries are its own: /proc/sys lookups through it do not walk the dentries every
 * other namespace left in the machine's /proc (see SysctlDir), and unmounting it drops them.
 */
export function mountProcfs(dir: string, opts: CreateNetnsOptions = {}): void {
  const shim = opts.shim ?? nativeShim();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  unmountProcfs(dir, opts);
  try {
    shim.mount('proc', dir, 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC, null);
  } catch (e) {
    throw new SocketError('mount', (e as { errno: number }).errno ?? 1, `mounting a procfs at ${dir}`);
  }
}

/** Unmount what mountProcfs mounted at `dir`, if anything (lazily: open files keep it alive). */
export function unmountProcfs(dir: string, opts: CreateNetnsOptions = {}): void {
  const shim = opts.shim ?? nativeShim();
  try {
    shim.umount2(dir, MNT.DETACH);
  } catch (e) {
    const errno = (e as { errno: number }).errno;
    // Nothing mounted there: not a mount point, no such path, or a path through a file.
    if (errno !== 22 /* EINVAL */ && errno !== 2 /* ENOENT */ && errno !== 20 /* ENOTDIR */) throw new SocketError('umount2', errno, `unmounting ${dir}`);
  }
}
