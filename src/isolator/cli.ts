#!/usr/bin/env node
/**
 * `portmap-isolator` — the command line (DESIGN.md §4). Exit status: 0 success, 1 runtime failure
 * (one line, nothing half-built left), 2 configuration error (one line naming the flag).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { Netns } from '../netlink/index.js';
import { Agent } from './agent.js';
import type { ParsedArgs } from './cli/args.js';
import { COMMON_FLAGS, intFlag, isolatorFlags, parseArgs, stringFlag } from './cli/args.js';
import type { IsolatorFlags } from './config.js';
import { ISOLATOR_FLAG_NAMES } from './config.js';
import { runDemo } from './demo.js';
import { doctor } from './doctor.js';
import type { ContainerInfo } from './engine.js';
import { Isolator } from './engine.js';
import { ConfigError, IsolatorError } from './errors.js';
import type { LogFormat } from './log.js';
import { createLogger } from './log.js';
import { DEFAULT_WORK_DIR } from './state.js';

/** Spares the agent keeps ready unless --warm_pool says otherwise (see IsolatorOptions.warmPool). */
export const AGENT_WARM_POOL = 4;

const COMMANDS: Record<string, { flags: string[]; usage: string; help: string }> = {
  doctor: { flags: [], usage: 'doctor', help: 'check root, namespaces, kernel features (u32, mirred, htb, ingress, fq_codel) and the host configuration' },
  create: { flags: ['ports', 'pid', 'cpus'], usage: 'create ID [--ports=RANGES] [--pid=PID]', help: 'isolate a container (creating and pinning its namespace unless --pid is given); prints JSON' },
  update: { flags: ['ports'], usage: 'update ID --ports=RANGES', help: "change a running container's non-ephemeral ports (adds before it removes)" },
  destroy: { flags: [], usage: 'destroy ID', help: 'remove everything of a container (no-op for an unknown ID)' },
  list: { flags: ['json'], usage: 'list [--json]', help: 'the containers and their ports' },
  stats: { flags: [], usage: 'stats [ID]', help: 'Mesos /monitor/statistics JSON' },
  run: { flags: ['id', 'ports', 'cpus'], usage: 'run [--id=ID] [--ports=RANGES] -- CMD [ARGS…]', help: 'create, run CMD inside with stdio inherited, destroy afterwards; exits with CMD’s status' },
  agent: { flags: ['listen', 'warm_pool'], usage: 'agent [--listen=127.0.0.1:5051] [--warm_pool=N]', help: `recover, then serve HTTP (statistics, containers, metrics) until SIGTERM; --warm_pool keeps N spares ready (0–64, default ${AGENT_WARM_POOL}): a create takes one and only adds its ports' filters` },
  recover: { flags: [], usage: 'recover', help: 'rebuild state from the work_dir and the kernel, clean up orphans, report' },
  cleanup: { flags: [], usage: 'cleanup', help: 'destroy every container and undo every host-side change' },
  demo: { flags: [], usage: 'demo', help: 'a self-contained lab showing isolation, rate limiting and statistics; exits 0 only if every check passed' },
};

