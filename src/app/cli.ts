/**
 * `portmap-isolator` — the command line (DESIGN.md §4). Exit status: 0 success, 1 runtime failure
 * (one line, nothing half-built left), 2 configuration error (one line naming the flag).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { Netns } from '../netlink/index.js';
import type { AgentAuthOptions } from './agent.js';
import { Agent, agentSocketPath, socketAnswers } from './agent.js';
import type { HttpCredential } from './http-auth.js';
import { loadCredentials } from './http-auth.js';
import { pidProblem } from './http-request.js';
import type { AgentReply } from './agent-client.js';
import { callAgent } from './agent-client.js';
import type { ParsedArgs } from './cli/args.js';
import { COMMON_FLAGS, intFlag, isolatorFlags, parseArgs, stringFlag } from './cli/args.js';
import type { IsolatorFlags } from '../isolator/config.js';
import { ISOLATOR_FLAG_NAMES, parseConfig } from '../isolator/config.js';
import { runDemo } from './demo.js';
import { doctor } from './doctor.js';
import type { ContainerInfo } from '../isolator/engine.js';
import { Isolator } from '../isolator/engine.js';
import { ConfigError, IsolatorError, PortmapError, UnknownContainerError, errorReport } from '../isolator/errors.js';
import type { LogFormat } from './log.js';
import { createLogger } from './log.js';
import type { MesosStatistics } from '../isolator/statistics.js';
import { PortSet } from '../isolator/port-set.js';
import { DEFAULT_WORK_DIR, checkContainerId } from '../isolator/state.js';

/** Spares the agent keeps ready unless --warm_pool says otherwise (see IsolatorOptions.warmPool). */
export const AGENT_WARM_POOL = 4;

const COMMANDS: Record<string, { flags: string[]; usage: string; help: string }> = {
  doctor: { flags: [], usage: 'doctor', help: 'check root, namespaces, kernel features (u32, mirred, htb, ingress, fq_codel) and the host configuration' },
  create: {
    flags: ['ports', 'pid', 'cpus'],
    usage: 'create ID [--ports=RANGES] [--pid=PID]',
    help: 'isolate a container (creating and pinning its namespace unless --pid is given); prints JSON',
  },
  update: { flags: ['ports'], usage: 'update ID --ports=RANGES', help: "change a running container's non-ephemeral ports (adds before it removes)" },
  destroy: { flags: [], usage: 'destroy ID', help: 'remove everything of a container (no-op for an unknown ID)' },
  list: { flags: ['json'], usage: 'list [--json]', help: 'the containers and their ports' },
  stats: { flags: [], usage: 'stats [ID]', help: 'Mesos /monitor/statistics JSON' },
  run: {
    flags: ['id', 'ports', 'cpus'],
    usage: 'run [--id=ID] [--ports=RANGES] -- CMD [ARGS…]',
    help: 'create, run CMD inside with stdio inherited, destroy afterwards; exits with CMD’s status',
  },
  agent: {
    flags: ['listen', 'warm_pool', 'socket_group', 'http_credentials', 'authenticate_http_readwrite', 'authenticate_http_readonly', 'tls_cert', 'tls_key'],
    usage: 'agent [--listen=ADDR:PORT] [agent flags]',
    help: `recover, then serve HTTP (statistics, containers, metrics) on <work_dir>/agent.sock (and TCP with --listen) until SIGTERM; --warm_pool keeps N spares ready (0–64, default ${AGENT_WARM_POOL}): a create takes one and only adds its ports' filters`,
  },
  recover: { flags: [], usage: 'recover', help: 'rebuild state from the work_dir and the kernel, clean up orphans, report' },
  cleanup: { flags: [], usage: 'cleanup', help: 'destroy every container and undo every host-side change' },
  demo: { flags: [], usage: 'demo', help: 'a self-contained lab showing isolation, rate limiting and statistics; exits 0 only if every check passed' },
};

