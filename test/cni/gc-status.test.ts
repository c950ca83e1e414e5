/**
 * CNI 1.1.0's GC and STATUS, 1.1.0 results, the 0.4.0 prevResult fix and `--help`, by the spec's
 * invocation (CNI_* variables and stdin to `node dist/app/main.js`) inside a lab.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { sweepStaleLabs } from '../../src/lab/index.js';
import { CNI_NAME, CniBench, PLUGIN_MAIN, dropHostFilter, hostTraces, requireCniTools } from '../helpers/cni.js';
import { ipJson } from '../helpers/lab.js';

const NET = 'pmi';
const OTHER_NET = 'pmi-other';
let b: CniBench;
let iso: Isolator;

const newId = () => randomBytes(32).toString('hex');
const links = (ns: string) => ipJson(basename(ns), 'link', 'show').map((l: any) => l.ifname);
const loQdiscs = (ns: string) => execFileSync('tc', ['-n', basename(ns), 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' });
const conf = (extra: Record<string, unknown> = {}) => JSON.stringify({ cniVersion: '1.1.0', name: NET, ...b.pluginConf(), ...extra });

beforeAll(async () => {
  sweepStaleLabs();
  requireCniTools();
  b = new CniBench();
  b.writeConflist(NET, [b.pluginConf()], '1.1.0');
  b.writeConflist(OTHER_NET, [b.pluginConf()], '1.1.0'); // another network on the same work_dir
  iso = await b.iso.open();
}, 120_000);

afterAll(async () => {
  await b?.destroy();
});

describe('GC', () => {
  it('removes exactly the CNI attachments not listed (by id and ifname), restores their namespaces, prints nothing', async () => {
    const [keep, stale, otherIf] = [newId(), newId(), newId()];
    const ns: [string, string, string] = [b.runtimeNetns(), b.runtimeNetns(), b.runtimeNetns()];
    const adds = await Promise.all([
      b.cni('add', NET, ns[0], { containerId: keep, args: 'PORTS=[31400-31401]' }),
      b.cni('add', NET, ns[1], { containerId: stale, args: 'PORTS=[31410-31411]' }),
      b.cni('add', NET, ns[2], { containerId: otherIf, ifname: 'net1' }),
    ]);
    adds.forEach((a) => expect(a.status, a.stdout + a.stderr).toBe(0));
    const staleRec = (await iso.get(stale))!;
    const cli = await iso.create({ id: 'cli-gc', ports: '[31420-31421]' }); // not ours: GC leaves it
    // Not this network's: the list GC gets names only its own network's attachments.
    const other = newId();
    const otherNs = b.runtimeNetns();
    const otherAdd = await b.cni('add', OTHER_NET, otherNs, { containerId: other, args: 'PORTS=[31430-31430]' });
    expect(otherAdd.status, otherAdd.stdout + otherAdd.stderr).toBe(0);
    // Made through the SDK with a namespace path, as ADD makes them (no pin, no pid): not ours either.
    const sdkNs = b.runtimeNetns();
    await iso.create({ id: 'sdk-gc', ports: '[31440-31440]', netnsPath: sdkNs });
    try {
      const gc = await b.cni('gc', NET, undefined, {
        valid: [
          { containerID: keep, ifname: 'eth0' },
          { containerID: otherIf, ifname: 'eth0' }, // listed under another interface: still stale
          { containerID: 'gone', ifname: 'eth0' },
        ],
      });
      expect(gc, gc.stderr).toMatchObject({ status: 0, stdout: '' });
      expect((await iso.list()).map((c) => c.id).sort()).toEqual(['cli-gc', 'sdk-gc', keep, other].sort());
      expect(await hostTraces(b.lab.host, staleRec)).toEqual({ veth: false, filters: 0 });
      for (const n of [ns[1], ns[2]]) {
        expect(links(n)).toEqual(['lo']);
        expect(loQdiscs(n)).not.toMatch(/ingress/);
      }
      expect((await b.cni('check', NET, ns[0], { containerId: keep })).status).toBe(0);
      expect(cli.id).toBe('cli-gc');
      // An empty list takes the rest of ours, never the CLI's.
      expect(await b.cni('gc', NET, undefined, { valid: [] })).toMatchObject({ status: 0, stdout: '' });
      expect((await iso.list()).map((c) => c.id).sort()).toEqual(['cli-gc', 'sdk-gc', other].sort());
      expect(links(ns[0])).toEqual(['lo']);
      // The other network's GC takes its own.
      expect(await b.cni('gc', OTHER_NET, undefined, { valid: [] })).toMatchObject({ status: 0, stdout: '' });
      expect((await iso.list()).map((c) => c.id).sort()).toEqual(['cli-gc', 'sdk-gc']);
      expect(links(otherNs)).toEqual(['lo']);
    } finally {
      await iso.destroy('cli-gc');
      await iso.destroy('sdk-gc');
    }
  });

  it('without cni.dev/valid-attachments, or with a malformed one: code 7', async () => {
    const env = { CNI_COMMAND: 'GC', CNI_PATH: b.bin };
    const [none, bad] = await Promise.all([b.exec(env, conf()), b.exec(env, conf({ 'cni.dev/valid-attachments': [{ containerID: 1 }] }))]);
    expect(none).toMatchObject({ status: 1, json: { cniVersion: '1.1.0', code: 7, msg: expect.stringMatching(/valid-attachments/) } });
    expect(bad).toMatchObject({ status: 1, json: { code: 7, msg: expect.stringMatching(/valid-attachments"\[0\]/) } });
  });
});

describe('STATUS', () => {
  it('exit 0 with nothing on stdout when ready; 51 when host objects are missing; 0 again after DEL', async () => {
    const ready = await b.cni('status', NET);
    expect(ready, ready.stdout + ready.stderr).toMatchObject({ status: 0, stdout: '' });
    const id = newId();
    const ns = b.runtimeNetns();
    expect((await b.cni('add', NET, ns, { containerId: id, args: 'PORTS=[31500]' })).status).toBe(0);
    await dropHostFilter(b.lab.host, (await iso.get(id))!);
    const limited = await b.cni('status', NET);
    expect(limited).toMatchObject({ status: 1, error: { code: 51, msg: expect.stringMatching(/host objects are missing/) } });
    expect(limited.error?.details).toMatch(/portmap-isolator recover/);
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
    expect(await b.cni('status', NET)).toMatchObject({ status: 0, stdout: '' });
  });

  it('50 naming what is missing: an unwritable work_dir, a host namespace without eth0', async () => {
    const file = join(b.dir, 'not-a-dir');
    writeFileSync(file, '');
    const env = { CNI_COMMAND: 'STATUS', CNI_PATH: b.bin };
    const wd = await b.exec(env, conf({ work_dir: join(file, 'wd') }));
    expect(wd).toMatchObject({ status: 1, json: { code: 50, msg: `work_dir ${join(file, 'wd')} is not writable` } });
    const bare = b.lab.addNamespace('bare'); // lo only
    const r = spawnSync('ip', ['netns', 'exec', bare, process.execPath, PLUGIN_MAIN], {
      env: { PATH: process.env.PATH, ...env },
      input: conf(),
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ code: 50, msg: expect.stringMatching(/^the host network namespace .*eth0/) });
  });
});

describe('versions', () => {
  it('1.1.0: ADD, CHECK and DEL; the result has no ip versions', async () => {
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', NET, ns, { containerId: id });
    expect(add.status, add.stdout).toBe(0);
    expect(add.json.cniVersion).toBe('1.1.0');
    expect(add.json.ips).toHaveLength(1);
    expect(add.json.ips[0]).not.toHaveProperty('version');
    expect((await b.cni('check', NET, ns, { containerId: id })).status).toBe(0);
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
  });

  it('0.4.0 after loopback: every ip keeps (or gets) its version, never ""', async () => {
    b.writeConflist('old-chain', [{ type: 'loopback' }, b.pluginConf()], '0.4.0');
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', 'old-chain', ns, { containerId: id });
    expect(add.status, add.stdout).toBe(0);
    expect(add.json.ips).toContainEqual({ version: '4', address: '127.0.0.1/8', interface: 0 });
    expect((await b.cni('del', 'old-chain', ns, { containerId: id })).status).toBe(0);
    // As libcni hands loopback's result on: version "".
    const ns2 = b.runtimeNetns();
    const prevResult = { cniVersion: '0.4.0', interfaces: [{ name: 'lo', sandbox: ns2 }], ips: [{ version: '', address: '127.0.0.1/8', interface: 0 }] };
    const id2 = newId();
    const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id2, CNI_NETNS: ns2, CNI_IFNAME: 'eth0', CNI_PATH: b.bin };
    const raw = await b.exec(env, JSON.stringify({ cniVersion: '0.4.0', name: NET, ...b.pluginConf(), prevResult }));
    expect(raw.status, raw.stdout).toBe(0);
    expect(raw.json.ips.map((i: any) => i.version)).toEqual(['4', '4']);
    expect((await b.exec({ ...env, CNI_COMMAND: 'DEL' }, JSON.stringify({ cniVersion: '0.4.0', name: NET, ...b.pluginConf() }))).status).toBe(0);
  });
});

describe('--help', () => {
  it('-h, --help, and no CNI_COMMAND from a terminal: what it is, the fields, how to install; exit 0', async () => {
    const [long, short] = await Promise.all([b.exec({}, '', CNI_NAME, ['--help']), b.exec({}, '', CNI_NAME, ['-h'])]);
    for (const h of [long, short]) {
      expect(h.status).toBe(0);
      expect(h.stdout).toMatch(/^portmap-isolator-cni: a CNI plugin/);
      expect(h.stdout).toMatch(/work_dir/);
      expect(h.stdout).toMatch(/ephemeral_ports_per_container/);
      expect(h.stdout).toMatch(/\/opt\/cni\/bin\/portmap-isolator/);
    }
    // `script` gives it a terminal for stdin.
    const tty = spawnSync('script', ['-qec', `${process.execPath} ${join(b.bin, CNI_NAME)}`, '/dev/null'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
      timeout: 30_000,
    });
    expect(tty.status).toBe(0);
    expect(tty.stdout).toMatch(/portmap-isolator-cni: a CNI plugin/);
  });
});
