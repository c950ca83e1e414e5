/** `portmap-isolator run`: create a container, run a command inside it, destroy it afterwards. */
import type { ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { Netns } from '../../netlink/index.js';
import { ArgumentError, cpusFlag, stringFlag } from './args.js';
import type { CommandContext } from './context.js';
import { checkPorts, validId } from './context.js';
import { COMMANDS } from './usage.js';

export async function runCommand({ args, open, log }: CommandContext): Promise<number> {
  if (!args.rest.length) throw new ArgumentError('CMD', `'run' needs a command: portmap-isolator ${COMMANDS.run!.usage}`);
  const id = validId(stringFlag(args.flags, 'id') ?? `run-${process.pid}`, 'id');
  const ports = stringFlag(args.flags, 'ports');
  if (ports !== undefined) checkPorts(id, ports);
  const cpus = cpusFlag(args);
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
    const info = await iso.create({ id, ...(ports !== undefined ? { ports } : {}), ...(cpus !== undefined ? { cpus } : {}) });
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
