/** The CLI's commands that act on containers, one function each (run and agent have modules of their own). */
import { doctor } from '../doctor.js';
import { ConfigError, UnknownContainerError } from '../../isolator/errors.js';
import type { ContainerInfo } from '../../isolator/engine.js';
import type { MesosStatistics } from '../../isolator/statistics.js';
import { pidProblem } from '../http-request.js';
import { intFlag, stringFlag } from './args.js';
import type { CommandContext } from './context.js';
import { checkPorts, expectStatus, needId, validId } from './context.js';
import { runAgent } from './agent-command.js';
import { runCommand } from './run-command.js';

export async function doctorCommand({ flags, workDir, netns }: CommandContext): Promise<number> {
  const checks = await doctor({ flags, workDir, ...(netns !== undefined ? { netns } : {}) });
  for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name.padEnd(20)} ${c.detail}`);
  return checks.some((c) => !c.ok && c.required) ? 1 : 0;
}

export async function createCommand({ command, args, open, viaAgent }: CommandContext): Promise<number> {
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

export async function updateCommand({ command, args, open, viaAgent }: CommandContext): Promise<number> {
  const id = validId(needId(args, command));
  const ports = stringFlag(args.flags, 'ports');
  if (ports === undefined) throw new ConfigError('ports', "'update' needs --ports=RANGES");
  checkPorts(id, ports);
  const r = await viaAgent('PATCH', `/containers/${encodeURIComponent(id)}`, { ports });
  console.log(JSON.stringify(r ? expectStatus(r, 200) : await (await open()).update(id, ports)));
  return 0;
}

export async function destroyCommand({ command, args, open, viaAgent }: CommandContext): Promise<number> {
  const id = validId(needId(args, command));
  const r = await viaAgent('DELETE', `/containers/${encodeURIComponent(id)}`);
  if (r && r.status !== 404) expectStatus(r, 204); // unknown: a no-op, as without the agent
  if (!r) await (await open()).destroy(id);
  return 0;
}

export async function listCommand({ args, open, viaAgent }: CommandContext): Promise<number> {
  if (args.positional.length) throw new ConfigError('list', `unexpected argument '${args.positional[0]}'`);
  const r = await viaAgent('GET', '/containers');
  const list = r ? (expectStatus(r, 200) as ContainerInfo[]) : await (await open()).list();
  if (args.flags.get('json') === true) console.log(JSON.stringify(list));
  else printList(list);
  return 0;
}

export async function statsCommand({ args, open, viaAgent }: CommandContext): Promise<number> {
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

export async function recoverCommand({ open }: CommandContext): Promise<number> {
  const iso = await open();
  console.log(JSON.stringify(await iso.recover()));
  return 0;
}

export async function cleanupCommand({ open }: CommandContext): Promise<number> {
  const iso = await open();
  const r = await iso.cleanup();
  console.log(JSON.stringify(r));
  return r.errors.length ? 1 : 0;
}

/** Each command but demo (which needs no isolator flags) and help, by name. */
export const COMMAND_HANDLERS: Record<string, (ctx: CommandContext) => Promise<number>> = {
  doctor: doctorCommand,
  create: createCommand,
  update: updateCommand,
  destroy: destroyCommand,
  list: listCommand,
  stats: statsCommand,
  recover: recoverCommand,
  cleanup: cleanupCommand,
  run: runCommand,
  agent: runAgent,
};

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
