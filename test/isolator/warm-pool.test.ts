/**
 * The warm pool: spares (a pinned namespace with its veth pair and the container-independent
 * setup) made in the background, taken by creates, recovered and cleaned up like everything else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createNetns } from '../../src/netlink/index.js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { compareTopologies, containerTopology } from '../../bench/equivalence.js';
import { FIXTURE, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

let lab: IsolatorLab;
let iso: Isolator;
const warnings: string[] = [];

const spareFiles = () => (existsSync(join(lab.workDir, 'spares')) ? readdirSync(join(lab.workDir, 'spares')).filter((f) => f.endsWith('.json')) : []);
const readySpares = () => spareFiles().filter((f) => execFileSync('cat', [join(lab.workDir, 'spares', f)], { encoding: 'utf8' }).includes('"ready"'));
const hostVeths = () =>
  (JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>)
    .map((l) => l.ifname)
    .filter((n) => /^pmi\d+$/.test(n))
    .sort();
const pins = () => readdirSync(join(lab.workDir, 'netns')).sort();

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open(FIXTURE, warnings, { warmPool: 2 });
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

describe('the warm pool', () => {
  it('is filled in the background after a create, and a create takes a spare', async () => {
    const first = await iso.create({ id: 'w1', ports: '[31000-31009]' });
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    const spareVeths = hostVeths().filter((v) => v !== first.veth);
    expect(spareVeths).toHaveLength(2);
    expect(pins().filter((p) => p.startsWith('.spare-'))).toHaveLength(2);

    const second = await iso.create({ id: 'w2', ports: '[31010-31019]' });
    expect(spareVeths).toContain(second.veth); // made from a spare
    expect(second.netns).toBe(join(lab.workDir, 'netns', `.spare-${second.veth.slice(3)}`)); // the spare's pin is the container's now
    expect(pins().filter((p) => p.startsWith('.spare-'))).toHaveLength(2);
    // Whole: its port steered to it, its ephemeral block, IPv6 off, the host IP on eth0.
    const l = await listen(second.netns, 'tcp', 31012);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31012, 'from-spare\n')).toBe('ok');
    expect(await until(() => l.received().includes('from-spare'))).toBe(true);
    l.stop();
    const inNs = (file: string) => execFileSync('nsenter', [`--net=${second.netns}`, 'cat', file], { encoding: 'utf8' }).trim();
    expect(inNs('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number)).toEqual([second.ephemeral_ports.begin, second.ephemeral_ports.end]);
    expect(inNs('/proc/sys/net/ipv6/conf/eth0/disable_ipv6')).toBe('1');
    const addrs = JSON.parse(execFileSync('nsenter', [`--net=${second.netns}`, 'ip', '-j', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{
      addr_info: Array<{ local: string }>;
    }>;
    expect(addrs[0]!.addr_info.map((a) => a.local)).toEqual([HOST_IP]);
    // Refilled.
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('a container made from a spare has exactly the objects of one made without the pool', async () => {
    const plain = await lab.open(FIXTURE, warnings); // same work_dir, no pool
    const snapshot = (info: { netns: string; veth: string }) => containerTopology(lab.lab.path(lab.lab.host), info, iso.host);
    const a = await plain.create({ id: 'eq-plain', ports: '[31040-31049]' });
    const want = await snapshot(a);
    await plain.destroy('eq-plain');
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    const b = await iso.create({ id: 'eq-spare', ports: '[31040-31049]' });
    expect(b.netns).toContain('.spare-'); // it did take a spare
    expect(b.ephemeral_ports).toEqual(a.ephemeral_ports);
    const got = await snapshot(b);
    expect(Object.values(got).flat().length).toBeGreaterThan(40);
    expect(compareTopologies(got, want)).toBe('');
    await iso.destroy('eq-spare');
    await plain.close();
  });

  it('recover removes a spare made by an older version (or for other host facts); a create never takes one', async () => {
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    const [victim] = readySpares().sort();
    const path = join(lab.workDir, 'spares', victim!);
    const old = JSON.parse(readFileSync(path, 'utf8')) as { contents?: string; veth: string; netns: string };
    delete old.contents;
    writeFileSync(path, JSON.stringify(old));
    await iso.idle(); // its refill is over: nothing of it runs while the other engine works
    // Another engine on the same work_dir (as after a restart) finds the spares on disk only.
    const other = await lab.open(FIXTURE, warnings, { warmPool: 2 });
    const c = await other.create({ id: 'not-old', ports: '[31050-31050]' });
    expect(c.netns).toContain('.spare-');
    expect(c.veth).not.toBe(old.veth);
    const taken = statSync(c.netns); // nsfs dev + inode: the namespace itself (the first engine made that spare, and holds it open)
    const report = await other.recover();
    expect(report.errors).toEqual([]);
    expect(hostVeths()).not.toContain(old.veth);
    expect(existsSync(old.netns)).toBe(false);
    await other.destroy('not-old');
    await other.close();
    // The first engine lets go of what it held for the spares the other one took or removed.
    const holdsTaken = () =>
      readdirSync('/proc/self/fd').some((fd) => {
        try {
          const st = statSync(`/proc/self/fd/${fd}`);
          return st.dev === taken.dev && st.ino === taken.ino;
        } catch {
          return false;
        }
      });
    expect(holdsTaken()).toBe(true);
    await iso.create({ id: 'after-other', ports: '[31051-31051]' });
    expect(holdsTaken()).toBe(false);
    await iso.destroy('after-other');
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
  });

  it('recover removes a half-made spare and one that lost its veth; keeps the whole ones', async () => {
    const before = readySpares();
    expect(before).toHaveLength(2);
    // Records like a real spare's (same host facts and contents): one 'making' whose veth exists
    // (the process died mid-way), one 'ready' whose veth is gone; and a spare pin no record names
    // (a crash between a create taking a spare and its first checkpoint).
    const real = JSON.parse(readFileSync(join(lab.workDir, 'spares', before[0]!), 'utf8')) as Record<string, unknown>;
    execFileSync('ip', ['-n', lab.lab.host, 'link', 'add', 'pmi900', 'index', '1000900', 'type', 'veth', 'peer', 'name', 'pmi900p']);
    const rec = (seq: number, phase: string) => ({
      ...real,
      seq,
      phase,
      netns: join(lab.workDir, 'netns', `.spare-${seq}`),
      veth: `pmi${seq}`,
      vethIndex: 1_000_000 + seq,
    });
    writeFileSync(join(lab.workDir, 'spares', '900.json'), JSON.stringify(rec(900, 'making')));
    writeFileSync(join(lab.workDir, 'spares', '901.json'), JSON.stringify(rec(901, 'ready')));
    const strayPin = join(lab.workDir, 'netns', '.spare-902');
    createNetns(strayPin).close();
    // A CNI STATUS probe's scratch namespace, left by a process killed mid-probe (no such pid).
    const statusPin = join(lab.workDir, 'netns', '.status-4194303');
    createNetns(statusPin).close();
    const report = await iso.recover();
    expect(report.errors).toEqual([]);
    expect(spareFiles().sort()).toEqual([...before].sort());
    expect(hostVeths()).not.toContain('pmi900');
    expect(report.orphans.veths).toEqual([]); // the spares' veths are owned, not orphans
    expect(report.orphans.netns.sort()).toEqual([statusPin, strayPin].sort());
    expect(existsSync(strayPin)).toBe(false);
    expect(existsSync(statusPin)).toBe(false);
  });

  it('a create racing a cleanup succeeds, and the pool it restarts refills without a warning', async () => {
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    const before = warnings.length;
    // cleanup pauses the pool; the create, queued behind it, lets it refill again.
    const [report, c] = await Promise.all([iso.cleanup(), iso.create({ id: 'racer', ports: '[31060-31060]' })]);
    expect(report.errors).toEqual([]);
    expect(c.id).toBe('racer');
    await iso.idle();
    expect(warnings.slice(before)).toEqual([]);
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    expect(await iso.destroy('racer')).toBe(true);
  });

  it('drainPool (a stopping agent) removes every spare within its time, keeps the containers, and no spare is made after it', async () => {
    const kept = await iso.create({ id: 'kept', ports: '[31070-31070]' });
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    await iso.idle();
    const spares = hostVeths().filter((v) => v !== kept.veth);
    expect(spares).toHaveLength(2);
    // No time at all: nothing is removed, and what is left is said.
    const none = await iso.drainPool(0);
    expect(none.removed).toEqual([]);
    expect(none.left.sort()).toEqual(spares);
    expect(hostVeths()).toEqual([kept.veth, ...spares].sort());
    // Time enough: all gone (records, pins, veths); the container stays whole.
    const all = await iso.drainPool();
    expect(all).toEqual({ removed: expect.arrayContaining(spares), left: [], errors: [] });
    expect(spareFiles()).toEqual([]);
    expect(pins().filter((p) => p.startsWith('.spare-') && join(lab.workDir, 'netns', p) !== kept.netns)).toEqual([]);
    expect(hostVeths()).toEqual([kept.veth]);
    const l = await listen(kept.netns, 'tcp', 31070);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31070, 'after-drain\n')).toBe('ok');
    expect(await until(() => l.received().includes('after-drain'))).toBe(true);
    l.stop();
    // The pool stays empty: creates and destroys refill it no more.
    expect(await iso.destroy('kept')).toBe(true);
    await iso.idle();
    expect(spareFiles()).toEqual([]);
  });

  it('cleanup removes the spares too, and makes no more', async () => {
    const report = await iso.cleanup();
    expect(report.errors).toEqual([]);
    await new Promise((r) => setTimeout(r, 300));
    expect(spareFiles()).toEqual([]);
    expect(hostVeths()).toEqual([]);
    expect(pins()).toEqual([]);
  });
});
