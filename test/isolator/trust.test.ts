/**
 * Issue 15, item 1: a pid (or namespace path) that is not a container's own namespace is refused
 * before anything is built — the host's, this process's, another container's — so a failed
 * create's rollback can never take the host's loopback port filters with it; a namespace whose lo
 * already has an ingress qdisc is refused (destroy and rollback remove only what a create made);
 * and damage done to the host's shared objects from outside is reported and repaired by recover.
 * Item 3: temporary and unreadable state files a crash leaves are swept by recover.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { RefusedNamespaceError } from '../../src/isolator/target-netns.js';
import { SELF_LEAVES_TABLE } from '../../src/isolator/plan.js';
import { nsExec } from '../helpers/lab.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { HOST_IP, IsolatorLab, sweepStaleLabs } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
let lab: IsolatorLab;
let iso: Isolator;
let c1Netns: string;
const sleepers: ChildProcess[] = [];

/** A `sleep` in a namespace (a lab name or a pinned path); its pid is the sleep's own (the tools exec it). */
function sleeper(netns: string): number {
  const p = netns.startsWith('/')
    ? spawn('nsenter', [`--net=${netns}`, 'sleep', '120'], { stdio: 'ignore' })
    : spawn('ip', ['netns', 'exec', netns, 'sleep', '120'], { stdio: 'ignore' });
  sleepers.push(p);
  return p.pid!;
}

/** Wait until the sleeper has entered its namespace (exec'd `sleep`). */
async function entered(pid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if (execFileSync('cat', [`/proc/${pid}/comm`], { encoding: 'utf8' }).trim() === 'sleep') return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`pid ${pid} never became sleep`);
}

const loFilters = () => (JSON.parse(nsExec(lab.lab.host, 'tc', ['-j', 'filter', 'show', 'dev', 'lo', 'ingress'])) as unknown[]).length;
const vethCount = () =>
  (JSON.parse(nsExec(lab.lab.host, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string }>).filter((l) => /^pmi\d+$/.test(l.ifname)).length;

/** Host-local TCP to c1's port arrives in c1 (that path is steered by the host's lo filters). */
async function hostLocalReachesC1(tag: string): Promise<boolean> {
  const l = await listen(c1Netns, 'tcp', 31001);
  try {
    send(lab.lab.host, 'tcp', HOST_IP, 31001, tag, { timeoutMs: 2000 });
    for (let i = 0; i < 40 && !l.received().includes(tag); i++) await new Promise((r) => setTimeout(r, 25));
    return l.received().includes(tag);
  } finally {
    l.stop();
  }
}

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open();
  c1Netns = (await iso.create({ id: 'c1', ports: '[31000-31009]' })).netns;
});
afterAll(async () => {
  for (const p of sleepers) if (p.exitCode === null) p.kill('SIGKILL');
  stopAllTraffic();
  await lab?.destroy();
});

