/**
 * Lab network namespaces for tests (DESIGN.md §6). Every name starts with LAB_PREFIX and carries
 * the creating process's pid, so a suite can sweep labs left by dead runs without touching the
 * live labs of test files running in parallel. The root namespace is never touched.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

export const LAB_PREFIX = 'pmi-lab-';
let counter = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove lab namespaces whose creating process is gone. */
export function sweepStaleLabs(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync('/run/netns');
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(LAB_PREFIX)) continue;
    const pid = Number(name.slice(LAB_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      removed.push(name);
    } catch {
      /* raced with another sweeper */
    }
  }
  return removed;
}

/** Run a command inside a lab namespace; returns stdout. */
export function nsExec(ns: string, cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  return execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], {
    encoding: 'utf8',
    input: opts.input,
    timeout: opts.timeoutMs ?? 30_000,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** `ip -j -n NS ARGS…` parsed. */
export function ipJson<T = any>(ns: string, ...args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-j', '-n', ns, ...args], { encoding: 'utf8' }) || '[]') as T;
}

/** `ip -n NS ARGS…`; throws with ip's stderr on failure. */
export function ip(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Run `ip -n NS ARGS…` expecting failure; returns its stderr. */
export function ipFails(ns: string, ...args: string[]): string {
  try {
    execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return String((e as { stderr: string }).stderr).trim();
  }
  throw new Error(`ip ${args.join(' ')} succeeded`);
}

export interface LabOptions {
  /** Build the world namespace and the host's eth0 (default true). */
  world?: boolean;
}

/**
 * A simulated host (its own eth0 198.18.0.2/24 and lo, default route via 198.18.0.1) and a
 * "world" namespace holding the other end of eth0 (198.18.0.1/24).
 */
export class Lab {
  readonly id: string;
  readonly host: string;
  readonly world: string;
  private readonly namespaces: string[] = [];

  constructor(opts: LabOptions = {}) {
    this.id = `${LAB_PREFIX}${process.pid}-${++counter}`;
    this.host = this.addNamespace('host');
    this.world = opts.world === false ? '' : this.addNamespace('world');
    try {
      ip(this.host, 'link', 'set', 'lo', 'up');
      if (this.world) {
        ip(this.world, 'link', 'set', 'lo', 'up');
        ip(this.host, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', this.world);
        ip(this.host, 'addr', 'add', '198.18.0.2/24', 'dev', 'eth0');
        ip(this.world, 'addr', 'add', '198.18.0.1/24', 'dev', 'eth0');
        ip(this.host, 'link', 'set', 'eth0', 'up');
        ip(this.world, 'link', 'set', 'eth0', 'up');
        ip(this.host, 'route', 'add', 'default', 'via', '198.18.0.1');
      }
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  /** Another namespace of this lab (removed with it). */
  addNamespace(role: string): string {
    const name = `${this.id}-${role}`;
    execFileSync('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    return name;
  }

  /** The pinned path of a lab namespace. */
  path(ns: string): string {
    return `/run/netns/${ns}`;
  }

  destroy(): void {
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* already gone */
      }
    }
  }
}
