/**
 * `ip` inside lab namespaces, for tests that compare with what iproute2 sees or does. The lab
 * itself (namespaces, host, world, sweep, IsolatorLab, until) is src/lab.
 */
import { execFileSync } from 'node:child_process';

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
