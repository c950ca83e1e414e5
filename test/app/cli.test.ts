/** The built CLI explaining itself: help, one-line errors naming real flags, JSON failures, log levels, the host configuration. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, allowedFlags } from '../../src/app/cli/usage.js';
import { createLogger } from '../../src/app/log.js';
import { ISOLATOR_FLAG_NAMES } from '../../src/isolator/config.js';
import { IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
const RESOURCES = '--resources=ports:[31000-32000];ephemeral_ports:[30001-30999]';
let lab: IsolatorLab;
let common: string[];

/** The CLI with `args`, the lab's host and work_dir given before any `--`. */
function cli(...args: string[]) {
  const end = args.indexOf('--');
  const argv = end < 0 ? [...args, ...common] : [...args.slice(0, end), ...common, ...args.slice(end)];
  const r = spawnSync(process.execPath, [CLI, ...argv], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const ok = (...args: string[]) => {
  const r = cli(...args);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout;
};
const flagsFile = () => join(lab.workDir, 'flags.json');
const stored = () => JSON.parse(readFileSync(flagsFile(), 'utf8')) as Record<string, unknown>;

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  common = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`];
});
afterAll(async () => {
  cli('cleanup');
  await lab?.destroy();
});

describe('help', () => {
  it('-h and --help anywhere before `--`, and `help CMD`, print the same usage of that command', () => {
    const h = cli('help', 'create');
    expect(h).toMatchObject({ status: 0, stderr: '' });
    expect(h.stdout).toMatch(/^usage: portmap-isolator create ID/);
    for (const args of [
      ['create', '--help'],
      ['--help', 'create'],
      ['create', 'x1', '-h'],
      ['-h', 'create', '--ports=abc'],
    ])
      expect(cli(...args)).toEqual(h);
    expect(cli('help')).toEqual(cli('--help'));
    expect(cli('help').stdout).toMatch(/^usage: portmap-isolator COMMAND/);
    expect(cli('help', 'nope')).toMatchObject({
      status: 2,
      stdout: '',
      stderr: "portmap-isolator: COMMAND: unknown command 'nope' (see portmap-isolator --help)\n",
    });
  });

  it("COMMAND --help lists that command's flags and the common ones, each with a meaning and a default", () => {
    for (const command of Object.keys(COMMANDS)) {
      const text = cli(command, '--help').stdout;
      expect(text).toMatch(new RegExp(`^usage: portmap-isolator ${command}\\b`));
      expect(text).not.toContain('Commands:');
      for (const flag of allowedFlags(command)) expect(text, `${command} --${flag}`).toMatch(new RegExp(`(--|\\[no-\\])${flag}\\b`));
    }
    const create = cli('create', '--help').stdout;
    expect(create).toMatch(/--ephemeral_ports_per_container=N\s+size of each container's ephemeral port block: .*\s+\(default: 1024\)/);
    expect(create).toMatch(/--\[no-\]ingress_isolate_existing_containers\s+may an update add ingress shaping[^]*?\(default: true\)/);
    expect(create).toMatch(/--log_level=debug\|info\|warn\|error\s+the least severe log lines printed \(default: info\)/);
    expect(create).not.toContain('--listen');
    // The program's help describes every flag of every command.
    const all = cli('--help').stdout;
    for (const flag of new Set(Object.keys(COMMANDS).flatMap((c) => [...allowedFlags(c)]))) expect(all).toMatch(new RegExp(`(--|\\[no-\\])${flag}\\b`));
  });

  it("run --help is run's usage; after `--` a --help belongs to CMD", () => {
    const r = cli('run', '--help');
    expect(r.stdout).toMatch(/^usage: portmap-isolator run \[--id=ID\]/);
    expect(r.stdout).toMatch(/--id=ID\s+the container ID \(default: run-<pid>\)/);
    expect(cli('run', '--id=helpjob', '--', 'printf', '%s\\n', '--help', '-h')).toMatchObject({ status: 0, stdout: '--help\n-h\n' });
    cli('cleanup');
  });
});

describe('bad input: exit 2, one line naming a flag or argument that exists', () => {
  it.each([
    [['create', 'x1', '--ports=abc'], /^--ports: invalid ports for container x1: 'abc' is not a port range list/],
    [['create', 'x1', '--ports=[31010-31000]'], /^--ports: invalid ports for container x1: .*begin is larger than end/],
    [['update', 'x1', '--ports=[31010-31000]'], /^--ports: invalid ports/],
    [['create', 'bad id!'], /^ID: invalid container id "bad id!"/],
    [['destroy', 'bad id!'], /^ID: invalid container id/],
    [['stats', '../x'], /^ID: invalid container id/],
    [['run', '--id=bad id!', '--', 'true'], /^--id: invalid container id/],
    [['list', 'extra'], /^unexpected argument 'extra' \(usage: portmap-isolator list \[--json\]\)$/],
    [['create', 'a', 'b'], /^unexpected argument 'b'/],
    [['cleanup', 'now'], /^unexpected argument 'now'/],
    [['create'], /^ID: 'create' needs a container ID: portmap-isolator create ID/],
    [['update', 'x1'], /^--ports: 'update' needs --ports=RANGES$/],
    [['run'], /^CMD: 'run' needs a command/],
    [['list', '--', 'ls'], /^unexpected argument '--'/],
    [['frobnicate'], /^COMMAND: unknown command 'frobnicate'/],
    [['create', 'x1', '--cpus=lots'], /^--cpus: must be a number/],
    [['list', '--log_level=loud'], /^--log_level: must be debug, info, warn or error, got 'loud'$/],
    [['config', '--ephemeral_ports_per_container=24'], /^--ephemeral_ports_per_container: .*not a power of 2$/],
    [['create', 'x1', '--ephemeral-ports-per-container=abc'], /^--ephemeral_ports_per_container: 'abc' is not a positive integer$/],
    [['demo', '--ports=[1-2]'], /^--ports: unknown flag for 'demo'$/],
  ])('%j', (args, message) => {
    const r = cli(...args);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const line = lines[0]!.replace(/^portmap-isolator: /, '');
    expect(line).toMatch(message);
    // Every --flag it names is one the command takes (or an isolator flag).
    const known = new Set([...allowedFlags(args[0]), ...ISOLATOR_FLAG_NAMES]);
    for (const [, flag] of line.matchAll(/--([a-z_]+)/g)) if (args[0] !== 'demo') expect(known, line).toContain(flag);
  });
});

describe('doctor --json and failures as JSON', () => {
  it('doctor --json prints the checks the text form prints, with the same exit status', () => {
    const text = cli('doctor');
    const json = cli('doctor', '--json');
    expect(json.status).toBe(text.status);
    const checks = JSON.parse(json.stdout) as Array<{ name: string; ok: boolean; required: boolean; detail: string }>;
    expect(checks.map((c) => `${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'} ${c.name}`)).toEqual(
      text.stdout
        .trimEnd()
        .split('\n')
        .map((l) => l.slice(0, 5) + l.slice(5, 25).trimEnd()),
    );
    expect(checks.find((c) => c.name === 'u32')).toEqual({ name: 'u32', ok: true, required: true, detail: 'available' });
  });

  it('with --log_format=json a failure is one JSON log line: its message, exit status and flag or argument', () => {
    const bad = cli('create', 'x1', '--ports=abc', '--log_format=json');
    expect(bad.status).toBe(2);
    expect(JSON.parse(bad.stderr)).toMatchObject({ level: 'error', msg: expect.stringMatching(/^--ports: invalid ports/), exit_code: 2, flag: 'ports' });
    expect(JSON.parse(cli('frob', '--log_format=json').stderr)).toMatchObject({ level: 'error', exit_code: 2, argument: 'COMMAND' });
    expect(JSON.parse(cli('--log_format=json', 'list', '--json=maybe').stderr)).toMatchObject({
      msg: "--json: takes true or false, got 'maybe'",
      flag: 'json',
    });
    const unknown = cli('stats', 'nosuch', '--log_format=json');
    expect(unknown.status).toBe(1);
    expect(JSON.parse(unknown.stderr)).toMatchObject({ level: 'error', msg: 'Unknown container nosuch', exit_code: 1 });
    expect(typeof JSON.parse(unknown.stderr).time).toBe('string');
  });
});

