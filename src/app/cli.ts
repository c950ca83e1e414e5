/**
 * `portmap-isolator` — the command line (DESIGN.md §4). Exit status: 0 success, 1 runtime failure
 * (one line, nothing half-built left), 2 configuration error (one line naming the flag or
 * argument). The commands are in cli/: one function each (cli/commands.ts), their context
 * (cli/context.ts), their flags and help (cli/usage.ts).
 */
import { readFileSync } from 'node:fs';
import { errorReport } from '../isolator/errors.js';
import { DEFAULT_WORK_DIR } from '../isolator/state.js';
import type { ParsedArgs } from './cli/args.js';
import { ArgumentError, choiceFlag, helpAsked, ownArgs, parseArgs, stringFlag } from './cli/args.js';
import { COMMAND_HANDLERS } from './cli/commands.js';
import type { CommandContext } from './cli/context.js';
import { AgentError, commandContext, noMoreArgs } from './cli/context.js';
import { COMMANDS, allowedFlags, usage } from './cli/usage.js';
import { runDemo } from './demo.js';
import type { LogFormat, Logger } from './log.js';
import { LOG_FORMATS, LOG_LEVELS, createLogger, formatLogLine } from './log.js';

export { AGENT_WARM_POOL } from './cli/usage.js';

/** The command line: runs one command and returns its exit status (see main.ts for the executable). */
export async function main(argv: string[]): Promise<number> {
  const own = ownArgs(argv);
  // Failures are printed as the log lines are: a JSON line with --log_format=json.
  const fail = failureReporter(logFormatOf(argv));
  if (own.includes('--version')) {
    process.stdout.write(`portmap-isolator ${packageVersion()}\n`);
    return 0;
  }
  // One dash is -h alone: any other such word is a mistake, never a command or an id.
  const short = own.find((a) => /^-(?!-)/.test(a) && a !== '-h');
  if (short !== undefined) return fail(new ArgumentError(short, 'unknown flag (flags are spelled --name or --name=VALUE; -h is --help)'));
  const words = own.filter((a) => !a.startsWith('-'));
  if (helpAsked(argv) || words[0] === 'help') return help(words, helpAsked(argv), fail);
  // An unknown command before its flags: they are checked against the command's.
  if (words[0] !== undefined && !COMMANDS[words[0]]) return fail(unknownCommand(words[0]));
  let args: ParsedArgs;
  let log: Logger;
  try {
    args = parseArgs(argv, allowedFlags);
    if (args.command === undefined) throw new ArgumentError('COMMAND', 'missing (portmap-isolator --help lists them)');
    const format = choiceFlag(args.flags, 'log_format', LOG_FORMATS, 'text');
    log = createLogger(format, undefined, choiceFlag(args.flags, 'log_level', LOG_LEVELS, 'info'));
    if (args.rest.length && args.command !== 'run') throw ArgumentError.unexpected('--', COMMANDS[args.command]!.usage);
  } catch (e) {
    return fail(e);
  }
  return await runCommandLine(args.command, args, log, fail);
}

/** `help [COMMAND]`, `--help`, `-h`: the usage of the program or of the command named first. */
function help(words: string[], asked: boolean, fail: (e: unknown) => number): number {
  const command = words[0] === 'help' ? (words[1] ?? (asked ? 'help' : undefined)) : words[0];
  if (command !== undefined && !COMMANDS[command]) return fail(unknownCommand(command));
  process.stdout.write(usage(command));
  return 0;
}

/** The log format asked for, known before the command line is parsed (to report its errors). */
function logFormatOf(argv: readonly string[]): LogFormat {
  return ownArgs(argv).some((a) => /^--log[-_]format=json$/.test(a)) ? 'json' : 'text';
}

function unknownCommand(command: string): ArgumentError {
  return new ArgumentError('COMMAND', `unknown command '${command}' (see portmap-isolator --help)`);
}

/** Prints a failure as one line (text, or a JSON log line) and returns its exit status. */
function failureReporter(format: LogFormat): (e: unknown) => number {
  return (e) => {
    const message = e instanceof Error ? e.message : String(e);
    const report = errorReport(e);
    const exitCode = e instanceof AgentError ? e.exitCode : report.exitCode;
    if (format === 'text') process.stderr.write(`portmap-isolator: ${message}\n`);
    else {
      const at = e instanceof ArgumentError ? { argument: e.argument } : report.field !== undefined ? { flag: report.field } : {};
      process.stderr.write(formatLogLine('json', 'error', message, { exit_code: exitCode, ...at }) + '\n');
    }
    return exitCode;
  };
}

/** The package's version (package.json two levels above this module, in src/ and in dist/ alike). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** One known command, its arguments checked: runs it and reports its failure as one line. */
async function runCommandLine(command: string, args: ParsedArgs, log: Logger, fail: (e: unknown) => number): Promise<number> {
  const workDir = stringFlag(args.flags, 'work_dir') ?? DEFAULT_WORK_DIR;
  let ctx: CommandContext | undefined;
  try {
    noMoreArgs(args, command, COMMANDS[command]!.args ?? 0);
    if (command === 'demo') return await runDemo({ log, workDir: stringFlag(args.flags, 'work_dir') });
    ctx = await commandContext(command, args, log, workDir, stringFlag(args.flags, 'netns'));
    const handler = COMMAND_HANDLERS[command];
    return handler ? await handler(ctx) : 2;
  } catch (e) {
    // By type: the isolator's errors carry their exit status (2 configuration, 1 runtime), the rest are runtime failures.
    return fail(e);
  } finally {
    await ctx?.close();
  }
}

/**
 * Run the command line and exit once stdout and stderr are written out: a pipe takes 64 KiB at a
 * time, and exit() would cut a long `list --json` there. The executable's path (main.ts).
 */
export function runCliAndExit(argv: string[]): void {
  const exitFlushed = (code: number) => process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
  main(argv).then(exitFlushed, (e) => {
    failureReporter(logFormatOf(argv))(e);
    exitFlushed(1);
  });
}
