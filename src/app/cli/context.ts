/**
 * What every CLI command works with: its parsed arguments, the work_dir and host namespace, the
 * isolator (opened on first use) and the agent serving the work_dir, if one answers.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IsolatorFlags } from '../../isolator/config.js';
import { ISOLATOR_FLAG_NAMES, parseConfig } from '../../isolator/config.js';
import { Isolator } from '../../isolator/engine.js';
import { ConfigError } from '../../isolator/errors.js';
import { PortSet } from '../../isolator/port-set.js';
import { checkContainerId } from '../../isolator/state.js';
import { agentSocketPath } from '../agent.js';
import type { AgentReply } from '../agent-client.js';
import { callAgent } from '../agent-client.js';
import type { Logger } from '../log.js';
import type { ParsedArgs } from './args.js';
import { intFlag, isolatorFlags } from './args.js';
import { AGENT_WARM_POOL, COMMANDS } from './usage.js';

export interface CommandContext {
  command: string;
  args: ParsedArgs;
  log: Logger;
  workDir: string;
  netns: string | undefined;
  /** The isolator flags in effect (given, else remembered; see resolveFlags). */
  flags: IsolatorFlags;
  /** The isolator, opened on first use (and closed by close()). */
  open: () => Promise<Isolator>;
  /**
   * A request to the agent serving this work_dir, after the same checks of flags and host the
   * direct path makes (so errors are the same); undefined when no agent answers on its socket.
   * A user who may use the socket but not act as root (--socket_group) gets the flags' checks.
   */
  viaAgent: (method: string, path: string, body?: unknown) => Promise<AgentReply | undefined>;
  close: () => Promise<void>;
}

export function commandContext(command: string, args: ParsedArgs, log: Logger, workDir: string, netns: string | undefined): CommandContext {
  const { flags, remember } = resolveFlags(args, workDir);
  let iso: Isolator | undefined;
  const open = async () => {
    if (iso) return iso;
    // The agent lives long enough for spares to pay off; one-shot commands never keep any.
    const warmPool = command === 'agent' ? (intFlag(args.flags, 'warm_pool', 0, 64) ?? AGENT_WARM_POOL) : undefined;
    iso = await Isolator.open({
      flags,
      workDir,
      ...(netns !== undefined ? { netns } : {}),
      ...(warmPool !== undefined ? { warmPool } : {}),
      onWarning: (m) => log.warn(m),
    });
    if (command === 'create' || command === 'agent' || command === 'run') remember();
    return iso;
  };
  const viaAgent = async (method: string, path: string, body?: unknown): Promise<AgentReply | undefined> => {
    // The agent acts with its own isolator flags: a command that gives some acts directly.
    if ([...args.flags.keys()].some((k) => (ISOLATOR_FLAG_NAMES as readonly string[]).includes(k))) return undefined;
    if (process.getuid?.() === 0) await open();
    else parseConfig(flags);
    return await callAgent(agentSocketPath(workDir), method, path, body);
  };
  const close = async () => {
    await iso?.close();
  };
  return { command, args, log, workDir, netns, flags, open, viaAgent, close };
}

/**
 * Isolator flags: those given, else the ones the work_dir remembers. Given flags are remembered
 * (by `remember()`, once they proved valid) so that later commands need not repeat them.
 */
export function resolveFlags(args: ParsedArgs, workDir: string): { flags: IsolatorFlags; remember: () => void } {
  const given = isolatorFlags(args.flags);
  const file = join(workDir, 'flags.json');
  if (Object.keys(given).length === 0) {
    return { flags: existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as IsolatorFlags) : given, remember: () => undefined };
  }
  return {
    flags: given,
    remember: () => {
      mkdirSync(workDir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.tmp-${process.pid}`;
      writeFileSync(tmp, JSON.stringify(given, null, 2) + '\n');
      renameSync(tmp, file); // readers see the old or the new file, never half of one
    },
  };
}

/** --ports, checked as the engine would (malformed ranges are a configuration error). */
export function checkPorts(id: string, ports: string): void {
  try {
    PortSet.parse(ports);
  } catch (e) {
    throw new ConfigError('ports', `invalid ports for container ${id}: ${(e as Error).message}`);
  }
}

export function needId(args: ParsedArgs, command: string): string {
  const id = args.positional[0];
  if (!id) throw new ConfigError('id', `'${command}' needs a container ID: portmap-isolator ${COMMANDS[command]!.usage}`);
  if (args.positional.length > 1) throw new ConfigError('id', `unexpected argument '${args.positional[1]}'`);
  return id;
}

/** A container ID argument, checked as the engine would (a bad one is a configuration error). */
export function validId(id: string): string {
  try {
    return checkContainerId(id);
  } catch (e) {
    throw new ConfigError('id', (e as Error).message);
  }
}

/** An agent's error answer, as the CLI reports it: the agent's one line and an exit status. */
export class AgentError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * The body of an agent's answer with the expected status; anything else becomes the error the
 * direct path would have printed: a 400 naming a field or flag is a configuration error (exit
 * 2), the rest exit 1 with the agent's message (the engine's own text).
 */
export function expectStatus(r: AgentReply, ok: number): unknown {
  if (r.status === ok) return r.body;
  const b = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as { error?: unknown; field?: unknown };
  const message =
    typeof b.error === 'string' ? b.error : `the agent answered ${r.status}${typeof r.body === 'string' && r.body ? `: ${r.body.split('\n')[0]}` : ''}`;
  throw new AgentError(message, r.status === 400 && typeof b.field === 'string' ? 2 : 1);
}