const AGENT_FLAGS_HELP = [
  'Agent flags (DESIGN.md §5):',
  '  --listen=ADDR:PORT     also serve HTTP on TCP (default: only the Unix socket <work_dir>/agent.sock,',
  '                         mode 0600, root only); IPv6 as [::1]:5051; port 0 picks one',
  '  --socket_group=GROUP   make the socket 0660 owned by GROUP (name or gid), and the work_dir',
  '                         searchable by it (default: none, 0600)',
  '  --http_credentials=FILE  Mesos\' {"credentials":[{"principal":"…","secret":"…"}]}: HTTP basic',
  '                         auth on the TCP listener (default: none)',
  '  --[no-]authenticate_http_readwrite  POST/PATCH/DELETE on TCP need credentials (default: on with',
  '                         --listen, which then needs --http_credentials; --no-… allows anyone, with a warning)',
  '  --[no-]authenticate_http_readonly   the GETs on TCP need credentials too (default: off); /health never',
  '  --tls_cert=FILE --tls_key=FILE  serve HTTPS on the TCP listener (PEM; default: plain HTTP)',
  `  --warm_pool=N          spares kept ready (0–64, default ${AGENT_WARM_POOL})`,
  'The socket needs no credentials: its mode is its access control. While an agent answers on',
  'the socket, create, update, destroy, list and stats go through it (same output and exit status),',
  'unless they give isolator flags: those act directly.',
];

function usage(command?: string): string {
  if (command && COMMANDS[command]) {
    const c = COMMANDS[command]!;
    return `usage: portmap-isolator ${c.usage} [--netns=NAME|PATH] [--work_dir=DIR] [isolator flags]\n\n${c.help}\n${command === 'agent' ? `\n${AGENT_FLAGS_HELP.join('\n')}\n` : ''}`;
  }
  const lines = Object.entries(COMMANDS).map(([, c]) => `  ${c.usage.padEnd(48)} ${c.help}`);
  return [
    'usage: portmap-isolator COMMAND [ARGS] [--flag=value …]',
    '',
    'Commands:',
    ...lines,
    '',
    'Every command takes:',
    '  --netns=NAME|PATH      act on this network namespace as the host (default: our own)',
    `  --work_dir=DIR         state, lock and pinned namespaces (default ${DEFAULT_WORK_DIR})`,
    '  --log_format=text|json',
    '',
    'Isolator flags (Mesos names; remembered in the work_dir after the first create):',
    `  ${ISOLATOR_FLAG_NAMES.map((n) => `--${n}`).join('\n  ')}`,
    '',
    "RANGES is Mesos' '[31000-31009,31020-31029]'. Byte sizes take B, KB, MB, GB (1024-based).",
    'A boolean flag is --flag, --flag=true|false, or --no-flag for false.',
    '',
    ...AGENT_FLAGS_HELP,
    '',
  ].join('\n');
}

function allowedFlags(command: string | undefined): ReadonlySet<string> {
  return new Set<string>([...COMMON_FLAGS, ...(command && COMMANDS[command] ? COMMANDS[command]!.flags : [])]);
}

/**
 * Isolator flags: those given, else the ones the work_dir remembers. Given flags are remembered
 * (by `remember()`, once they proved valid) so that later commands need not repeat them.
 */
