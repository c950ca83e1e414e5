/**
 * Mesos-style command lines: `portmap-isolator COMMAND [ARGS] --name=value --flag --flag=false
 * --no-flag [-- CMD ARGS…]`, flags before or after the command. Unknown or malformed flags are
 * configuration errors (exit 2) naming the flag; a bad argument names the argument.
 */
import type { IsolatorFlags } from '../../isolator/config.js';
import { ISOLATOR_FLAG_NAMES } from '../../isolator/config.js';
import { ConfigError } from '../../isolator/errors.js';
import { isBooleanFlag } from './usage.js';

/** A bad command-line argument (ID, COMMAND, CMD…): exit 2, one line naming the argument, not a flag. */
export class ArgumentError extends ConfigError {
  override readonly name: string = 'ArgumentError';
  constructor(
    readonly argument: string,
    message: string,
  ) {
    super(argument, message);
    this.message = `${argument}: ${message}`;
  }

  /** An argument where none (or no more) is taken. */
  static unexpected(argument: string, usage: string): ArgumentError {
    const e = new ArgumentError(argument, '');
    e.message = `unexpected argument '${argument}' (usage: portmap-isolator ${usage})`;
    return e;
  }
}

export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | boolean>;
  /** Everything after `--` (the command of `run`). */
  rest: string[];
}

/** Everything before `--`: what is ours to parse. */
export function ownArgs(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--');
  return end < 0 ? argv : argv.slice(0, end);
}

/** Is help asked for (-h, --help, --help=true before any `--`)? */
export function helpAsked(argv: readonly string[]): boolean {
  return ownArgs(argv).some((a) => a === '-h' || a === '--help' || a === '--help=true');
}

/** One `--name[=value]` into its name and value, checked against the flags of `command`. */
function parseFlag(a: string, command: string | undefined, allowed: ReadonlySet<string>): [string, string | boolean] {
  const eq = a.indexOf('=');
  let name = (eq < 0 ? a.slice(2) : a.slice(2, eq)).replace(/-/g, '_');
  if (!/^[a-z0-9_]+$/.test(name)) throw new ConfigError(name || '--', `malformed flag '${a}'`);
  const unknown = () => new ConfigError(name, `unknown flag${command !== undefined ? ` for '${command}'` : ''}`);
  if (name.startsWith('no_') && isBooleanFlag(name.slice(3)) && allowed.has(name.slice(3))) {
    // Mesos' spelling of false: --no-flag (and no value after it).
    name = name.slice(3);
    if (eq >= 0) throw new ConfigError(name, `'--no-${name}' takes no value (use --${name}=true|false)`);
    return [name, false];
  }
  if (!allowed.has(name)) throw unknown();
  if (eq < 0) {
    if (!isBooleanFlag(name)) throw new ConfigError(name, `needs a value: --${name}=VALUE`);
    return [name, true];
  }
  const text = a.slice(eq + 1);
  if (!isBooleanFlag(name)) return [name, text];
  if (text !== 'true' && text !== 'false') throw new ConfigError(name, `takes true or false, got '${text}'`);
  return [name, text === 'true'];
}

/** The command line, its flags checked against those of its command (wherever they stand). */
export function parseArgs(argv: readonly string[], allowed: (command: string | undefined) => ReadonlySet<string>): ParsedArgs {
  const own = ownArgs(argv);
  const out: ParsedArgs = { command: undefined, positional: [], flags: new Map(), rest: argv.slice(own.length + 1) };
  const words = own.filter((a) => !a.startsWith('--'));
  out.command = words[0];
  out.positional = words.slice(1);
  const flags = allowed(out.command);
  for (const a of own) {
    if (!a.startsWith('--')) continue;
    const [name, value] = parseFlag(a, out.command, flags);
    if (out.flags.has(name)) throw new ConfigError(name, 'given twice');
    out.flags.set(name, value);
  }
  return out;
}

/** The isolator flags among the parsed ones, typed. */
export function isolatorFlags(flags: ReadonlyMap<string, string | boolean>): IsolatorFlags {
  const out: Record<string, unknown> = {};
  for (const name of ISOLATOR_FLAG_NAMES) if (flags.has(name)) out[name] = flags.get(name);
  return out as IsolatorFlags;
}

export function stringFlag(flags: ReadonlyMap<string, string | boolean>, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** A flag that must be one of `choices` (else exit 2 naming it). */
export function choiceFlag<T extends string>(flags: ReadonlyMap<string, string | boolean>, name: string, choices: readonly T[], dflt: T): T {
  const v = stringFlag(flags, name) ?? dflt;
  if (!(choices as readonly string[]).includes(v)) {
    throw new ConfigError(name, `must be ${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]!}, got '${v}'`);
  }
  return v as T;
}

export function intFlag(flags: ReadonlyMap<string, string | boolean>, name: string, min = 1, max = 0x7fffffff): number | undefined {
  const v = stringFlag(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got '${v}'`);
  return Number(v);
}

/** --cpus: the container's CPUs, a number ≥ 0. */
export function cpusFlag(args: ParsedArgs): number | undefined {
  const cpus = stringFlag(args.flags, 'cpus');
  if (cpus === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(cpus)) throw new ConfigError('cpus', `must be a number ≥ 0, got '${cpus}'`);
  return Number(cpus);
}