describe('logs', () => {
  it('--log_level drops the lines below it (default info)', () => {
    const info = cli('run', '--id=logjob', '--', 'true');
    expect(info.status).toBe(0);
    expect(info.stderr).toMatch(/INFO {2}container created id=logjob/);
    expect(info.stderr).not.toMatch(/DEBUG/);
    const quiet = cli('run', '--id=logjob', '--log_level=warn', '--', 'true');
    expect(quiet.status).toBe(0);
    expect(quiet.stderr).not.toMatch(/INFO/);
    const debug = cli('list', '--log_level=debug', '--log_format=json');
    expect(debug.status).toBe(0);
    const lines = debug.stderr
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(lines).toEqual([expect.objectContaining({ level: 'debug', msg: 'isolator flags', source: 'given and defaults', flags: {} })]);
    cli('cleanup');
  });

  it('prints each distinct warning once per process', () => {
    const out: string[] = [];
    const log = createLogger('json', (l) => out.push(l));
    for (let i = 0; i < 3; i++) log.warn('this kernel has no fq_codel: shaping uses HTB alone and bloat_reduction statistics are left out');
    log.warn('another', { id: 'a' });
    log.warn('another', { id: 'b' });
    log.info('repeated info');
    log.info('repeated info');
    expect(out.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual([
      'this kernel has no fq_codel: shaping uses HTB alone and bloat_reduction statistics are left out',
      'another',
      'another',
      'repeated info',
      'repeated info',
    ]);
  });

  it('an agent shaping several containers on a kernel without fq_codel warns once', async () => {
    const fqCodel = (JSON.parse(cli('doctor', '--json').stdout) as Array<{ name: string; ok: boolean }>).find((c) => c.name === 'fq_codel')!.ok;
    const agent = spawn(process.execPath, [CLI, 'agent', '--warm_pool=0', '--egress_rate_limit_per_container=1MB', ...common], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    agent.stderr.on('data', (d) => (log += d));
    try {
      expect(await until(() => log.includes('agent listening'), 15_000)).toBe(true);
      for (const id of ['w1', 'w2', 'w3']) expect(cli('create', id).status).toBe(0); // through the agent
      expect(await until(() => (JSON.parse(ok('list', '--json')) as unknown[]).length === 3, 5000)).toBe(true);
    } finally {
      agent.kill('SIGTERM');
      await new Promise((r) => (agent.exitCode !== null ? r(null) : agent.once('exit', r)));
    }
    expect(log.split('\n').filter((l) => l.includes('no fq_codel'))).toHaveLength(fqCodel ? 0 : 1);
    expect(cli('cleanup').status).toBe(0);
  });
});

describe('host configuration', () => {
  type Config = {
    path: string;
    stored: Record<string, unknown> | null;
    in_use: { containers: number };
    flags: Record<string, { value: unknown; default: unknown; source: string }>;
  };
  const config = () => JSON.parse(ok('config', '--json')) as Config;

  it('reading commands store nothing; the first create stores its flags; config shows them', () => {
    expect(config()).toMatchObject({ path: flagsFile(), stored: null, in_use: { containers: 0 } });
    for (const c of ['list', 'stats', 'config', 'doctor']) expect(cli(c, RESOURCES, '--ephemeral_ports_per_container=16').status).toBe(0);
    expect(existsSync(flagsFile())).toBe(false);
    const created = JSON.parse(ok('create', 'h1', RESOURCES, '--ephemeral_ports_per_container=16'));
    expect(created.ephemeral_ports).toEqual({ begin: 30016, end: 30031 });
    expect(stored()).toEqual({ resources: RESOURCES.slice('--resources='.length), ephemeral_ports_per_container: '16' });
    const c = config();
    expect(c.stored).toEqual(stored());
    expect(c.in_use.containers).toBe(1);
    expect(c.flags.ephemeral_ports_per_container).toEqual({ value: '16', default: 1024, source: 'stored', none: null });
    expect(c.flags.egress_unique_flow_per_container).toMatchObject({ value: false, default: false, source: 'default' });
    expect(Object.keys(c.flags)).toEqual([...ISOLATOR_FLAG_NAMES]);
    const text = ok('config');
    expect(text).toContain(`stored in: ${flagsFile()}`);
    expect(text).toMatch(/^ephemeral_ports_per_container\s+16\s+stored\s+1024$/m);
    // Later commands use them without repeating them, and may repeat them unchanged.
    const h2 = JSON.parse(ok('create', 'h2')) as { ephemeral_ports: { begin: number; end: number } };
    expect(h2.ephemeral_ports.end - h2.ephemeral_ports.begin + 1).toBe(16);
    expect(cli('list', '--ephemeral_ports_per_container=16').status).toBe(0);
  });

  it('while containers exist, a different value is refused with exit 2 naming the flag, what is stored and how to change it', () => {
    const before = readFileSync(flagsFile(), 'utf8');
    for (const c of [['create', 'h3'], ['list'], ['doctor'], ['config']]) {
      const r = cli(...c, '--ephemeral_ports_per_container=32');
      expect(r.status).toBe(2);
      expect(r.stderr).toBe(
        `portmap-isolator: --ephemeral_ports_per_container: '32' differs from the host configuration in ${flagsFile()}, which has '16'; containers use it: give the same value or none (see \`portmap-isolator config\`), or \`portmap-isolator cleanup\` (destroys every container) to change it\n`,
      );
    }
    const unset = cli('list', '--egress_rate_limit_per_container=1MB');
    expect(unset.status).toBe(2);
    expect(unset.stderr).toMatch(/^portmap-isolator: --egress_rate_limit_per_container: '1MB' differs .* which leaves it unset \(no fixed rate\)/);
    expect(readFileSync(flagsFile(), 'utf8')).toBe(before);
    expect((JSON.parse(ok('list', '--json')) as unknown[]).length).toBe(2);
  });

  it('with no container left, given flags replace the stored ones; cleanup forgets them', () => {
    ok('destroy', 'h1');
    ok('destroy', 'h2');
    expect(JSON.parse(ok('create', 'h4', RESOURCES, '--ephemeral_ports_per_container=32')).ephemeral_ports).toEqual({ begin: 30016, end: 30047 });
    expect(stored()).toEqual({ resources: RESOURCES.slice('--resources='.length), ephemeral_ports_per_container: '32' });
    expect(JSON.parse(ok('cleanup'))).toMatchObject({ destroyed: ['h4'], errors: [] });
    expect(existsSync(flagsFile())).toBe(false);
    expect(config().stored).toBeNull();
  });

  it('a damaged flags.json is a configuration error naming --work_dir, not silently the defaults', () => {
    writeFileSync(flagsFile(), '{"resources": ');
    try {
      const r = cli('list');
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^portmap-isolator: --work_dir: cannot read the host configuration ${flagsFile()}: .*JSON`));
    } finally {
      rmSync(flagsFile());
    }
  });
});
