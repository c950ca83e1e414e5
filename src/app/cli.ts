/**
 * `portmap-isolator` — the command line (DESIGN.md §4). Exit status: 0 success, 1 runtime failure
 * (one line, nothing half-built left), 2 configuration error (one line naming the flag).
 * The commands are in cli/: one function each (cli/commands.ts), their context (cli/context.ts).
 */
import { readFileSync } from 'node:fs';
import { errorReport } from '../isolator/errors.js';
import { DEFAULT_WORK_DIR } from '../isolator/state.js';
import type { ParsedArgs } from './cli/args.js';
import { parseArgs, stringFlag } from './cli/args.js';
import { COMMAND_HANDLERS } from './cli/commands.js';
import type { CommandContext } from './cli/context.js';
import { AgentError, commandContext } from './cli/context.js';
import { COMMANDS, allowedFlags, usage } from './cli/usage.js';
import { runDemo } from './demo.js';
import type { LogFormat } from './log.js';
import { createLogger } from './log.js';

export { AGENT_WARM_POOL } from './cli/usage.js';

/** The command line: runs one command and returns its exit status (see main.ts for the executable). */
export async function main(argv: string[]): Promise<number> {
  // Before any `--` (what follows belongs to `run`'s command): --version, and -h for --help.
  const end = argv.includes('--') ? argv.indexOf('--') : argv.length;
  if (argv.slice(0, end).includes('--version')) {
    process.stdout.write(`portmap-isolator ${packageVersion()}\n`);
    return 0;
  }
  argv = argv.map((a, i) => (a === '-h' && i < end ? '--help' : a));
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, allowedFlags);
  } catch (e) {
    process.stderr.write(`portmap-isolator: ${(e as Error).message}\n`);
    return 2;
  }
  const command = args.command;
  if (args.flags.get('help') === true || command === 'help' || command === undefined) {
    process.stdout.write(usage(command === 'help' ? args.positional[0] : command));
    return command === undefined && args.flags.get('help') !== true ? 2 : 0;
  }
  if (!COMMANDS[command]) {
    process.stderr.write(`portmap-isolator: unknown command '${command}' (see portmap-isolator --help)\n`);
    return 2;
  }
  const logFormat = (stringFlag(args.flags, 'log_format') ?? 'text') as LogFormat;
  if (logFormat !== 'text' && logFormat !== 'json') {
    process.stderr.write(`portmap-isolator: --log_format: must be text or json\n`);
    return 2;
  }
  if (args.rest.length && command !== 'run') {
    process.stderr.write(`portmap-isolator: '${command}' takes no command after --\n`);
    return 2;
  }
  return await runCommandLine(command, args, createLogger(logFormat));
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
async function runCommandLine(command: string, args: ParsedArgs, log: ReturnType<typeof createLogger>): Promise<number> {
  const workDir = stringFlag(args.flags, 'work_dir') ?? DEFAULT_WORK_DIR;
  let ctx: CommandContext | undefined;
  try {
    if (command === 'demo') return await runDemo({ log, workDir: stringFlag(args.flags, 'work_dir') });
    ctx = commandContext(command, args, log, workDir, stringFlag(args.flags, 'netns'));
    const handler = COMMAND_HANDLERS[command];
    return handler ? await handler(ctx) : 2;
  } catch (e) {
    // By type: the isolator's errors carry their exit status (2 configuration, 1 runtime), the rest are runtime failures.
    process.stderr.write(`portmap-isolator: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof AgentError ? e.exitCode : errorReport(e).exitCode;
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
    process.stderr.write(`portmap-isolator: ${(e as Error).message}\n`);
    exitFlushed(1);
  });
}
