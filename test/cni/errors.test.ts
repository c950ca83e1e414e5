/**
 * The CNI plugin's errors, by the spec's invocation (test/helpers/cni.ts, as in plugin.test.ts):
 * bad requests, configurations and environments get the spec's codes and leave nothing behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { sweepStaleLabs, until } from '../../src/lab/index.js';
import { CNI_NAME, CniBench, requireCniTools } from '../helpers/cni.js';
import { ip, ipJson } from '../helpers/lab.js';

const NET = 'pmi';
let b: CniBench;
let iso: Isolator;

const newId = () => randomBytes(32).toString('hex'); // what runtimes use: 64 hex chars
const nsName = (path: string) => basename(path);

/** Run async jobs at most `n` at a time (the machine has two cores). */
async function limited<T>(n: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        out[i] = await jobs[i]!();
      }
    }),
  );
  return out;
}

beforeAll(async () => {
  sweepStaleLabs();
  requireCniTools();
  b = new CniBench();
  b.writeConflist(NET, [b.pluginConf()]);
  iso = await b.iso.open();
}, 120_000);

afterAll(async () => {
  await b?.destroy();
});

describe('errors', () => {
  it('bad requests and configurations get the spec codes through the client, and leave nothing behind', async () => {
    b.writeConflist('notpow2', [b.pluginConf({ ephemeral_ports_per_container: 100 })]);
    b.writeConflist('typo', [b.pluginConf({ ephemeral_port_per_container: 16 })]);
    b.writeConflist('ipam', [b.pluginConf({ ipam: { type: 'host-local' } })]);
    b.writeConflist('v031', [b.pluginConf()], '0.3.1');
    b.writeConflist('overlap', [b.pluginConf({ resources: 'ports:[31000-32000];ephemeral_ports:[60000-62047]' })]);
    const ns = b.runtimeNetns();
    const before = await iso.list();
    const cases: Array<[string, () => Promise<Awaited<ReturnType<CniBench['cni']>>>, number, RegExp]> = [
      [
        'hostPort != containerPort',
        () => b.cni('add', NET, ns, { containerId: newId(), capArgs: { portMappings: [{ hostPort: 31050, containerPort: 80, protocol: 'tcp' }] } }),
        7,
        /31050->80 .*hostPort == containerPort/,
      ],
      ['ports not managed', () => b.cni('add', NET, ns, { containerId: newId(), args: 'PORTS=[40000-40001]' }), 7, /40000-40001.* not managed/],
      ['bad PORTS', () => b.cni('add', NET, ns, { containerId: newId(), args: 'PORTS=[oops]' }), 4, /CNI_ARGS/],
      ['unknown CNI_ARGS', () => b.cni('add', NET, ns, { containerId: newId(), args: 'FOO=1' }), 4, /unknown argument "FOO"/],
      ['flag not a power of 2', () => b.cni('add', 'notpow2', ns, { containerId: newId() }), 7, /ephemeral_ports_per_container.*power of 2/],
      ['unknown field', () => b.cni('add', 'typo', ns, { containerId: newId() }), 2, /"ephemeral_port_per_container": 16/],
      ['ipam', () => b.cni('add', 'ipam', ns, { containerId: newId() }), 2, /"ipam"/],
      ['old version', () => b.cni('add', 'v031', ns, { containerId: newId() }), 1, /0\.3\.1/],
      ["pool overlapping the host's range", () => b.cni('add', 'overlap', ns, { containerId: newId() }), 7, /resources.*intersect/],
      ['netns gone', () => b.cni('add', NET, `${ns}-nope`, { containerId: newId() }), 3, /does not exist/],
    ];
    const results = await limited(
      3,
      cases.map(([, fn]) => fn),
    );
    results.forEach((r, i) => {
      const [what, , codeWanted, msg] = cases[i]!;
      expect(r.status, `${what}: ${r.stderr}`).toBe(1);
      expect(r.error?.code, what).toBe(codeWanted);
      expect(r.error?.msg, what).toMatch(msg);
    });
    expect(await iso.list()).toEqual(before);
    expect(ipJson(nsName(ns), 'link', 'show').map((l: any) => l.ifname)).toEqual(['lo']);
  });

  it('ports held by another container (100), an existing interface or container (102)', async () => {
    const a = newId();
    const nsA = b.runtimeNetns();
    const nsB = b.runtimeNetns();
    expect((await b.cni('add', NET, nsA, { containerId: a, args: 'PORTS=[31100-31109]' })).status).toBe(0);
    const held = await b.cni('add', NET, nsB, { containerId: newId(), args: 'PORTS=[31105]' });
    expect(held.error).toMatchObject({ code: 100, msg: expect.stringMatching(/31105.*already held/) });
    const twice = await b.cni('add', NET, nsB, { containerId: a });
    expect(twice.error).toMatchObject({ code: 102, msg: expect.stringMatching(/already exists/) });
    ip(nsName(nsB), 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0p');
    const ifExists = await b.cni('add', NET, nsB, { containerId: newId() });
    expect(ifExists.error).toMatchObject({ code: 102, msg: expect.stringMatching(/interface eth0 already exists/) });
    expect((await b.cni('del', NET, nsA, { containerId: a })).status).toBe(0);
  });

  it('answers "try again later" (11) while another process holds the work_dir lock', async () => {
    b.writeConflist('locked', [b.pluginConf({ lock_timeout_ms: 200 })]);
    const ns = b.runtimeNetns();
    const lockFile = join(b.workDir, 'lock');
    // flock -F execs sleep with the locked fd: the PID we kill is the lock holder.
    const holder: ChildProcess = spawn('flock', ['-x', '-F', lockFile, 'sleep', '30'], { stdio: 'ignore' });
    try {
      const held = () => {
        try {
          execFileSync('flock', ['-n', '-x', lockFile, 'true'], { stdio: 'ignore' });
          return false;
        } catch {
          return true;
        }
      };
      expect(await until(held)).toBe(true);
      const [add, del] = await Promise.all([b.cni('add', 'locked', ns, { containerId: newId() }), b.cni('del', 'locked', ns, { containerId: newId() })]);
      expect(add.error).toMatchObject({ code: 11, msg: expect.stringMatching(/locked by another/) });
      expect(del.error?.code).toBe(11);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it("bad environments and stdin, exec'd directly: one JSON error line on stdout, exit 1", async () => {
    const ns = b.runtimeNetns();
    const conf = JSON.stringify({ cniVersion: '1.0.0', name: NET, ...b.pluginConf() });
    const ok = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: newId(), CNI_NETNS: ns, CNI_IFNAME: 'eth0', CNI_PATH: b.bin };
    const without = (k: keyof typeof ok) => Object.fromEntries(Object.entries(ok).filter(([n]) => n !== k));
    const cases: Array<[string, Record<string, string>, string, number, RegExp]> = [
      ['no CNI_COMMAND', without('CNI_COMMAND'), conf, 4, /CNI_COMMAND is not set/],
      ['unknown CNI_COMMAND', { ...ok, CNI_COMMAND: 'INIT' }, conf, 4, /CNI_COMMAND "INIT"/],
      ['no CNI_CONTAINERID', without('CNI_CONTAINERID'), conf, 4, /CNI_CONTAINERID is not set/],
      ['bad CNI_CONTAINERID', { ...ok, CNI_CONTAINERID: '-bad' }, conf, 4, /CNI_CONTAINERID is invalid/],
      ['too long CNI_CONTAINERID', { ...ok, CNI_CONTAINERID: 'a'.repeat(129) }, conf, 4, /CNI_CONTAINERID is invalid/],
      ['no CNI_NETNS', without('CNI_NETNS'), conf, 4, /CNI_NETNS is not set/],
      ['relative CNI_NETNS', { ...ok, CNI_NETNS: 'netns' }, conf, 4, /not an absolute path/],
      ['CNI_NETNS not a namespace', { ...ok, CNI_NETNS: '/etc/hostname' }, conf, 4, /not a network namespace/],
      ["CNI_NETNS the host's own", { ...ok, CNI_NETNS: '/proc/self/ns/net' }, conf, 4, /host's own network namespace/],
      ['no CNI_IFNAME', without('CNI_IFNAME'), conf, 4, /CNI_IFNAME is not set/],
      ['bad CNI_IFNAME', { ...ok, CNI_IFNAME: 'much-too-long-name' }, conf, 4, /CNI_IFNAME/],
      ['stdin not JSON', ok, '{"cniVersion":', 6, /not JSON/],
      ['stdin empty', ok, '', 6, /no network configuration/],
      ['CHECK without prevResult', { ...ok, CNI_COMMAND: 'CHECK' }, conf, 7, /CHECK needs prevResult/],
      [
        'CHECK of an unknown container',
        { ...ok, CNI_COMMAND: 'CHECK' },
        JSON.stringify({ ...JSON.parse(conf), prevResult: { cniVersion: '1.0.0' } }),
        3,
        /not attached/,
      ],
    ];
    const before = await iso.list();
    const results = await limited(
      4,
      cases.map(
        ([, env, stdin]) =>
          () =>
            b.exec(env, stdin, env.CNI_COMMAND ? undefined : CNI_NAME), // else the executable is the CLI
      ),
    );
    results.forEach((r, i) => {
      const [what, , , codeWanted, msg] = cases[i]!;
      expect(r.status, what).toBe(1);
      expect(r.stdout.split('\n'), what).toHaveLength(2);
      expect(r.json, what).toMatchObject({ cniVersion: '1.0.0', code: codeWanted, msg: expect.stringMatching(msg) });
    });
    expect(await iso.list()).toEqual(before);
  });
});