function usage(command?: string): string {
  if (command && COMMANDS[command]) {
    const c = COMMANDS[command]!;
    return `usage: portmap-isolator ${c.usage} [--netns=NAME|PATH] [--work_dir=DIR] [isolator flags]\n\n${c.help}\n`;
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

function needId(args: ParsedArgs, command: string): string {
  const id = args.positional[0];
  if (!id) throw new ConfigError('id', `'${command}' needs a container ID: portmap-isolator ${COMMANDS[command]!.usage}`);
  if (args.positional.length > 1) throw new ConfigError('id', `unexpected argument '${args.positional[1]}'`);
  return id;
}

function printList(list: ContainerInfo[]): void {
  if (!list.length) {
    console.log('no containers');
    return;
  }
  const rows = list.map((c) => [c.id, c.veth, `${c.ephemeral_ports.begin}-${c.ephemeral_ports.end}`, c.ports.map(([b, e]) => (b === e ? `${b}` : `${b}-${e}`)).join(',') || '-', c.netns]);
  const head = ['ID', 'VETH', 'EPHEMERAL', 'PORTS', 'NETNS'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log(r.map((v, i) => v.padEnd(width[i]!)).join('  ').trimEnd());
}

export async function main(argv: string[]): Promise<number> {
  // Installed in a CNI_PATH under the plugin's type name, the same binary is the CNI plugin.
  if (process.env.CNI_COMMAND) {
    const { cniMain } = await import('../cni/plugin.js');
    return await cniMain(); // exits with the plugin's status
  }
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
      // The agent lives long enough for spares to pay off; one-shot commands never keep any.
      const warmPool = command === 'agent' ? (intFlag(args.flags, 'warm_pool', 0, 64) ?? AGENT_WARM_POOL) : undefined;
      iso = await Isolator.open({ flags, workDir, ...(netns !== undefined ? { netns } : {}), ...(warmPool !== undefined ? { warmPool } : {}), onWarning: (m) => log.warn(m) });
      if (command === 'create' || command === 'agent' || command === 'run') remember();
      return iso;
    };
    switch (command) {
      case 'doctor': {
        const checks = await doctor({ flags, workDir, ...(netns !== undefined ? { netns } : {}) });
        for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name.padEnd(20)} ${c.detail}`);
        return checks.some((c) => !c.ok && c.required) ? 1 : 0;
      }
      case 'create': {
        const id = needId(args, command);
        const pid = intFlag(args.flags, 'pid');
        const cpus = stringFlag(args.flags, 'cpus');
        if (cpus !== undefined && !(Number(cpus) >= 0)) throw new ConfigError('cpus', `must be a number, got '${cpus}'`);
        await open();
        const info = await iso!.create({ id, ...(stringFlag(args.flags, 'ports') !== undefined ? { ports: stringFlag(args.flags, 'ports')! } : {}), ...(pid ? { pid } : {}), ...(cpus !== undefined ? { cpus: Number(cpus) } : {}) });
        console.log(JSON.stringify(info));
        return 0;
      }
      case 'update': {
        const id = needId(args, command);
        const ports = stringFlag(args.flags, 'ports');
        if (ports === undefined) throw new ConfigError('ports', "'update' needs --ports=RANGES");
        await open();
        console.log(JSON.stringify(await iso!.update(id, ports)));
        return 0;
      }
      case 'destroy': {
        const id = needId(args, command);
        await open();
        await iso!.destroy(id);
        return 0;
      }
      case 'list': {
        if (args.positional.length) throw new ConfigError('list', `unexpected argument '${args.positional[0]}'`);
        await open();
        const list = await iso!.list();
        if (args.flags.get('json') === true) console.log(JSON.stringify(list));
        else printList(list);
        return 0;
      }
      case 'stats': {
        if (args.positional.length > 1) throw new ConfigError('stats', `unexpected argument '${args.positional[1]}'`);
        await open();
        console.log(JSON.stringify(await iso!.stats(args.positional[0])));
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
        return await runAgent(args, open, log);
    }
    return 2;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`portmap-isolator: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`portmap-isolator: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  } finally {
    await (iso as Isolator | undefined)?.close();
  }
}

async function runCommand(args: ParsedArgs, open: () => Promise<Isolator>, log: ReturnType<typeof createLogger>): Promise<number> {
  if (!args.rest.length) throw new ConfigError('run', "needs a command: portmap-isolator run [--id=ID] [--ports=RANGES] -- CMD [ARGS…]");
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

async function runAgent(args: ParsedArgs, open: () => Promise<Isolator>, log: ReturnType<typeof createLogger>): Promise<number> {
  const listen = stringFlag(args.flags, 'listen') ?? '127.0.0.1:5051';
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new ConfigError('listen', `expected HOST:PORT, got '${listen}'`);
  const iso = await open();
  const report = await iso.recover();
  log.info('recovered', { containers: report.recovered.length, cleaned: report.cleaned.length, orphans: report.orphans, errors: report.errors.length });
  for (const e of report.errors) log.warn(`recovery: ${e}`);
  const agent = new Agent(iso, { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), log });
  let addr;
  try {
    addr = await agent.start();
  } catch (e) {
    throw new IsolatorError(`cannot listen on ${listen}: ${(e as Error).message}`);
  }
  log.info('agent listening', { address: `${addr.address}:${addr.port}` });
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

// Run when executed (not when imported by tests).
const invokedAs = process.argv[1] ?? '';
if (/(^|[/\\])(cli\.(js|ts)|portmap-isolator)$/.test(invokedAs)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`portmap-isolator: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
