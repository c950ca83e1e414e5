/** The built CLI, spawned as a user would: output shapes, exit codes, run, concurrency, the agent over HTTP. */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { request } from '../helpers/http.js';
import { HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
let lab: IsolatorLab;
let common: string[];
const RESOURCES = '--resources=ports:[31000-32000];ephemeral_ports:[30001-30999]';
const started: ChildProcess[] = [];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const json = (...args: string[]) => {
  const r = cli(...args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
};

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  common = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`];
});
afterAll(async () => {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
  stopAllTraffic();
  cli('cleanup', ...common);
  await lab?.destroy();
});

/** The exit code (or signal) of a child, also when it has already exited (no 'exit' event comes then). */
function exited(p: ChildProcess): Promise<number | string | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode ?? p.signalCode);
  return new Promise((r) => p.once('exit', (code, signal) => r(code ?? signal)));
}

describe('usage and bad input', () => {
  it('prints help for the program and each command', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: portmap-isolator COMMAND/);
    for (const c of ['doctor', 'create', 'update', 'destroy', 'list', 'stats', 'run', 'agent', 'recover', 'cleanup', 'config', 'demo', 'help'])
      expect(r.stdout).toContain(`  ${c}`);
    expect(cli('create', '--help').stdout).toMatch(/^usage: portmap-isolator create ID/);
    // -h is --help, anywhere before `--`; --version prints the package's version.
    expect(cli('-h')).toMatchObject({ status: 0, stdout: r.stdout });
    expect(cli('create', '-h').stdout).toMatch(/^usage: portmap-isolator create ID/);
    const version = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')).version;
    expect(cli('--version')).toMatchObject({ status: 0, stdout: `portmap-isolator ${version}\n`, stderr: '' });
  });

  it.each([
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['list', '--bogus=1'], /^portmap-isolator: --bogus: unknown flag for 'list'$/],
    [['create', 'c1', '--ports'], /^portmap-isolator: --ports: needs a value: --ports=VALUE$/],
    [['list', '--json=maybe'], /^portmap-isolator: --json: takes true or false, got 'maybe'$/],
    [['list', '--log_format=xml'], /^portmap-isolator: --log_format: must be text or json, got 'xml'$/],
    [['create'], /^portmap-isolator: ID: 'create' needs a container ID/],
    [
      ['create', 'c1', '--ephemeral_ports_per_container=24'],
      /^portmap-isolator: --ephemeral_ports_per_container: The number of ephemeral ports for each container \(24\) is not a power of 2$/,
    ],
    [['create', 'c1', '--egress_rate_limit_per_container=1000'], /^portmap-isolator: --egress_rate_limit_per_container: invalid bytes '1000'/],
    [['create', 'c1', '--resources=ephemeral_ports:[500-2000]'], /^portmap-isolator: --resources: .*well known ports/],
    [['list', '--netns=pmi-no-such-ns'], /^portmap-isolator: --netns: cannot open network namespace/],
    [['agent', '--listen=nowhere'], /^portmap-isolator: --listen: expected HOST:PORT/],
    [['agent', '--warm_pool=65'], /^portmap-isolator: --warm_pool: must be an integer in 0\.\.64, got '65'$/],
    [['create', 'c1', '--warm_pool=2'], /^portmap-isolator: --warm_pool: unknown flag for 'create'$/],
    [['create', 'c1', '--pid=abc'], /^portmap-isolator: --pid: must be an integer/],
    [['-v', 'list'], /^portmap-isolator: -v: unknown flag \(flags are spelled --name or --name=VALUE; -h is --help\)$/],
    [['list', '-x'], /^portmap-isolator: -x: unknown flag/],
  ])('%j → exit 2 with one line naming the flag', (args, message) => {
    const r = cli(...args, ...(args[0] === 'list' && String(args[1]).startsWith('--netns') ? [`--work_dir=${lab.workDir}`] : common));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stdout).toBe('');
  });
});

describe('commands', () => {
  it('create, list, stats, update, destroy: output shapes of DESIGN.md §4', () => {
    const created = json('create', 'web', '--ports=[31000-31009]', RESOURCES, '--ephemeral_ports_per_container=16', ...common);
    expect(Object.keys(created)).toEqual(['id', 'netns', 'veth', 'ephemeral_ports', 'ports']);
    expect(created).toMatchObject({ id: 'web', ephemeral_ports: { begin: 30016, end: 30031 }, ports: [[31000, 31009]] });
    expect(created.netns).toBe(join(lab.workDir, 'netns', 'web'));
    expect(json('list', '--json', ...common)).toEqual([created]);
    expect(cli('list', ...common).stdout).toMatch(/^ID\s+VETH\s+EPHEMERAL\s+PORTS\s+NETNS\nweb\s+pmi\d+\s+30016-30031\s+31000-31009\s/);
    const stats = json('stats', 'web', ...common);
    expect(stats).toHaveLength(1);
    expect(stats[0]).toMatchObject({ executor_id: 'web', container_id: 'web', statistics: { net_ephemeral_ports: { begin: 30016, end: 30031 } } });
    expect(json('update', 'web', '--ports=[31000-31019]', ...common).ports).toEqual([[31000, 31019]]);
    const clash = cli('create', 'other', '--ports=[31010-31010]', ...common);
    expect(clash.status).toBe(1);
    expect(clash.stderr.trim()).toBe('portmap-isolator: ports [31010-31010] are already held by another container');
    expect(cli('destroy', 'web', ...common).status).toBe(0);
    expect(cli('destroy', 'web', ...common).status).toBe(0); // unknown: a no-op
    expect(json('list', '--json', ...common)).toEqual([]);
    expect(cli('stats', 'web', ...common)).toMatchObject({ status: 1, stderr: 'portmap-isolator: Unknown container web\n' });
    expect(json('recover', ...common)).toMatchObject({ recovered: [], errors: [] });
  });

  it('run: CMD runs inside the container with its ephemeral block, its status becomes ours, the container goes away', () => {
    const r = cli('run', '--id=job', ...common, '--', 'sh', '-c', 'cat /proc/sys/net/ipv4/ip_local_port_range; ip -br addr show dev eth0; exit 3');
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/^\d+\s+\d+\n/);
    expect(r.stdout).toContain(HOST_IP);
    expect(json('list', '--json', ...common)).toEqual([]);
    expect(cli('run', ...common, '--', 'no-such-command-xyz').status).toBe(127);
  });

  it('run forwards SIGTERM to the command and still destroys the container', async () => {
    const p = spawn(process.execPath, [CLI, 'run', '--id=sleeper', ...common, '--', 'sleep', '30'], { stdio: 'ignore' });
    started.push(p);
    expect(await until(() => json('list', '--json', ...common).some((c: { id: string }) => c.id === 'sleeper'), 10_000)).toBe(true);
    await new Promise((r) => setTimeout(r, 200));
    p.kill('SIGTERM');
    const code = await new Promise((r) => p.on('exit', (c) => r(c)));
    expect(code).toBe(143);
    expect(json('list', '--json', ...common)).toEqual([]);
  });

  it('20 concurrent creates get 20 disjoint ephemeral blocks and no error', async () => {
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const p = spawn(process.execPath, [CLI, 'create', `par${i}`, ...common], { stdio: ['ignore', 'pipe', 'pipe'] });
            let out = '';
            let err = '';
            p.stdout.on('data', (d) => (out += d));
            p.stderr.on('data', (d) => (err += d));
            p.on('exit', (code) => resolve({ code, out, err }));
          }),
      ),
    );
    expect(results.map((r) => r.err).filter(Boolean)).toEqual([]);
    expect(results.every((r) => r.code === 0)).toBe(true);
    const blocks = results.map((r) => JSON.parse(r.out).ephemeral_ports.begin as number);
    expect(new Set(blocks).size).toBe(20);
    for (let i = 0; i < 20; i++) expect(cli('destroy', `par${i}`, ...common).status).toBe(0);
  });
});

describe('agent', () => {
  let agent: ChildProcess;
  // The agent serves on <work_dir>/agent.sock by default (DESIGN.md §5).
  let socketPath: string;
  const startAgent = async () => {
    const p = spawn(process.execPath, [CLI, 'agent', '--log_format=json', ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
    started.push(p);
    let log = '';
    p.stderr!.on('data', (d) => (log += d));
    expect(await until(() => log.includes('agent listening'), 15_000)).toBe(true);
    const line = log.split('\n').find((l) => l.includes('agent listening'))!;
    return { p, socket: JSON.parse(line).socket as string, log: () => log };
  };
  const http = async (method: string, path: string, body?: string) => {
    const r = await request({ socketPath }, method, path, body !== undefined ? { body } : {});
    return { status: r.status, body: r.body };
  };

  beforeAll(async () => {
    const a = await startAgent();
    agent = a.p;
    socketPath = a.socket;
  });

  it('answers /health and serves container CRUD', async () => {
    expect(await http('GET', '/health')).toEqual({ status: 200, body: { status: 'ok' } });
    const created = await http('POST', '/containers', JSON.stringify({ id: 'api1', ports: '[31100-31109]' }));
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 'api1', ports: [[31100, 31109]] });
    expect((await http('GET', '/containers/api1')).body).toEqual(created.body);
    expect((await http('PATCH', '/containers/api1', JSON.stringify({ ports: '[31100-31119]' }))).body.ports).toEqual([[31100, 31119]]);
    expect((await http('GET', '/containers')).body.map((c: { id: string }) => c.id)).toContain('api1');
  });

  it('sees containers the CLI creates while it runs, and the CLI sees its', async () => {
    json('create', 'from-cli', '--ports=[31200-31209]', ...common);
    expect((await http('GET', '/containers')).body.map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining(['api1', 'from-cli']));
    expect(json('list', '--json', ...common).map((c: { id: string }) => c.id)).toEqual(expect.arrayContaining(['api1', 'from-cli']));
  });

  it('statistics counters move with traffic (Mesos /monitor/statistics)', async () => {
    const before = (await http('GET', '/monitor/statistics')).body.find((s: { container_id: string }) => s.container_id === 'api1');
    const info = (await http('GET', '/containers/api1')).body;
    const l = await listen(info.netns, 'tcp', 31101);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31101, 'y'.repeat(5000) + '\n')).toBe('ok');
    await until(() => l.received().length > 5000);
    l.stop();
    const after = (await http('GET', '/monitor/statistics')).body.find((s: { container_id: string }) => s.container_id === 'api1');
    expect(after.statistics.net_rx_bytes - before.statistics.net_rx_bytes).toBeGreaterThan(5000);
  });

  it('serves Prometheus text on /metrics', async () => {
    const r = await http('GET', '/metrics');
    expect(r.status).toBe(200);
    const samples = new Map<string, number>();
    for (const line of String(r.body).split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (-?[0-9.e+-]+|NaN)$/.exec(line);
      expect(m, `not a Prometheus sample: ${line}`).not.toBeNull();
      samples.set(m![1]!, Number(m![2]));
    }
    expect(samples.get('portmap_isolator_containers')).toBeGreaterThanOrEqual(2);
    expect(samples.get('portmap_isolator_container_rx_bytes_total{container="api1"}')).toBeGreaterThan(5000);
    expect([...samples.keys()].some((k) => k.startsWith('portmap_isolator_operation_duration_seconds_bucket{op="create"'))).toBe(true);
  });

  it('answers bad requests with a 4xx and {"error"}, and keeps serving', async () => {
    const cases: Array<[string, string, string | undefined, number]> = [
      ['POST', '/containers', '{not json', 400],
      ['POST', '/containers', '[]', 400],
      ['POST', '/containers', JSON.stringify({ ports: '[31300-31301]' }), 400],
      ['POST', '/containers', JSON.stringify({ id: 'bad', ports: '[31300-' }), 400],
      ['POST', '/containers', JSON.stringify({ id: 'api1' }), 409],
      ['POST', '/containers', JSON.stringify({ id: 'x/../y' }), 400],
      ['GET', '/containers/nope', undefined, 404],
      ['PATCH', '/containers/nope', JSON.stringify({ ports: '[31300-31301]' }), 404],
      ['PATCH', '/containers/api1', JSON.stringify({ ports: '[40000-40001]' }), 400],
      ['DELETE', '/containers/nope', undefined, 404],
      ['GET', '/nowhere', undefined, 404],
      ['PUT', '/containers', '{}', 405],
    ];
    for (const [method, path, body, status] of cases) {
      const r = await http(method, path, body);
      expect([method, path, r.status]).toEqual([method, path, status]);
      expect(typeof r.body.error).toBe('string');
    }
    expect((await http('GET', '/health')).status).toBe(200);
  });

  it('stops on SIGTERM leaving containers running; a restart recovers them', async () => {
    agent.kill('SIGTERM');
    expect(await exited(agent)).toBe(0);
    expect(
      json('list', '--json', ...common)
        .map((c: { id: string }) => c.id)
        .sort(),
    ).toEqual(['api1', 'from-cli']);
    const a = await startAgent();
    agent = a.p;
    socketPath = a.socket;
    expect(a.log()).toMatch(/"msg":"recovered","containers":2/);
    expect((await http('DELETE', '/containers/api1')).status).toBe(204);
  });

  it('a kill -9 during a create, then a restart, leaves a complete container or nothing', async () => {
    const pending = http('POST', '/containers', JSON.stringify({ id: 'torn', ports: '[31400-31409]' })).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 3));
    agent.kill('SIGKILL');
    await pending;
    await exited(agent);
    const a = await startAgent();
    agent = a.p;
    socketPath = a.socket;
    const torn = await http('GET', '/containers/torn');
    // The agent keeps a warm pool (default 4): its spares' veths are the only others.
    const spares = () =>
      readdirSync(join(lab.workDir, 'spares'))
        .filter((f) => f.endsWith('.json'))
        .map((f) => {
          try {
            return JSON.parse(readFileSync(join(lab.workDir, 'spares', f), 'utf8')) as { veth: string; netns: string };
          } catch {
            return { veth: '', netns: '' }; // being written (or just removed) by the agent's refill
          }
        });
    const spareVeths = () => new Set(spares().map((s) => s.veth));
    const containerVeths = () => {
      const spares = spareVeths();
      return (JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>)
        .map((l) => l.ifname)
        .filter((n) => /^pmi\d+$/.test(n) && !spares.has(n));
    };
    const veths = containerVeths();
    const listed = (await http('GET', '/containers')).body as Array<{ id: string; veth: string; netns: string }>;
    expect(
      await until(
        () =>
          containerVeths().sort().join() ===
          listed
            .map((c) => c.veth)
            .sort()
            .join(),
        5000,
      ),
    ).toBe(true);
    expect(await until(() => spareVeths().size === 4, 10_000)).toBe(true); // and the pool is full again
    // No namespace pin is left that neither a container nor a spare names.
    const pinsNow = () =>
      readdirSync(join(lab.workDir, 'netns'))
        .map((n) => join(lab.workDir, 'netns', n))
        .sort()
        .join();
    const named = () => [...listed.map((c) => c.netns), ...spares().map((s) => s.netns)].filter(Boolean).sort().join();
    expect(await until(() => pinsNow() === named(), 10_000)).toBe(true);
    if (torn.status === 200) {
      const l = await listen(torn.body.netns, 'tcp', 31405);
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31405, 'whole\n')).toBe('ok');
      expect(await until(() => l.received().includes('whole'))).toBe(true);
      l.stop();
    } else {
      expect(torn.status).toBe(404);
    }
    expect(veths.length).toBeGreaterThanOrEqual(listed.length);
    agent.kill('SIGTERM');
    await exited(agent);
  });
});

describe('doctor and demo', () => {
  it('doctor reports each check and exits 0 here (fq_codel is optional)', () => {
    const r = cli('doctor', ...common);
    expect(r.stdout).toMatch(/^ok   root /m);
    expect(r.stdout).toMatch(/^ok   u32 /m);
    expect(r.stdout).toMatch(/^ok   mirred /m);
    expect(r.stdout).toMatch(/^ok   routing rules /m);
    expect(r.stdout).toMatch(/^(ok  |warn) fq_codel /m);
    expect(r.stdout).toMatch(/^ok   host\s+eth0=eth0 ip=198\.18\.0\.2\/24/m);
    expect(r.status).toBe(0);
  });

  it('demo passes in a lab of its own and leaves nothing behind', () => {
    const r = cli('demo');
    expect(r.stdout).toMatch(/demo passed: \d+ checks passed, 0 failed/);
    expect(r.status).toBe(0);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toMatch(/pmi-demo-/);
  });
});

describe('long output', () => {
  it('list --json through a pipe is complete past 64 KiB (the CLI exits only once stdout is written)', async () => {
    const big = new IsolatorLab();
    try {
      const flags = { resources: 'ports:[31000-32000];ephemeral_ports:[32768-56767]', ephemeral_ports_per_container: 16 };
      const iso = await big.open(flags);
      const ids = Array.from({ length: 250 }, (_, i) => `${'x'.repeat(100)}-${i}`);
      for (const id of ids) await iso.create({ id });
      // A reader that is slow to start: the pipe fills at 64 KiB while the CLI is done.
      const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
      const cmd = [process.execPath, CLI, 'list', '--json', `--netns=${big.lab.host}`, `--work_dir=${big.workDir}`].map(q).join(' ');
      const out = execFileSync('bash', ['-c', `set -o pipefail; ${cmd} | (sleep 1; cat)`], { encoding: 'utf8', timeout: 60_000, maxBuffer: 16 << 20 });
      expect(out.length).toBeGreaterThan(65_536);
      expect((JSON.parse(out) as Array<{ id: string }>).map((c) => c.id).sort()).toEqual([...ids].sort());
    } finally {
      await big.destroy();
    }
  }, 120_000);
});
