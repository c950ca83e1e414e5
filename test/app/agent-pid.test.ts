/**
 * A pid the isolator cannot use is the client's mistake, never the agent's failure (issue #17
 * item 5): no such process, a zombie, a process that exits while it is being isolated, one in a
 * namespace that is not a container's, one whose namespace cannot be entered. The agent answers
 * 400 naming `pid`; the CLI exits 2 naming --pid, with or without an agent. The built CLI is
 * spawned as a user would, in a lab (`--netns=<lab host>`).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Target, request } from '../helpers/http.js';
import { IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const DIST = join(import.meta.dirname, '..', '..', 'dist');
const CLI = join(DIST, 'app', 'main.js');
const RESOURCES = '--resources=ports:[31000-32000];ephemeral_ports:[30001-30999]';
let lab: IsolatorLab;
let common: string[];
let agent: ChildProcess | undefined;
let log = '';
let t: Target;
const children: ChildProcess[] = [];

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, ...common], { encoding: 'utf8', timeout: 60_000 });

/** A pid no process has: a child of ours that exited and was reaped. */
function deadPid(): number {
  const pid = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  return pid;
}

/** A zombie: a child whose parent (sh, exec'd into sleep) never reaps it. */
async function zombiePid(): Promise<number> {
  // A parent that never waits: python3 forks a child that exits at once (sh is no good here:
  // dash may reap its background job before it execs the waiting process).
  const script = 'import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(60)';
  const parent = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(parent);
  const pid = await new Promise<number>((r) => parent.stdout!.once('data', (d) => r(Number(String(d).trim()))));
  const state = () => (existsSync(`/proc/${pid}/stat`) ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0] : undefined);
  expect(await until(() => state() === 'Z', 5000)).toBe(true);
  return pid;
}

/** A process in a network namespace of its own, until it is killed. */
async function isolatedProcess(): Promise<ChildProcess> {
  const p = spawn('unshare', ['-n', 'sleep', '60'], { stdio: 'ignore' });
  children.push(p);
  const own = () => {
    try {
      return readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim() === 'sleep';
    } catch {
      return false;
    }
  };
  expect(await until(own, 5000)).toBe(true); // unshare has exec'd: its namespace is its own
  return p;
}

const create = (id: string, pid: number) => request(t, 'POST', '/containers', { body: JSON.stringify({ id, pid }) });

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  common = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`];
  expect(cli('create', 'first', RESOURCES, '--ephemeral_ports_per_container=16').status).toBe(0);
  expect(cli('destroy', 'first').status).toBe(0);
  agent = spawn(process.execPath, [CLI, 'agent', '--log_format=json', '--warm_pool=0', ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
  agent.stderr!.on('data', (d) => (log += d));
  expect(await until(() => log.includes('"agent listening"') || agent!.exitCode !== null, 20_000)).toBe(true);
  t = { socketPath: join(lab.workDir, 'agent.sock') };
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (agent && agent.exitCode === null) {
    agent.kill('SIGTERM');
    await new Promise((r) => agent!.once('exit', r));
  }
  if (common) cli('cleanup');
  await lab?.destroy();
});

describe('POST /containers with a pid it cannot use: 400 naming pid', () => {
  it('no such process, a zombie, init, the agent itself', async () => {
    const dead = deadPid();
    const zombie = await zombiePid();
    const cases: Array<[number, RegExp]> = [
      [dead, new RegExp(`no process ${dead}$`)],
      [zombie, new RegExp(`pid ${zombie} has exited \\(its namespaces are gone\\)$`)],
      // (init's namespace is the agent's own here; where /proc/1 is out of reach, opening it fails.)
      [1, /is in the init process's network namespace|is in this process's own network namespace|cannot be opened/],
      [agent!.pid!, /is in this process's own network namespace/],
    ];
    for (const [pid, message] of cases) {
      const r = await create('p1', pid);
      expect([pid, r.status, r.body.field]).toEqual([pid, 400, 'pid']);
      expect(r.body.error).toMatch(message);
    }
    expect((await request(t, 'GET', '/containers')).body).toEqual([]);
    expect(log).not.toContain('"level":"error"');
  });

  it('a process that exits while it is being isolated: created (its namespace was held) or refused, never a 5xx', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < 20; i++) {
      // unshare exits 0–35 ms after it starts: before the agent looks, while it builds, or after.
      const c = spawn('unshare', ['-n', 'sleep', String((i % 8) * 0.005)], { stdio: 'ignore' });
      children.push(c);
      const r = await create(`race${i}`, c.pid!);
      statuses.add(r.status);
      if (r.status === 201) expect(await request(t, 'DELETE', `/containers/race${i}`)).toMatchObject({ status: 204 });
      else expect([r.status, r.body.field]).toEqual([400, 'pid']);
    }
    expect([...statuses].every((s) => s === 201 || s === 400)).toBe(true);
    // Isolating a live process's namespace still works.
    const live = await isolatedProcess();
    const r = await create('live', live.pid!);
    expect(r.status).toBe(201);
    live.kill('SIGKILL'); // its namespace lives on, pinned, until the container is destroyed
    expect((await request(t, 'GET', '/containers/live')).status).toBe(200);
    expect((await request(t, 'DELETE', '/containers/live')).status).toBe(204);
    expect(log).not.toContain('"level":"error"');
  });
});

describe('create --pid: exit 2 naming --pid, with or without the agent', () => {
  it('a dead pid and a zombie', async () => {
    const dead = deadPid();
    const zombie = await zombiePid();
    for (const [pid, message] of [
      [dead, `--pid: no process ${dead}`],
      [zombie, `--pid: pid ${zombie} has exited (its namespaces are gone)`],
    ] as const) {
      const viaAgent = cli('create', 'c1', `--pid=${pid}`);
      expect([viaAgent.status, viaAgent.stderr]).toEqual([2, `portmap-isolator: ${message}\n`]);
    }
    // And straight to the engine (another work_dir's view, no agent answering there).
    agent!.kill('SIGTERM');
    await new Promise((r) => agent!.once('exit', r));
    const direct = cli('create', 'c1', `--pid=${zombie}`);
    expect([direct.status, direct.stderr]).toEqual([2, `portmap-isolator: --pid: pid ${zombie} has exited (its namespaces are gone)\n`]);
  });
});

describe('a namespace that cannot be entered', () => {
  it("is refused as the pid's fault (400, exit 2), not a failure: setns without CAP_SYS_ADMIN", async () => {
    const p = await isolatedProcess();
    // The check itself, in a process that may open the namespace but not enter it.
    const code = `import(${JSON.stringify(join(DIST, 'isolator', 'target-netns.js'))}).then(async (m) => {
      const { errorReport } = await import(${JSON.stringify(join(DIST, 'isolator', 'errors.js'))});
      try { m.openTargetNamespace({ pid: ${p.pid} }, []).close(); console.log('opened'); }
      catch (e) { console.log(JSON.stringify({ message: e.message, ...errorReport(e) })); }
    })`;
    const r = spawnSync('setpriv', ['--bounding-set=-sys_admin', '--inh-caps=-sys_admin', process.execPath, '-e', code], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout)).toEqual({
      message: `--pid: pid ${p.pid}'s network namespace cannot be entered (operation not permitted)`,
      kind: 'refused_namespace',
      httpStatus: 400,
      exitCode: 2,
      field: 'pid',
    });
  });
});
