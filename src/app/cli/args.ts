/**
 * Mesos-style command lines: `portmap-isolator COMMAND [ARGS] --name=value --flag --flag=false
 * --no-flag [-- CMD ARGS…]`. Unknown or malformed flags are configuration errors (exit 2) naming the flag.
 */
import type { IsolatorFlags } from '../../isolator/config.js';
import { ISOLATOR_FLAG_NAMES } from '../../isolator/config.js';
import { ConfigError } from '../../isolator/errors.js';

export const BOOLEAN_FLAGS = new Set([
  'egress_unique_flow_per_container',
  'ingress_isolate_existing_containers',
  'network_enable_socket_statistics_summary',
  'network_enable_socket_statistics_details',
  'network_enable_snmp_statistics',
  'json',
  'help',
  'authenticate_http_readwrite',
  'authenticate_http_readonly',
]);

/** Flags every command takes. */
export const COMMON_FLAGS = ['netns', 'work_dir', 'log_format', 'help', ...ISOLATOR_FLAG_NAMES] as const;

export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  flags: Map<string, string | boolean>;
  /** Everything after `--` (the command of `run`). */
  rest: string[];
}

export function parseArgs(argv: readonly string[], allowed: (command: string | undefined) => ReadonlySet<string>): ParsedArgs {
  const out: ParsedArgs = { command: undefined, positional: [], flags: new Map(), rest: [] };
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      out.rest = argv.slice(i + 1);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      let name = (eq < 0 ? a.slice(2) : a.slice(2, eq)).replace(/-/g, '_');
      if (!/^[a-z0-9_]+$/.test(name)) throw new ConfigError(name || '--', `malformed flag '${a}'`);
      let value: string | boolean;
      if (name.startsWith('no_') && BOOLEAN_FLAGS.has(name.slice(3))) {
        // Mesos' spelling of false: --no-flag (and no value after it).
        name = name.slice(3);
        if (eq >= 0) throw new ConfigError(name, `'--no-${name}' takes no value (use --${name}=true|false)`);
        value = false;
      } else if (eq < 0) {
        if (!BOOLEAN_FLAGS.has(name)) {
          if (allowed(out.command).has(name)) throw new ConfigError(name, `needs a value: --${name}=VALUE`);
          throw new ConfigError(name, `unknown flag${out.command ? ` for '${out.command}'` : ''}`);
        }
        value = true;
      } else {
        const text = a.slice(eq + 1);
        if (BOOLEAN_FLAGS.has(name)) {
          if (text !== 'true' && text !== 'false') throw new ConfigError(name, `takes true or false, got '${text}'`);
          value = text === 'true';
        } else value = text;
      }
      if (!allowed(out.command).has(name)) throw new ConfigError(name, `unknown flag${out.command ? ` for '${out.command}'` : ''}`);
      if (out.flags.has(name)) throw new ConfigError(name, 'given twice');
      out.flags.set(name, value);
    } else if (out.command === undefined) {
      out.command = a;
    } else {
      out.positional.push(a);
    }
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

export function intFlag(flags: ReadonlyMap<string, string | boolean>, name: string, min = 1, max = 0x7fffffff): number | undefined {
  const v = stringFlag(flags, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new ConfigError(name, `must be an integer in ${min}..${max}, got '${v}'`);
  return Number(v);
}
