/** The CLI's commands that act on containers, one function each (run and agent have modules of their own). */
import { existsSync } from 'node:fs';
import { doctor } from '../doctor.js';
import { ConfigError, UnknownContainerError } from '../../isolator/errors.js';
import type { ContainerInfo } from '../../isolator/engine.js';
import type { MesosStatistics } from '../../isolator/statistics.js';
import { pidProblem } from '../http-request.js';
import { ISOLATOR_FLAGS, ISOLATOR_FLAG_NAMES, parseConfig } from '../../isolator/config.js';
import { containersInWorkDir, hostConfigPath } from '../../isolator/host-config.js';
import { agentSocketPath, socketAnswers } from '../agent.js';
import { cpusFlag, intFlag, stringFlag } from './args.js';
import type { CommandContext } from './context.js';
import { checkPorts, expectStatus, needId, validId } from './context.js';
import { runAgent } from './agent-command.js';
import { runCommand } from './run-command.js';

export async function doctorCommand({ args, flags, workDir, netns, log }: CommandContext): Promise<number> {
  const checks = await doctor({ flags, workDir, ...(netns !== undefined ? { netns } : {}), onWarning: (m) => log.warn(m) });
  if (args.flags.get('json') === true) console.log(JSON.stringify(checks));
  else for (const c of checks) console.log(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name.padEnd(20)} ${c.detail}`);
  return checks.some((c) => !c.ok && c.required) ? 1 : 0;
}

export async function createCommand({ command, args, open, viaAgent }: CommandContext): Promise<number> {
  const id = validId(needId(args, command));
  const pid = intFlag(args.flags, 'pid');
  if (pid !== undefined) {
    const problem = pidProblem(pid);
    if (problem) throw new ConfigError('pid', problem);
  }
  const cpus = cpusFlag(args);
  const ports = stringFlag(args.flags, 'ports');
  if (ports !== undefined) checkPorts(id, ports);
  const spec = {
    id,
    ...(ports !== undefined ? { ports } : {}),
    ...(pid !== undefined ? { pid } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
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
  const r = await viaAgent('GET', '/containers');
  const list = r ? (expectStatus(r, 200) as ContainerInfo[]) : await (await open()).list();
  if (args.flags.get('json') === true) console.log(JSON.stringify(list));
  else printList(list);
  return 0;
}

export async function statsCommand({ args, open, viaAgent }: CommandContext): Promise<number> {
  const id = args.positional[0] !== undefined ? validId(args.positional[0]) : undefined;
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

/**
 * Everything goes; Isolator.cleanup forgets the stored host configuration last, under the lock and
 * only when nothing is left (a failed cleanup is retried with it; a container created meanwhile keeps it).
 */
export async function cleanupCommand({ open, workDir, log }: CommandContext): Promise<number> {
  const iso = await open();
  const r = await iso.cleanup();
  if (!existsSync(hostConfigPath(workDir))) log.debug('host configuration forgotten', { path: hostConfigPath(workDir) });
  console.log(JSON.stringify(r));
  return r.errors.length ? 1 : 0;
}

/** `config`: where the host configuration is stored, what is, and every isolator flag in effect. */
export async function configCommand({ args, flags, host, workDir }: CommandContext): Promise<number> {
  parseConfig(flags); // bad values given here are reported as by any command
  const { containers, spares } = containersInWorkDir(workDir);
  const agent = await socketAnswers(agentSocketPath(workDir));
  const stored = host.replaces ? undefined : host.stored;
  const rows = ISOLATOR_FLAG_NAMES.map((name) => {
    const info = ISOLATOR_FLAGS[name];
    const source = flags[name] === undefined ? 'default' : stored?.flags[name] !== undefined ? 'stored' : 'given';
    return { name, value: flags[name] ?? info.default ?? null, default: info.default ?? null, none: info.none ?? null, source };
  });
  if (args.flags.get('json') === true) {
    const path = hostConfigPath(workDir);
    const byName = Object.fromEntries(rows.map(({ name, ...r }) => [name, r]));
    const inUse = { containers, spares, agent };
    console.log(
      JSON.stringify({ path, stored: host.stored?.flags ?? null, stored_at: host.stored?.storedAt.toISOString() ?? null, in_use: inUse, flags: byName }),
    );
    return 0;
  }
  printConfig(host, workDir, { containers, spares, agent });
  printTable(
    ['FLAG', 'VALUE', 'SOURCE', 'DEFAULT'],
    rows.map((r) => [
      r.name,
      r.value === null ? `(${r.none ?? 'none'})` : String(r.value),
      r.source,
      r.default === null ? `(${r.none ?? 'none'})` : String(r.default),
    ]),
  );
  return 0;
}

function printConfig(host: CommandContext['host'], workDir: string, inUse: { containers: number; spares: number; agent: boolean }): void {
  const s = host.stored;
  console.log(`stored in: ${hostConfigPath(workDir)}`);
  console.log(
    s
      ? `stored:    ${s.storedAt.toISOString()} ${JSON.stringify(s.flags)}`
      : 'stored:    nothing (defaults, until a create, run or agent stores the flags it is given)',
  );
  const users = [`${inUse.containers} container(s)`, `${inUse.spares} spare(s)`, ...(inUse.agent ? ['a running agent'] : [])].join(', ');
  console.log(
    inUse.containers + inUse.spares > 0 || inUse.agent
      ? `in use by: ${users}: flags given must match; \`portmap-isolator cleanup\` forgets them`
      : 'in use by: nothing: the flags the next create, run or agent is given replace it',
  );
  if (host.replaces && s) console.log('(the flags given here differ: a create, run or agent given them would replace the stored ones)');
  console.log('');
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
  config: configCommand,
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
  printTable(['ID', 'VETH', 'EPHEMERAL', 'PORTS', 'NETNS'], rows);
}

/** Columns padded to their widest cell. */
function printTable(head: string[], rows: string[][]): void {
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows])
    console.log(
      r
        .map((v, i) => v.padEnd(width[i]!))
        .join('  ')
        .trimEnd(),
    );
}
