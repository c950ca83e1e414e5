/**
 * The work_dir lock between processes: waiters queue in the kernel (a blocking flock off the main
 * thread) instead of polling. No network and no namespaces: plain processes on a temporary
 * work_dir. Outcomes only, never timings.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LOCK } from '../../src/netlink/constants.js';
import { nativeShim } from '../../src/netlink/shim.js';
import { LockTimeoutError, StateStore } from '../../src/isolator/state.js';
import type { FlockCalls } from '../../src/isolator/work-dir-lock.js';

const REPO = join(import.meta.dirname, '..', '..');
const EWOULDBLOCK = 11;
let bundleDir: string;
let childScript: string;
let dir: string;
const children = new Set<ChildProcess>();

// lock-child.ts bundled into one file: node starts it far faster than tsx loads the sources. The
// native shim is found from its source location (import.meta.url pinned to src/netlink/shim.ts).
beforeAll(() => {
  bundleDir = mkdtempSync(join(tmpdir(), 'pmi-lock-child-'));
  childScript = join(bundleDir, 'lock-child.mjs');
  buildSync({
    entryPoints: [join(import.meta.dirname, 'lock-child.ts')],
    outfile: childScript,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(REPO, 'src', 'netlink', 'shim.ts')).href) },
    logLevel: 'error',
  });
});
afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pmi-lock-'));
});
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
  rmSync(dir, { recursive: true, force: true });
});

interface Child {
  proc: ChildProcess;
  /** Resolves when the child prints this line. */
  said(line: 'waiting' | 'locked'): Promise<void>;
  /** Exit code (or signal name). */
  exit: Promise<number | string>;
  stderr(): string;
}

function child(hold: number | 'stdin', timeoutMs: number): Child {
  const proc = spawn(process.execPath, [childScript, dir, String(hold), String(timeoutMs)], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(proc);
  let out = '';
  let err = '';
  const listeners: Array<() => void> = [];
  proc.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  });
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const said = (line: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (out.split('\n').includes(line)) resolve();
      };
      listeners.push(check);
      check();
      void exit.then((code) => reject(new Error(`lock-child exited (${code}) before '${line}': ${err}`)));
    });
  return { proc, said, exit, stderr: () => err };
}

/** The native calls, counting blocking waits and announcing each one. */
function countingShim(): FlockCalls & { waits: number; waiting: Promise<void> } {
  const shim = nativeShim();
  let announce!: () => void;
  const calls = {
    waits: 0,
    waiting: new Promise<void>((r) => (announce = r)),
    flock: (fd: number, op: number) => shim.flock(fd, op),
    flockCancel: (cancel: Int32Array) => shim.flockCancel(cancel),
    flockAsync: (fd: number, op: number, cancel?: Int32Array) => {
      calls.waits++;
      announce();
      return shim.flockAsync(fd, op, cancel);
    },
  };
  return calls;
}

/** Whether another open file could take the lock right now (taking and dropping it). */
function lockIsFree(): boolean {
  const shim = nativeShim();
  const fd = openSync(join(dir, 'lock'), constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    const rc = shim.flock(fd, LOCK.EX | LOCK.NB);
    if (rc !== 0 && rc !== -EWOULDBLOCK) throw new Error(`flock: errno ${-rc}`);
    return rc === 0;
  } finally {
    closeSync(fd); // drops the lock if taken
  }
}

describe('the work_dir lock between processes', () => {
  it('many processes queued behind a holder all get the lock in turn, one at a time', async () => {
    const store = new StateStore(dir);
    const n = 20;
    let queued: Child[] = [];
    await store.withLock(async () => {
      queued = Array.from({ length: n }, () => child(20, 10_000));
      // Every one found the lock held and is blocked in the kernel before the holder lets go.
      await Promise.all(queued.map((c) => c.said('waiting')));
    });
    const codes = await Promise.all(queued.map((c) => c.exit));
    expect(codes, queued.map((c) => c.stderr()).join('')).toEqual(Array(n).fill(0));
    // Each bumped the generation it read when it took the lock: no two held it at once.
    expect(await store.withLock(async () => store.readGeneration())).toBe(String(n));
  });

  it('a waiter that times out leaves no lock and no blocked thread behind: its process exits while the lock is held', async () => {
    const holder = child('stdin', 10_000);
    await holder.said('locked');
    // Node's exit joins the threadpool: a thread still blocked in flock(2) would keep it from exiting.
    const quitter = child(0, 100);
    expect(await quitter.exit, quitter.stderr()).toBe(3);
    expect(quitter.stderr()).toMatch(/^LockTimeoutError: .* is locked by another portmap-isolator process \(waited 100 ms\)/);
    const calls = countingShim();
    const store = new StateStore(dir, calls);
    let ran = 0;
    for (let i = 0; i < 3; i++) {
      await expect(store.withLock(async () => ran++, 50)).rejects.toBeInstanceOf(LockTimeoutError);
    }
    expect(ran).toBe(0);
    expect(calls.waits).toBeGreaterThanOrEqual(1); // (each timed-out wait was interrupted; a later attempt may adopt one not yet settled)
    holder.proc.stdin!.end();
    expect(await holder.exit).toBe(0);
    // Another process takes it, then this one (the lock is neither held nor lost).
    const later = child(0, 10_000);
    expect(await later.exit, later.stderr()).toBe(0);
    expect(await store.withLock(async () => store.readGeneration(), 10_000)).toBe('2');
    expect(lockIsFree()).toBe(true);
  });

  it('a waiter gets the lock of a holder killed with SIGKILL', async () => {
    const holder = child('stdin', 10_000);
    await holder.said('locked');
    expect(lockIsFree()).toBe(false);
    const calls = countingShim();
    const store = new StateStore(dir, calls);
    const got = store.withLock(async () => 'mine', 10_000);
    await calls.waiting; // blocked in the kernel
    holder.proc.kill('SIGKILL');
    expect(await holder.exit).toBe('SIGKILL');
    expect(await got).toBe('mine');
    expect(calls.waits).toBe(1);
    expect(lockIsFree()).toBe(true);
  });
});