function resolveFlags(args: ParsedArgs, workDir: string): { flags: IsolatorFlags; remember: () => void } {
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
function checkPorts(id: string, ports: string): void {
  try {
    PortSet.parse(ports);
  } catch (e) {
    throw new ConfigError('ports', `invalid ports for container ${id}: ${(e as Error).message}`);
  }
}

function needId(args: ParsedArgs, command: string): string {
  const id = args.positional[0];
  if (!id) throw new ConfigError('id', `'${command}' needs a container ID: portmap-isolator ${COMMANDS[command]!.usage}`);
  if (args.positional.length > 1) throw new ConfigError('id', `unexpected argument '${args.positional[1]}'`);
  return id;
}

/** A container ID argument, checked as the engine would (a bad one is a configuration error). */
function validId(id: string): string {
  try {
    return checkContainerId(id);
  } catch (e) {
    throw new ConfigError('id', (e as Error).message);
  }
}

/** An agent's error answer, as the CLI reports it: the agent's one line and an exit status. */
class AgentError extends Error {
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
function expectStatus(r: AgentReply, ok: number): unknown {
  if (r.status === ok) return r.body;
  const b = (typeof r.body === 'object' && r.body !== null ? r.body : {}) as { error?: unknown; field?: unknown };
  const message =
    typeof b.error === 'string' ? b.error : `the agent answered ${r.status}${typeof r.body === 'string' && r.body ? `: ${r.body.split('\n')[0]}` : ''}`;
  throw new AgentError(message, r.status === 400 && typeof b.field === 'string' ? 2 : 1);
}

function printList(list: ContainerInfo[]): void {
  if (!list.length) {
    console.log('no containers');
    return;
  }
  const rows = list.map((c) => [
    c.id,
    c.veth,
    `${c.ephemeral_ports.begin}-${c.ephemeral_ports.end}`,
    c.ports.map(([b, e]) => (b === e ? `${b}` : `${b}-${e}`)).join(',') || '-',
    c.netns,
  ]);
  const head = ['ID', 'VETH', 'EPHEMERAL', 'PORTS', 'NETNS'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows])
    console.log(
      r
        .map((v, i) => v.padEnd(width[i]!))
        .join('  ')
        .trimEnd(),
    );
}

/** The command line: runs one command and returns its exit status (see main.ts for the executable). */
export async function main(argv: string[]): Promise<number> {
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
  const log = createLogger(logFormat);
  const workDir = stringFlag(args.flags, 'work_dir') ?? DEFAULT_WORK_DIR;
  const netns = stringFlag(args.flags, 'netns');
  if (args.rest.length && command !== 'run') {
    process.stderr.write(`portmap-isolator: '${command}' takes no command after --\n`);
    return 2;
  }
  let iso: Isolator | undefined;
  try {
    if (command === 'demo') return await runDemo({ log, workDir: stringFlag(args.flags, 'work_dir') });
    const { flags, remember } = resolveFlags(args, workDir);
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
    /**
     * A request to the agent serving this work_dir, after the same checks of flags and host the
     * direct path makes (so errors are the same); undefined when no agent answers on its socket.
     * A user who may use the socket but not act as root (--socket_group) gets the flags' checks.
     */
    const viaAgent = async (method: string, path: string, body?: unknown): Promise<AgentReply | undefined> => {
      // The agent acts with its own isolator flags: a command that gives some acts directly.
      if ([...args.flags.keys()].some((k) => (ISOLATOR_FLAG_NAMES as readonly string[]).includes(k))) return undefined;
      if (process.getuid?.() === 0) await open();
      else parseConfig(flags);
      return await callAgent(agentSocketPath(workDir), method, path, body);
    };
    switch (command) {
      case 'doctor': {
        const checks = await doctor({ flags, workDir, ...(netns !== undefined ? { netns } : {}) });
        for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name.padEnd(20)} ${c.detail}`);
        return checks.some((c) => !c.ok && c.required) ? 1 : 0;
      }
      case 'create': {
        const id = validId(needId(args, command));
        const pid = intFlag(args.flags, 'pid');
        if (pid !== undefined) {
          const problem = pidProblem(pid);
          if (problem) throw new ConfigError('pid', problem);
        }
        const cpus = stringFlag(args.flags, 'cpus');
        if (cpus !== undefined && !(Number.isFinite(Number(cpus)) && Number(cpus) >= 0)) throw new ConfigError('cpus', `must be a number, got '${cpus}'`);
        const ports = stringFlag(args.flags, 'ports');
        if (ports !== undefined) checkPorts(id, ports);
        const spec = {
          id,
          ...(ports !== undefined ? { ports } : {}),
          ...(pid !== undefined ? { pid } : {}),
          ...(cpus !== undefined ? { cpus: Number(cpus) } : {}),
        };
        const r = await viaAgent('POST', '/containers', spec);
        console.log(JSON.stringify(r ? expectStatus(r, 201) : await (await open()).create(spec)));
        return 0;
      }
      case 'update': {
        const id = validId(needId(args, command));
        const ports = stringFlag(args.flags, 'ports');
        if (ports === undefined) throw new ConfigError('ports', "'update' needs --ports=RANGES");
        checkPorts(id, ports);
        const r = await viaAgent('PATCH', `/containers/${encodeURIComponent(id)}`, { ports });
        console.log(JSON.stringify(r ? expectStatus(r, 200) : await (await open()).update(id, ports)));
        return 0;
      }
      case 'destroy': {
        const id = validId(needId(args, command));
        const r = await viaAgent('DELETE', `/containers/${encodeURIComponent(id)}`);
        if (r && r.status !== 404) expectStatus(r, 204); // unknown: a no-op, as without the agent
        if (!r) await (await open()).destroy(id);
        return 0;
      }
      case 'list': {
        if (args.positional.length) throw new ConfigError('list', `unexpected argument '${args.positional[0]}'`);
        const r = await viaAgent('GET', '/containers');
        const list = r ? (expectStatus(r, 200) as ContainerInfo[]) : await (await open()).list();
        if (args.flags.get('json') === true) console.log(JSON.stringify(list));
        else printList(list);
        return 0;
      }
      case 'stats': {
        if (args.positional.length > 1) throw new ConfigError('stats', `unexpected argument '${args.positional[1]}'`);
        const id = args.positional[0];
        const r = await viaAgent('GET', '/monitor/statistics');
        if (!r) {
          console.log(JSON.stringify(await (await open()).stats(id)));
          return 0;
        }
        let stats = expectStatus(r, 200) as MesosStatistics[];
        if (id !== undefined) {
          stats = stats.filter((s) => s.container_id === id);
          if (!stats.length) throw new UnknownContainerError(id);
        }
        console.log(JSON.stringify(stats));
        return 0;
      }
      case 'recover': {
        await open();
        console.log(JSON.stringify(await iso!.recover()));
        return 0;
      }
      case 'cleanup': {
        await open();
        const r = await iso!.cleanup();
        console.log(JSON.stringify(r));
        return r.errors.length ? 1 : 0;
      }
      case 'run':
        return await runCommand(args, open, log);
      case 'agent':
        return await runAgent(args, open, log, workDir);
    }
    return 2;
  } catch (e) {
    // By type: the isolator's errors carry their exit status (2 configuration, 1 runtime), the rest are runtime failures.
    process.stderr.write(`portmap-isolator: ${e instanceof Error ? e.message : String(e)}\n`);
    return e instanceof AgentError ? e.exitCode : errorReport(e).exitCode;
  } finally {
    await (iso as Isolator | undefined)?.close();
  }
}

async function runCommand(args: ParsedArgs, open: () => Promise<Isolator>, log: ReturnType<typeof createLogger>): Promise<number> {
  if (!args.rest.length) throw new ConfigError('run', 'needs a command: portmap-isolator run [--id=ID] [--ports=RANGES] -- CMD [ARGS…]');
  // Signals are ours from the start: one during create or destroy must not leave a half-built
  // container; one while CMD runs is forwarded to it.
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let child: ChildProcess | undefined;
  let pending: NodeJS.Signals | undefined;
  const handlers = forwarded.map((sig) => {
    const h = () => {
      if (child && child.exitCode === null) child.kill(sig);
      else pending ??= sig;
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  try {
    const iso = await open();
    const id = stringFlag(args.flags, 'id') ?? `run-${process.pid}`;
    const ports = stringFlag(args.flags, 'ports');
    const info = await iso.create({ id, ...(ports !== undefined ? { ports } : {}) });
    log.info('container created', { id, ephemeral_ports: `${info.ephemeral_ports.begin}-${info.ephemeral_ports.end}` });
    try {
      if (pending) return 128 + (signalNumber(pending) ?? 0);
      const ns = Netns.fromPath(info.netns);
      try {
        child = ns.spawn(args.rest[0]!, args.rest.slice(1), { stdio: 'inherit', env: { ...process.env, PORTMAP_ISOLATOR_CONTAINER: id } });
      } finally {
        ns.close();
      }
      return await new Promise<number>((resolve) => {
        child!.on('error', (e: Error) => {
          log.error(`cannot run ${args.rest[0]}: ${e.message}`);
          resolve(127);
        });
        child!.on('exit', (code: number | null, signal: NodeJS.Signals | null) => resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1)));
      });
    } finally {
      await iso.destroy(id);
      log.info('container destroyed', { id });
    }
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return (osConstants.signals as Record<string, number>)[sig];
}

/** A group name or gid, from /etc/group. */
function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    /* no group database: only gids work */
  }
  for (const line of text.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ConfigError('socket_group', `no such group '${name}'`);
}

interface AgentListeners {
  socketGroup: number | undefined;
  tcp?: { host: string; port: number; listen: string };
  auth?: AgentAuthOptions;
  tls?: { cert: Buffer; key: Buffer };
}

/** The agent's listeners from its flags; every mistake is a ConfigError, found before anything starts. */
function agentListeners(args: ParsedArgs, log: ReturnType<typeof createLogger>): AgentListeners {
  const listen = stringFlag(args.flags, 'listen');
  const group = stringFlag(args.flags, 'socket_group');
  const socketGroup = group !== undefined ? groupId(group) : undefined;
  if (listen === undefined) {
    for (const f of ['http_credentials', 'authenticate_http_readwrite', 'authenticate_http_readonly', 'tls_cert', 'tls_key']) {
      if (args.flags.has(f))
        throw new ConfigError(f, 'applies to the TCP listener only: give --listen=ADDR:PORT too (the socket is guarded by its file mode and --socket_group)');
    }
    return { socketGroup };
  }
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new ConfigError('listen', `expected HOST:PORT, got '${listen}'`);
  const readwrite = args.flags.get('authenticate_http_readwrite') !== false;
  const readonly = args.flags.get('authenticate_http_readonly') === true;
  const file = stringFlag(args.flags, 'http_credentials');
  if (file === undefined && readwrite) {
    throw new ConfigError(
      'authenticate_http_readwrite',
      `is on for --listen=${listen}: give --http_credentials=FILE ({"credentials":[{"principal":"…","secret":"…"}]}), or --no-authenticate_http_readwrite to let anyone who reaches it change containers`,
    );
  }
  if (file === undefined && readonly) throw new ConfigError('authenticate_http_readonly', 'needs --http_credentials=FILE');
  let credentials: HttpCredential[] = [];
  if (file !== undefined) {
    credentials = loadCredentials(file);
    if (statSync(file).mode & 0o004) log.warn(`--http_credentials: ${file} is readable by every user`);
  }
  if (!readwrite) log.warn(`--no-authenticate_http_readwrite: anyone who can reach ${listen} can create, change and destroy containers`);
  const certFile = stringFlag(args.flags, 'tls_cert');
  const keyFile = stringFlag(args.flags, 'tls_key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(certFile === undefined ? 'tls_cert' : 'tls_key', 'needs --tls_cert and --tls_key together');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (certFile !== undefined && keyFile !== undefined) {
    const read = (flag: string, f: string) => {
      try {
        return readFileSync(f);
      } catch (e) {
        throw new ConfigError(flag, `cannot read ${f}: ${(e as Error).message}`);
      }
    };
    tls = { cert: read('tls_cert', certFile), key: read('tls_key', keyFile) };
    try {
      createSecureContext(tls);
    } catch (e) {
      throw new ConfigError('tls_cert', `cannot use ${certFile} with ${keyFile}: ${(e as Error).message}`);
    }
  }
  const auth: AgentAuthOptions = { readwrite, readonly, credentials };
  return { socketGroup, tcp: { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), listen }, auth, ...(tls ? { tls } : {}) };
}

async function runAgent(args: ParsedArgs, open: () => Promise<Isolator>, log: ReturnType<typeof createLogger>, workDir: string): Promise<number> {
  const l = agentListeners(args, log);
  const socket = agentSocketPath(workDir);
  // Before recovering anything: one agent per work_dir.
  if (await socketAnswers(socket)) throw new IsolatorError(`another agent is serving on ${socket}`);
  const iso = await open();
  const report = await iso.recover();
  log.info('recovered', { containers: report.recovered.length, cleaned: report.cleaned.length, orphans: report.orphans, errors: report.errors.length });
  for (const e of report.errors) log.warn(`recovery: ${e}`);
  const agent = new Agent(iso, {
    socket,
    ...(l.socketGroup !== undefined ? { socketGroup: l.socketGroup } : {}),
    ...(l.tcp ? { host: l.tcp.host, port: l.tcp.port, ...(l.auth ? { auth: l.auth } : {}), ...(l.tls ? { tls: l.tls } : {}) } : {}),
    log,
  });
  let addr;
  try {
    addr = await agent.start();
  } catch (e) {
    if (e instanceof PortmapError) throw e;
    throw new IsolatorError(`cannot listen on ${l.tcp?.listen ?? socket}: ${(e as Error).message}`);
  }
  const tcp = addr.tcp ? `${addr.tcp.family === 'IPv6' ? `[${addr.tcp.address}]` : addr.tcp.address}:${addr.tcp.port}` : undefined;
  log.info('agent listening', { socket, ...(tcp ? { address: tcp, tls: l.tls !== undefined } : {}) });
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info('stopping', { signal: sig });
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await agent.stop();
  return 0;
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
