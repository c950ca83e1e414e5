/**
 * A stopping agent (SIGTERM, SIGINT) removes its warm-pool spares — namespaces, pins, veth
 * pairs, records — and leaves its containers running with every filter in place (issue #17 item 5).
 * The built CLI is spawned as a user would, in a lab (`--netns=<lab host>`).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../helpers/http.js';
import { IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
const RESOURCES = '--resources=ports:[31000-32000];ephemeral_ports:[30001-30999]';
let lab: IsolatorLab;
let common: string[];
const started: ChildProcess[] = [];

const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, ...common], { encoding: 'utf8', timeout: 60_000 });

function exited(p: ChildProcess): Promise<number | string | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode ?? p.signalCode);
  return new Promise((r) => p.once('exit', (code, signal) => r(code ?? signal)));
}

/** The agent with its default warm pool (4 spares), once it listens. */
async function startAgent(): Promise<{ p: ChildProcess; log: () => string; socket: string }> {
  const p = spawn(process.execPath, [CLI, 'agent', '--log_format=json', ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(p);
  let log = '';
  p.stderr!.on('data', (d) => (log += d));
  expect(await until(() => log.includes('"agent listening"') || p.exitCode !== null, 20_000)).toBe(true);
  return { p, log: () => log, socket: join(lab.workDir, 'agent.sock') };
}

/** Ready spare records in the work_dir: {seq, veth, netns}. */
function spares(): Array<{ seq: number; veth: string; netns: string; phase: string }> {
  const dir = join(lab.workDir, 'spares');
  if (!existsSync(dir)) return [];
  const out: Array<{ seq: number; veth: string; netns: string; phase: string }> = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as { seq: number; veth: string; netns: string; phase: string });
    } catch {
      /* being written (in place) or removed right now: not ready */
    }
  }
  return out;
}
const readySpares = () => spares().filter((s) => s.phase === 'ready');
const hostLinks = () =>
  (JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname);
const pins = () => readdirSync(join(lab.workDir, 'netns')).sort();
/**
 * Every filter on the lab host's links (ingress and egress hooks), by link. Reference counts of
 * shared actions are left out: the spares' filters held references too.
 */
const filters = (links: string[]) =>
  Object.fromEntries(
    links.map((l) => [
      l,
      ['ingress', 'egress'].map((hook) =>
        execFileSync('tc', ['-n', lab.lab.host, 'filter', 'show', 'dev', l, hook], { encoding: 'utf8' }).replace(/ ref \d+ bind \d+/g, ''),
      ),
    ]),
  );
/** The nsfs bind mounts of this mount namespace, by mount point. */
const nsfsMounts = () =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => / - nsfs /.test(l))
    .map((l) => l.split(' ')[4]!);

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  common = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`];
  // The host-level flags, remembered in the work_dir for the agent.
  expect(cli('create', 'first', RESOURCES, '--ephemeral_ports_per_container=16').status).toBe(0);
  expect(cli('destroy', 'first').status).toBe(0);
});

afterAll(async () => {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (common) cli('cleanup');
  await lab?.destroy();
});

describe('a stopping agent', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal}: removes its spares, keeps its containers and their filters, exits 0`, async () => {
      const id = `kept-${signal}`;
      const a = await startAgent();
      expect(await until(() => readySpares().length === 4, 20_000)).toBe(true);
      const made = await request({ socketPath: a.socket }, 'POST', '/containers', {
        body: JSON.stringify({ id, ports: signal === 'SIGTERM' ? '[31000-31009]' : '[31010-31019]' }),
      });
      expect(made.status).toBe(201);
      const info = made.body as { netns: string; veth: string };
      expect(await until(() => readySpares().length === 4, 20_000)).toBe(true); // refilled after the create
      const gone = readySpares();
      expect(hostLinks()).toEqual(expect.arrayContaining(gone.map((s) => s.veth)));
      const kept = hostLinks().filter((l) => !gone.some((s) => s.veth === l));
      const before = filters(kept);
      expect(before[info.veth]!.join('')).toContain('u32');

      a.p.kill(signal);
      expect(await exited(a.p)).toBe(0);
      expect(a.log()).toMatch(/"warm pool removed".*"spares":4/);
      expect(a.log()).not.toContain('"level":"error"');
      // No spare is left: no record, no pin (file or mount), no veth: nothing holds
      // their namespaces any more (the agent, which held them open, has exited).
      expect(spares()).toEqual([]);
      // (A container made from a spare keeps the spare's pin as its own: only the spares' go.)
      expect(pins().filter((p) => gone.some((s) => s.netns === join(lab.workDir, 'netns', p)))).toEqual([]);
      expect(nsfsMounts().filter((m) => gone.some((s) => s.netns === m))).toEqual([]);
      expect(hostLinks().filter((l) => gone.some((s) => s.veth === l))).toEqual([]);
      // The container is as it was: its veth, its pin, every filter on the host.
      expect(hostLinks().sort()).toEqual([...kept].sort());
      expect(existsSync(info.netns)).toBe(true);
      expect(filters(kept)).toEqual(before);
      const listed = cli('list', '--json');
      expect(JSON.parse(listed.stdout)).toEqual(expect.arrayContaining([expect.objectContaining({ id, veth: info.veth })]));
    });
  }
});
