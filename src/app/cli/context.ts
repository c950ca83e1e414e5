/**
 * What every CLI command works with: its parsed arguments, the work_dir and host namespace, the
 * isolator (opened on first use) and the agent serving the work_dir, if one answers.
 */
import type { IsolatorFlags } from '../../isolator/config.js';
import { ISOLATOR_FLAG_NAMES, parseConfig } from '../../isolator/config.js';
import { Isolator } from '../../isolator/engine.js';
import type { ResolvedHostConfig } from '../../isolator/host-config.js';
import { containersInWorkDir, hostConfigPath, resolveHostConfig, writeHostConfig } from '../../isolator/host-config.js';
import { ConfigError } from '../../isolator/errors.js';
import { PortSet } from '../../isolator/port-set.js';
import { checkContainerId } from '../../isolator/state.js';
import { agentSocketPath, socketAnswers } from '../agent.js';
import type { AgentReply } from '../agent-client.js';
import { callAgent } from '../agent-client.js';
import type { Logger } from '../log.js';
import type { ParsedArgs } from './args.js';
import { ArgumentError, intFlag, isolatorFlags } from './args.js';
import { AGENT_WARM_POOL, COMMANDS } from './usage.js';

export interface CommandContext {
  command: string;
  args: ParsedArgs;
  log: Logger;
  workDir: string;
  netns: string | undefined;
  /** The isolator flags in effect (given, else stored; see resolveFlags). */
  flags: IsolatorFlags;
  /** Where they came from. */
  host: ResolvedHostConfig;
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

/** Commands that build containers with the host configuration: the ones that store it. */
const STORING_COMMANDS = new Set(['create', 'run', 'agent']);

export async function commandContext(command: string, args: ParsedArgs, log: Logger, workDir: string, netns: string | undefined): Promise<CommandContext> {
  const host = await resolveFlags(args, workDir, log);
  const { flags } = host;
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
    // Stored once they proved valid on this host, before a container is built with them.
    if (host.replaces && STORING_COMMANDS.has(command)) {
      writeHostConfig(workDir, flags);
      log.debug('host configuration stored', { path: hostConfigPath(workDir), flags });
    }
    return iso;
  };
  const viaAgent = async (method: string, path: string, body?: unknown): Promise<AgentReply | undefined> => {
    // The agent acts with its own isolator flags: a command that gives some acts directly.
    if ([...args.flags.keys()].some((k) => (ISOLATOR_FLAG_NAMES as readonly string[]).includes(k))) return undefined;
    if (process.getuid?.() === 0) await open();
    else parseConfig(flags);
    const reply = await callAgent(agentSocketPath(workDir), method, path, body);
    if (reply) log.debug('answered by the agent', { socket: agentSocketPath(workDir), method, path, status: reply.status });
    return reply;
  };
  const close = async () => {
    await iso?.close();
  };
  return { command, args, log, workDir, netns, flags, host, open, viaAgent, close };
}

/**
 * The isolator flags in effect: the stored host configuration, which given flags must match
 * while anything was built with it (a container, a spare, a running agent); with nothing built,
 * the given flags replace it (see resolveHostConfig).
 */
export async function resolveFlags(args: ParsedArgs, workDir: string, log: Logger): Promise<ResolvedHostConfig> {
  const inUse = async () => {
    const { containers, spares } = containersInWorkDir(workDir);
    return containers + spares > 0 || (await socketAnswers(agentSocketPath(workDir)));
  };
  const host = await resolveHostConfig(workDir, isolatorFlags(args.flags), inUse);
  const source = host.replaces || !host.stored ? 'given and defaults' : 'stored';
  log.debug('isolator flags', { source, path: hostConfigPath(workDir), flags: host.flags });
  return host;
}

/** --ports, checked as the engine would (malformed ranges are a configuration error). */
export function checkPorts(id: string, ports: string): void {
  try {
    PortSet.parse(ports);
  } catch (e) {
    throw new ConfigError('ports', `invalid ports for container ${id}: ${(e as Error).message}`);
  }
}

/** The ID argument of `command` (exit 2 naming ID when missing). */
export function needId(args: ParsedArgs, command: string): string {
  const id = args.positional[0];
  if (!id) throw new ArgumentError('ID', `'${command}' needs a container ID: portmap-isolator ${COMMANDS[command]!.usage}`);
  return id;
}

/** No positional arguments past the first `count` (exit 2 naming the first unexpected one). */
export function noMoreArgs(args: ParsedArgs, command: string, count = 0): void {
  const extra = args.positional[count];
  if (extra !== undefined) throw ArgumentError.unexpected(extra, COMMANDS[command]!.usage);
}

/** A container ID, checked as the engine would (a bad one is a configuration error naming `what`: ID or --id). */
export function validId(id: string, what: 'ID' | 'id' = 'ID'): string {
  try {
    return checkContainerId(id);
  } catch (e) {
    throw what === 'id' ? new ConfigError('id', (e as Error).message) : new ArgumentError('ID', (e as Error).message);
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
