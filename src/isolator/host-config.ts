/**
 * The host configuration: the isolator flags every container of a work_dir is built with, stored
 * in `<work_dir>/flags.json` (a plain JSON object of flags, Mesos names). In Mesos they are agent
 * flags, fixed for the agent's life; here the CLI, the agent and the CNI plugin share one
 * work_dir, so the file is what makes them agree. Flags given again must match it while
 * containers exist; with none, given flags replace it (nothing built could disagree).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseBytes } from './bytes.js';
import type { IsolatorFlags } from './config.js';
import { ISOLATOR_FLAGS, ISOLATOR_FLAG_NAMES, parseConfig } from './config.js';
import { ConfigError } from './errors.js';
import { unlinkQuiet, writeJson } from './record-files.js';

export const HOST_CONFIG_FILE = 'flags.json';

export function hostConfigPath(workDir: string): string {
  return join(workDir, HOST_CONFIG_FILE);
}

/** What `<work_dir>/flags.json` holds, and when it was written. */
export interface StoredHostConfig {
  path: string;
  flags: IsolatorFlags;
  storedAt: Date;
}

/**
 * The stored configuration, or undefined when none is (unknown keys are dropped). An unreadable
 * file is a configuration error, never silently the defaults: containers were built with it.
 */
export function readHostConfig(workDir: string): StoredHostConfig | undefined {
  const path = hostConfigPath(workDir);
  let raw: unknown;
  let storedAt: Date;
  try {
    storedAt = statSync(path).mtime;
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError('work_dir', `cannot read the host configuration ${path}: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError('work_dir', `${path} is not a JSON object of flags`);
  const flags: Record<string, unknown> = {};
  for (const name of ISOLATOR_FLAG_NAMES) if ((raw as Record<string, unknown>)[name] !== undefined) flags[name] = (raw as Record<string, unknown>)[name];
  return { path, flags: flags as IsolatorFlags, storedAt };
}

/** Store `flags` (write and rename: readers see the old or the new file). Unchanged: left alone. */
export function writeHostConfig(workDir: string, flags: IsolatorFlags): void {
  const current = readHostConfig(workDir);
  if (current && JSON.stringify(current.flags) === JSON.stringify(flags)) return;
  writeJson(hostConfigPath(workDir), flags);
}

/** Forget the stored configuration (`cleanup`, once everything it described is gone). */
export function forgetHostConfig(workDir: string): void {
  unlinkQuiet(hostConfigPath(workDir));
}

/** How many containers the work_dir has records of (and spares of the agent's warm pool). */
export function containersInWorkDir(workDir: string): { containers: number; spares: number } {
  const count = (dir: string) => {
    try {
      return readdirSync(join(workDir, dir)).filter((n) => n.endsWith('.json')).length;
    } catch {
      return 0;
    }
  };
  return { containers: count('containers'), spares: count('spares') };
}

/** A flag's value as compared: bytes by their count, the rest by their text. */
function comparable(name: keyof IsolatorFlags, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  const kind = ISOLATOR_FLAGS[name].kind;
  if (kind === 'bytes' || (kind === 'rate' && v !== 'auto')) {
    try {
      return String(parseBytes(String(v)));
    } catch {
      /* compared as text: parseConfig reports it */
    }
  }
  return String(v);
}

/** The value in effect for `name` under `flags`: the flag, else its default (undefined: none). */
export function effectiveValue(flags: IsolatorFlags, name: keyof IsolatorFlags): string | number | boolean | undefined {
  return flags[name] ?? ISOLATOR_FLAGS[name].default;
}

export interface FlagDifference {
  flag: keyof IsolatorFlags;
  /** The given value (undefined: a complete configuration that leaves it unset, with no default). */
  given: string | number | boolean | undefined;
  /** The stored value, else the default; undefined: none. */
  stored: string | number | boolean | undefined;
}

/**
 * The first given flag (in the table's order) whose value differs from the stored one or its
 * default. `complete`: `given` is a whole configuration (a CNI network configuration), so a flag
 * it leaves out means its default, and is compared too.
 */
export function firstDifference(given: IsolatorFlags, stored: IsolatorFlags, complete = false): FlagDifference | undefined {
  for (const flag of ISOLATOR_FLAG_NAMES) {
    const g = complete ? effectiveValue(given, flag) : given[flag];
    if (g === undefined && (!complete || effectiveValue(stored, flag) === undefined)) continue;
    const s = effectiveValue(stored, flag);
    if (comparable(flag, g) !== comparable(flag, s)) return { flag, given: g, stored: s };
  }
  return undefined;
}

/** The flags a command works with, and whether they are to be stored (see resolveHostConfig). */
export interface ResolvedHostConfig {
  flags: IsolatorFlags;
  stored: StoredHostConfig | undefined;
  /**
   * The given flags are a new configuration: a command that builds containers stores them, and
   * before it builds anything (so whoever finds a container in use finds its flags stored).
   */
  replaces: boolean;
}

/**
 * The flags in effect for a command that gives `given`: the stored ones when it gives none or
 * only matching values; the given ones when they differ and `inUse()` says nothing was built
 * with the stored ones (no container, no spare, no agent). Differing while in use is a
 * ConfigError naming the first differing flag; a bad given value is reported as such first.
 */
export async function resolveHostConfig(
  workDir: string,
  given: IsolatorFlags,
  inUse: () => boolean | Promise<boolean>,
  opts: { complete?: boolean } = {},
): Promise<ResolvedHostConfig> {
  const complete = opts.complete ?? false;
  const stored = readHostConfig(workDir);
  const storedFlags = stored?.flags ?? {};
  if (!complete && Object.keys(given).length === 0) return { flags: storedFlags, stored, replaces: false };
  const diff = firstDifference(given, storedFlags, complete);
  if (!diff) return { flags: { ...storedFlags, ...given }, stored, replaces: stored === undefined };
  if (!(await inUse())) return { flags: given, stored, replaces: true };
  // Whatever is in use was built by a command that stored its flags first (see ResolvedHostConfig):
  // when nothing was stored at our first read, a concurrent first create may have stored since.
  if (stored === undefined) {
    const now = readHostConfig(workDir);
    if (now !== undefined) return resolveHostConfig(workDir, given, () => true, opts);
  }
  try {
    parseConfig({ ...storedFlags, ...given });
  } catch (e) {
    if (e instanceof ConfigError && e.flag in given) throw e;
  }
  throw mismatchError(hostConfigPath(workDir), diff, storedFlags, complete);
}

function mismatchError(path: string, d: FlagDifference, storedFlags: IsolatorFlags, complete: boolean): ConfigError {
  const has =
    storedFlags[d.flag] !== undefined
      ? `has '${String(d.stored)}'`
      : d.stored !== undefined
        ? `leaves it at its default '${String(d.stored)}'`
        : `leaves it unset (${ISOLATOR_FLAGS[d.flag].none ?? 'none'})`;
  const given = d.given === undefined ? `leaving it unset (${ISOLATOR_FLAGS[d.flag].none ?? 'none'})` : `'${String(d.given)}'`;
  return new ConfigError(
    d.flag,
    `${given} differs from the host configuration in ${path}, which ${has}; containers use it: give the same value${complete ? '' : ' or none'} (see \`portmap-isolator config\`), or \`portmap-isolator cleanup\` (destroys every container) to change it`,
  );
}