describe('a namespace given to create', () => {
  it("refuses a pid in the host's namespace before building anything: the host's lo filters and traffic are untouched", async () => {
    const before = { lo: loFilters(), veths: vethCount() };
    expect(before.lo).toBeGreaterThan(500); // the two-level port tables and c1's filters
    const pid = sleeper(lab.lab.host);
    await entered(pid);
    const err = await iso.create({ id: 'evil', ports: '[31910-31910]', pid }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(RefusedNamespaceError);
    expect((err as Error).message).toBe(
      `--pid: pid ${pid} is in the host's (the one the isolator acts on) network namespace; a container needs a network namespace of its own`,
    );
    expect({ lo: loFilters(), veths: vethCount() }).toEqual(before);
    expect((await iso.list()).map((c) => c.id)).toEqual(['c1']);
    expect(existsSync(join(lab.workDir, 'netns', 'evil'))).toBe(false);
    expect(await hostLocalReachesC1('after-evil')).toBe(true);
    // The next create works (it failed with "Parent Qdisc doesn't exists" before the fix).
    await iso.create({ id: 'c2', ports: '[31010-31019]' });
    await iso.destroy('c2');
  });

  it("refuses a pid in another container's namespace, this process's own, and one that does not exist", async () => {
    const before = loFilters();
    const c1Rules = execFileSync('nsenter', [`--net=${c1Netns}`, 'ip', 'rule', 'show'], { encoding: 'utf8' });
    const inC1 = sleeper(c1Netns);
    await entered(inC1);
    await expect(iso.create({ id: 'evil', pid: inC1 })).rejects.toThrow(`--pid: pid ${inC1} is in container c1's network namespace`);
    await expect(iso.create({ id: 'evil', pid: process.pid })).rejects.toThrow(
      /is in this process's own network namespace|is in the init process's network namespace/,
    );
    const gone = spawnSync('true').pid!;
    await expect(iso.create({ id: 'evil', pid: gone })).rejects.toThrow(`--pid: pid ${gone} does not exist`);
    await expect(iso.create({ id: 'evil', netnsPath: lab.lab.path(lab.lab.host) })).rejects.toThrow(/^--netnsPath: namespace .* is in the host's/);
    await expect(iso.create({ id: 'evil', netnsPath: '/proc/self/ns/uts' })).rejects.toThrow('--netnsPath: /proc/self/ns/uts is not a network namespace');
    await expect(iso.create({ id: 'evil', netnsPath: join(lab.workDir, 'lock') })).rejects.toThrow(/is not a network namespace$/);
    // c1's own namespace still has its routing rules.
    expect(c1Rules).toMatch(/^110:\s+from all iif lo ipproto tcp dport/m);
    expect(execFileSync('nsenter', [`--net=${c1Netns}`, 'ip', 'rule', 'show'], { encoding: 'utf8' })).toBe(c1Rules);
    expect(loFilters()).toBe(before);
    expect(await hostLocalReachesC1('after-c1-pid')).toBe(true);
  });

  it('refuses a namespace with routing rules the isolator would own, or its local rule moved, and leaves its rules as it found them', async () => {
    const foreign = lab.lab.addNamespace('foreign');
    nsExec(foreign, 'ip', ['rule', 'add', 'pref', '150', 'to', '198.18.0.9', 'lookup', String(SELF_LEAVES_TABLE)]);
    const moved = lab.lab.addNamespace('moved');
    nsExec(moved, 'ip', ['rule', 'add', 'pref', '5', 'lookup', 'local']);
    nsExec(moved, 'ip', ['rule', 'del', 'pref', '0', 'lookup', 'local']);
    for (const [ns, refusal] of [
      [foreign, /cannot take a container: it has routing rules the isolator would own \(preferences 150/],
      [moved, /cannot take a container: its inet rule "lookup local" is not at preference 0/],
    ] as const) {
      const rules = nsExec(ns, 'ip', ['rule', 'show']);
      const pid = sleeper(ns);
      await entered(pid);
      const veths = vethCount();
      await expect(iso.create({ id: 'f1', ports: '[31020-31029]', pid })).rejects.toThrow(refusal);
      expect(nsExec(ns, 'ip', ['rule', 'show'])).toBe(rules);
      expect(vethCount()).toBe(veths);
      expect(readdirSync(join(lab.workDir, 'netns')).filter((n) => n === 'f1')).toEqual([]);
      expect((await iso.list()).map((c) => c.id)).toEqual(['c1']);
    }
  });

  it("accepts a process's own namespace; destroy leaves that namespace without the isolator's objects", async () => {
    const own = lab.lab.addNamespace('proc');
    const pid = sleeper(own);
    await entered(pid);
    const rules = nsExec(own, 'ip', ['rule', 'show']);
    const info = await iso.create({ id: 'p1', ports: '[31030-31039]', pid });
    expect(info.netns).toBe(join(lab.workDir, 'netns', 'p1'));
    expect(nsExec(own, 'ip', ['rule', 'show'])).toMatch(/^200:\s+from all lookup local/m);
    expect(nsExec(own, 'ip', ['rule', 'show'])).not.toMatch(/^0:/m);
    expect(await iso.destroy('p1')).toBe(true);
    expect(nsExec(own, 'ip', ['rule', 'show'])).toBe(rules);
    expect(nsExec(own, 'tc', ['qdisc', 'show', 'dev', 'lo'])).not.toMatch(/ingress/);
    expect(existsSync(info.netns)).toBe(false);
  });

  it('the CLI refuses a host pid with exit 2 and one line naming --pid', async () => {
    const pid = sleeper(lab.lab.host);
    await entered(pid);
    const before = loFilters();
    const r = spawnSync(
      process.execPath,
      [CLI, 'create', 'evil', `--pid=${pid}`, '--ports=[31910-31910]', `--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([
      `portmap-isolator: --pid: pid ${pid} is in the host's (the one the isolator acts on) network namespace; a container needs a network namespace of its own`,
    ]);
    expect(loFilters()).toBe(before);
  });
});

describe("the host's shared objects", () => {
  it("doctor's check reports a removed lo ingress qdisc, and recover puts the tables and every container's filters back", async () => {
    const before = loFilters();
    expect(await iso.checkHost()).toEqual([]);
    nsExec(lab.lab.host, 'tc', ['qdisc', 'del', 'dev', 'lo', 'ingress']);
    expect(loFilters()).toBe(0);
    const problems = await iso.checkHost();
    // The port tables (1 + 256 level-2 tables + 256 links to them) and the ICMP tables (error table, ICMP table, its link to the error table).
    expect(problems).toContain('lo: 516 of the 516 shared tables and filters are missing (its ingress qdisc was removed?)');
    const c1LoFilters = (await iso.get('c1'))!.hostFilters.filter((f) => f.dev === 'lo' || f.dev === 'loIcmp').length;
    expect(problems).toContain(`container c1: ${c1LoFilters} of its host port filters are missing`);
    expect(await hostLocalReachesC1('while-broken')).toBe(false);
    const report = await iso.recover();
    expect(report.errors).toEqual([]);
    expect(report.repaired).toEqual(problems.map((p) => `${p}: put back`));
    expect(await iso.checkHost()).toEqual([]);
    expect(loFilters()).toBe(before);
    expect(await hostLocalReachesC1('after-repair')).toBe(true);
    // A second recover finds nothing to do, and adds no second link filter.
    expect((await iso.recover()).repaired).toEqual([]);
    expect(loFilters()).toBe(before);
  });
});

describe('state files a crash leaves', () => {
  it("recover removes temporary files of dead processes and unreadable records, and keeps a live process's", async () => {
    const dead = spawnSync('true').pid!;
    writeFileSync(join(lab.workDir, `host.json.tmp-${dead}`), '{"half":');
    writeFileSync(join(lab.workDir, 'containers', 'zero.json'), ''); // created, killed before its first write
    const live = join(lab.workDir, `flags.json.tmp-${process.pid}`);
    writeFileSync(live, '{}');
    try {
      const report = await iso.recover();
      expect(report.errors).toEqual([]);
      expect(report.orphans.files).toContain(join(lab.workDir, `host.json.tmp-${dead}`));
      expect(report.orphans.files.filter((f) => /containers\/zero\.json\.corrupt-\d+$/.test(f))).toHaveLength(1);
      expect(readdirSync(join(lab.workDir, 'containers')).filter((f) => f.startsWith('zero'))).toEqual([]);
      expect(existsSync(join(lab.workDir, `host.json.tmp-${dead}`))).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect((await iso.list()).map((c) => c.id)).toEqual(['c1']);
    } finally {
      rmSync(live, { force: true });
    }
  });
});
