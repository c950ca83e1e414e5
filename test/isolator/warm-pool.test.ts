/**
 * The warm pool: spares (a pinned namespace with its veth pair and the container-independent
 * setup) made in the background, taken by creates, recovered and cleaned up like everything else.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { sweepStaleLabs } from '../helpers/lab.js';
import { FIXTURE, HOST_IP, IsolatorLab } from '../helpers/isolator-lab.js';
import { listen, send, stopAllTraffic, until } from '../helpers/traffic.js';

let lab: IsolatorLab;
let iso: Isolator;
const warnings: string[] = [];

const spareFiles = () => (existsSync(join(lab.workDir, 'spares')) ? readdirSync(join(lab.workDir, 'spares')).filter((f) => f.endsWith('.json')) : []);
const readySpares = () => spareFiles().filter((f) => execFileSync('cat', [join(lab.workDir, 'spares', f)], { encoding: 'utf8' }).includes('"ready"'));
const hostVeths = () => (JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((l) => l.ifname).filter((n) => /^pmi\d+$/.test(n)).sort();
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
    expect(second.netns).toBe(join(lab.workDir, 'netns', 'w2'));
    expect(pins()).not.toContain(`.spare-${second.veth.slice(3)}`); // its pin moved to the container's name
    // Whole: its port steered to it, its ephemeral block, IPv6 off, the host IP on eth0.
    const l = await listen(second.netns, 'tcp', 31012);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31012, 'from-spare\n')).toBe('ok');
    expect(await until(() => l.received().includes('from-spare'))).toBe(true);
    l.stop();
    const inNs = (file: string) => execFileSync('nsenter', [`--net=${second.netns}`, 'cat', file], { encoding: 'utf8' }).trim();
    expect(inNs('/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number)).toEqual([second.ephemeral_ports.begin, second.ephemeral_ports.end]);
    expect(inNs('/proc/sys/net/ipv6/conf/eth0/disable_ipv6')).toBe('1');
    const addrs = JSON.parse(execFileSync('nsenter', [`--net=${second.netns}`, 'ip', '-j', '-4', 'addr', 'show', 'eth0'], { encoding: 'utf8' })) as Array<{ addr_info: Array<{ local: string }> }>;
    expect(addrs[0]!.addr_info.map((a) => a.local)).toEqual([HOST_IP]);
    // Refilled.
    expect(await until(() => readySpares().length === 2, 5000)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('recover removes a half-made spare and one that lost its veth; keeps the whole ones', async () => {
    const before = readySpares();
    expect(before).toHaveLength(2);
    // A spare recorded 'making' whose veth exists (the process died mid-way), and a 'ready' one whose veth is gone.
    execFileSync('ip', ['-n', lab.lab.host, 'link', 'add', 'pmi900', 'index', '1000900', 'type', 'veth', 'peer', 'name', 'pmi900p']);
    const rec = (seq: number, phase: string) => ({ seq, phase, netns: join(lab.workDir, 'netns', `.spare-${seq}`), veth: `pmi${seq}`, vethIndex: 1_000_000 + seq, ifname: 'eth0', address: '00:00:00:00:00:00', mtu: 1500, createdAt: new Date().toISOString() });
    writeFileSync(join(lab.workDir, 'spares', '900.json'), JSON.stringify(rec(900, 'making')));
    writeFileSync(join(lab.workDir, 'spares', '901.json'), JSON.stringify(rec(901, 'ready')));
    const report = await iso.recover();
    expect(report.errors).toEqual([]);
    expect(spareFiles().sort()).toEqual([...before].sort());
    expect(hostVeths()).not.toContain('pmi900');
    expect(report.orphans.veths).toEqual([]); // the spares' veths are owned, not orphans
    expect(report.orphans.netns).toEqual([]);
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
