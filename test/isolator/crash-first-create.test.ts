/**
 * Issue 15, item 3: the CLI's first create (host setup included) is killed at every write, rename
 * and netlink send it makes — strace's fault injection delivers SIGKILL on entering the Nth such
 * system call — and after `recover` and `cleanup` the host is as it was: no qdisc, filter, veth,
 * lo address/MTU or sysctl change of ours, and no record, pin, temporary or corrupt file.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Isolator } from '../../src/isolator/engine.js';
import { nsExec } from '../helpers/lab.js';
import { FIXTURE, IsolatorLab, sweepStaleLabs } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
/** The calls that change state: file writes and renames, and netlink sends. */
const CALLS = 'write,pwrite64,rename,renameat,renameat2,sendto,sendmsg,sendmmsg';
const SYSCTLS = [
  'net.ipv4.conf.lo.route_localnet',
  'net.ipv4.conf.all.rp_filter',
  'net.ipv4.conf.lo.rp_filter',
  'net.ipv4.conf.all.send_redirects',
  'net.ipv4.conf.lo.send_redirects',
  'net.ipv4.conf.lo.accept_local',
];

let lab: IsolatorLab;
let flags: string[];

/** Everything of the lab host and the work_dir that a create and a cleanup may touch. */
function hostState() {
  const host = lab.lab.host;
  const links = JSON.parse(nsExec(host, 'ip', ['-j', 'link', 'show'])) as Array<{ ifname: string; address: string; mtu: number }>;
  const files = (dir: string) => {
    try {
      return readdirSync(join(lab.workDir, dir)).map((f) => `${dir}/${f}`);
    } catch {
      return [];
    }
  };
  return {
    // (lo's all-zero MAC cannot be set back — the kernel refuses it — and cleanup leaves eth0's there: harmless.)
    links: links.map((l) => `${l.ifname} ${l.ifname === 'lo' ? '' : l.address} ${l.mtu}`).sort(),
    qdiscs: ['eth0', 'lo'].map((d) => nsExec(host, 'tc', ['qdisc', 'show', 'dev', d]).trim()),
    filters: ['eth0', 'lo'].map((d) => nsExec(host, 'tc', ['filter', 'show', 'dev', d, 'ingress']).trim()),
    sysctls: nsExec(host, 'sysctl', SYSCTLS),
    // flags.json (the remembered flags) and the lock file are the work_dir's own.
    files: [...files('.'), ...files('containers'), ...files('spares'), ...files('netns')]
      .filter((f) => !['./flags.json', './lock', './changes.log', './containers', './spares', './netns'].includes(f))
      .sort(),
  };
}

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  flags = [
    `--netns=${lab.lab.host}`,
    `--work_dir=${lab.workDir}`,
    `--resources=${/ports:\[.*\]$/.exec(FIXTURE.resources!)![0]}`,
    `--ephemeral_ports_per_container=${FIXTURE.ephemeral_ports_per_container}`,
  ];
});
afterAll(async () => {
  await lab?.destroy();
});

describe('a first create killed at any state-changing call', () => {
  it('leaves nothing that recover and cleanup do not remove', async () => {
    const clean = hostState();
    // Which such calls a first create's main thread (the lowest tid) makes: the second create is
    // counted (the first also stores the flags in the work_dir). strace counts `when` per thread
    // and per system call, so each call is reached as the Nth of its name.
    const iso = await Isolator.open({ netns: lab.lab.host, workDir: lab.workDir, flags: FIXTURE, onWarning: () => undefined });
    try {
      const trace = join(lab.workDir, 'trace.txt');
      const perCall = new Map<string, number>();
      for (let run = 0; run < 2; run++) {
        const counted = spawnSync(
          'strace',
          ['-f', '-qq', '-o', trace, '-e', `trace=${CALLS}`, process.execPath, CLI, 'create', 'c1', '--ports=[31000-31009]', ...flags],
          { encoding: 'utf8', timeout: 60_000 },
        );
        expect(counted.status, counted.stderr).toBe(0);
        const lines = readFileSync(trace, 'utf8')
          .split('\n')
          .filter((l) => l && !l.includes('resumed>'))
          .map((l) => /^(\d+) +(\w+)\(/.exec(l)!);
        rmSync(trace);
        const main = Math.min(...lines.map((m) => Number(m[1])));
        perCall.clear();
        for (const m of lines) if (Number(m[1]) === main) perCall.set(m[2]!, (perCall.get(m[2]!) ?? 0) + 1);
        await iso.cleanup();
      }
      const trials = [...perCall].flatMap(([call, count]) => Array.from({ length: count }, (_, i) => ({ call, when: i + 1 })));
      expect(trials.length).toBeGreaterThan(30);
      expect(hostState()).toEqual(clean);
      let killed = 0;
      const left: string[] = [];
      for (const { call, when } of trials) {
        const inject = `inject=${call}:signal=KILL:when=${when}`;
        const r = spawnSync(
          'strace',
          ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${CALLS}`, '-e', inject, process.execPath, CLI, 'create', 'c1', '--ports=[31000-31009]', ...flags],
          { encoding: 'utf8', timeout: 60_000 },
        );
        if (r.signal === 'SIGKILL' || r.status === 137) killed++;
        const recovered = await iso.recover();
        const cleaned = await iso.cleanup();
        const state = hostState();
        if (JSON.stringify(state) !== JSON.stringify(clean) || recovered.errors.length || cleaned.errors.length) {
          left.push(`${inject}: ${JSON.stringify({ recovered: recovered.errors, cleaned: cleaned.errors, state })}`);
        }
      }
      expect(left).toEqual([]);
      // The injections did kill the CLI (the count of a call can differ by one or two from run to run).
      expect(killed).toBeGreaterThanOrEqual(trials.length - 3);
    } finally {
      await iso.close();
    }
  }, 600_000);
});
