/**
 * Helpers shared by the suites: bounded child processes, the C floor's build, request bytes,
 * and the shapes every suite returns.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetlinkSession } from '../src/netlink/index.js';
import { NetlinkSocket, removeNetns } from '../src/netlink/index.js';
import type { IsolatorLab, Lab } from '../src/lab/index.js';

/** What a suite hands back: the figures (printed, in the JSON) and raw samples (report only). */
export interface SuiteOutput<R extends object = object> {
  result: R;
  /** Raw samples for the report's plots, never printed. */
  samples?: Record<string, unknown>;
}

export interface SuiteOptions {
  quick: boolean;
  /** Progress lines (stderr), silent in --json mode. */
  log: (line: string) => void;
}

/** Run a command with a deadline; throws with its stderr on failure. Returns stdout. */
export function run(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number; stdout?: 'pipe' | 'ignore' } = {}): string {
  const r = spawnSync(cmd, args, {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    maxBuffer: 256 << 20,
    stdio: ['pipe', opts.stdout ?? 'pipe', 'pipe'],
  });
  if (r.error) throw new Error(`${cmd} ${args.slice(0, 6).join(' ')}…: ${r.error.message}`);
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.slice(0, 6).join(' ')}… exited ${r.status ?? r.signal}: ${String(r.stderr).trim().split('\n').slice(-3).join(' / ')}`);
  return r.stdout ?? '';
}

/** `ip -n NS ARGS…` in a lab namespace, stdout; throws with ip's stderr on failure. */
export function ip(ns: string, ...args: string[]): string {
  return run('ip', ['-n', ns, ...args]);
}

/** `ip -j -n NS ARGS…` in a lab namespace, parsed. */
export function ipJson<T = any>(ns: string, ...args: string[]): T {
  return JSON.parse(run('ip', ['-j', '-n', ns, ...args]) || '[]') as T;
}

/** Wall time of a synchronous command in ms (the child's whole life: start, work, exit). */
export function timeCommandMs(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): number {
  const t0 = process.hrtime.bigint();
  run(cmd, args, { ...opts, stdout: 'ignore' });
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The bytes `session.batch(reqs)` sends (sequence numbers aside), for the C floor. */
/**
 * Run `fn` and return every byte the session's socket sent meanwhile, concatenated: the very
 * messages (flags, sequence numbers, ACK requests) the SDK put on the wire, for the C floor to
 * replay.
 */
export async function recordSends(session: NetlinkSession, fn: () => Promise<unknown>): Promise<Buffer> {
  const socket = session.socket;
  const sent: Buffer[] = [];
  const orig = socket.send;
  socket.send = function (this: NetlinkSocket, buf: Buffer, length = buf.length) {
    sent.push(Buffer.from(buf.subarray(0, length)));
    return orig.call(this, buf, length);
  };
  try {
    await fn();
  } finally {
    socket.send = orig;
  }
  return Buffer.concat(sent);
}

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Build the C floor (bench/floor/nl-replay.c) once per source version into the temp dir.
 * Returns its path, or undefined (with the reason) when no C compiler is available.
 */
export function buildFloor(): { path?: string; reason?: string } {
  const src = join(here, 'floor', 'nl-replay.c');
  const hash = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 12);
  const out = join(tmpdir(), 'pmi-bench-build', `nl-replay-${hash}`);
  if (existsSync(out)) return { path: out };
  mkdirSync(dirname(out), { recursive: true });
  for (const cc of ['cc', 'gcc', 'clang']) {
    try {
      execFileSync(cc, ['-O2', '-Wall', '-o', out, src], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 60_000 });
      return { path: out };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return { reason: `compiling ${src} failed: ${String((e as { stderr?: Buffer }).stderr ?? e).trim()}` };
    }
  }
  return { reason: 'no C compiler (cc, gcc, clang) found' };
}

/** Sleep (used only to let background kernel work settle between phases). */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const interruptCleanups = new Set<() => void>();

/**
 * Register a synchronous cleanup to run if the run is interrupted (SIGINT/SIGTERM), when the
 * suites' `finally` blocks cannot. Returns the function that unregisters it.
 */
export function onInterrupt(fn: () => void): () => void {
  interruptCleanups.add(fn);
  return () => interruptCleanups.delete(fn);
}

/** Run every registered interrupt cleanup (each once, errors ignored). */
export function runInterruptCleanups(): void {
  for (const fn of [...interruptCleanups].reverse()) {
    interruptCleanups.delete(fn);
    try {
      fn();
    } catch {
      /* best effort */
    }
  }
}

/** On interrupt: remove a lab's namespaces. */
export const guardLab = (lab: Lab): (() => void) => onInterrupt(() => lab.destroy());

/** On interrupt: unpin the engine's container namespaces, remove the lab and the work dir. */
export function guardIsolatorLab(lab: IsolatorLab): () => void {
  return onInterrupt(() => {
    const dir = join(lab.workDir, 'netns');
    let pins: string[] = [];
    try {
      pins = readdirSync(dir);
    } catch {
      /* none */
    }
    for (const p of pins) removeNetns(join(dir, p));
    lab.lab.destroy();
    rmSync(lab.workDir, { recursive: true, force: true });
  });
}

/**
 * Time spent inside netlink socket calls (send, sendMany, receive) of every session in this
 * process: rtnetlink does its work inside sendmsg, so this is the kernel's share of an operation
 * (plus the native call itself). `take()` returns the ms since the last take. Restore when done.
 */
export function meterNetlinkCalls(): { take: () => number; restore: () => void } {
  const proto = NetlinkSocket.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const names = ['send', 'sendMany', 'receive'] as const;
  const saved = names.map((n) => proto[n]!);
  let acc = 0n;
  names.forEach((n, i) => {
    const orig = saved[i]!;
    proto[n] = function (this: unknown, ...args: unknown[]) {
      const t0 = process.hrtime.bigint();
      try {
        return orig.apply(this, args);
      } finally {
        acc += process.hrtime.bigint() - t0;
      }
    };
  });
  return {
    take: () => {
      const v = Number(acc) / 1e6;
      acc = 0n;
      return v;
    },
    restore: () => names.forEach((n, i) => (proto[n] = saved[i]!)),
  };
}

/** Whole-machine CPU use (0..1, all CPUs) from /proc/stat over `ms`. */
export async function machineBusy(ms: number): Promise<number> {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 8).map(Number);
    return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = read();
  await sleep(ms);
  const b = read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/**
 * Wait (at most `maxMs`) until the machine is quiet: less than `threshold` of all CPUs busy over
 * half a second. Background kernel work (a previous suite's namespaces being freed) or other jobs
 * on a shared machine skew every figure; the wait and what was left are reported with the results.
 */
export async function waitQuiet(maxMs: number, threshold = 0.15): Promise<{ waited_s: number; busy: number }> {
  const t0 = Date.now();
  let busy = await machineBusy(500);
  while (busy >= threshold && Date.now() - t0 < maxMs) busy = await machineBusy(500);
  return { waited_s: Math.round((Date.now() - t0) / 100) / 10, busy: Math.round(busy * 100) / 100 };
}

/** CPU ticks (all CPUs) of the whole machine, and of this process with its waited-for children. */
function cpuTicks(): { busy: number; total: number; own: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1, 8).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  const self = readFileSync('/proc/self/stat', 'utf8');
  const fields = self
    .slice(self.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
  const own = fields[11]! + fields[12]! + fields[13]! + fields[14]!;
  return { busy: total - f[3]! - f[4]!, total, own };
}

/**
 * Measure the machine's CPU use over a stretch of work: `stop()` returns the share of all CPUs
 * that was busy, and the share used by anything other than this process and its children
 * (other jobs, and kernel work such as freeing namespaces), both 0..1.
 */
export function cpuWatch(): { stop: () => { busy: number; others: number } } {
  const a = cpuTicks();
  return {
    stop: () => {
      const b = cpuTicks();
      const total = Math.max(1, b.total - a.total);
      const busy = (b.busy - a.busy) / total;
      const others = Math.max(0, (b.busy - a.busy - (b.own - a.own)) / total);
      return { busy: Math.round(busy * 100) / 100, others: Math.round(others * 100) / 100 };
    },
  };
}
