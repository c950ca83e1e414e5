/**
 * The isolator's lifecycle against the kernel: pool exhaustion, shaping with real transfers,
 * host-dependent validation, restart and recovery with orphans, a crash at every step of create,
 * and cleanup (twice).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/isolator/errors.js';
import { readHostConfig, writeHostConfig } from '../../src/isolator/host-config.js';
import { arpResolve, icmpEcho } from '../helpers/probe.js';
import { listen, send, sendBytes, stopAllTraffic } from '../helpers/traffic.js';
import { FIXTURE, GATEWAY, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

let lab: IsolatorLab;
beforeAll(() => sweepStaleLabs());
afterEach(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

const hostLinks = () => JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>;
const pmiLinks = () =>
  hostLinks()
    .filter((l) => /^pmi\d+$/.test(l.ifname))
    .map((l) => l.ifname);
/** Our filters in the port tables of the host's eth0 and lo (handles 100:x:y with y ≠ 0). */
function portTableFilters(): string[] {
  const out: string[] = [];
  for (const dev of ['eth0', 'lo']) {
    let text = '';
    try {
      text = execFileSync('tc', ['-n', lab.lab.host, 'filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8' });
    } catch {
      continue; // no ingress qdisc (after cleanup)
    }
    for (const m of text.matchAll(/fh (100:[0-9a-f]+:[0-9a-f]+) /g)) out.push(`${dev} ${m[1]}`);
  }
  return out;
}
const pins = () => (existsSync(join(lab.workDir, 'netns')) ? readdirSync(join(lab.workDir, 'netns')) : []);
const records = () => (existsSync(join(lab.workDir, 'containers')) ? readdirSync(join(lab.workDir, 'containers')).filter((f) => f.endsWith('.json')) : []);

/**
 * Send `bytes` over TCP from namespace `from` to addr:port and return the seconds until the
 * receiver `sink` had all of it (the sender finishes early: its data waits in socket buffers).
 */
async function timedTransfer(from: string, sink: { received(): string }, addr: string, port: number, bytes: number): Promise<number> {
  const t0 = Date.now();
  expect(sendBytes(from, addr, port, bytes)).toBe('ok');
  expect(await until(() => sink.received().length >= bytes, 15_000)).toBe(true);
  expect(sink.received().length).toBe(bytes);
  return (Date.now() - t0) / 1000;
}

describe('the ephemeral pool', () => {
  it('refuses a container when the pool is exhausted, builds nothing, and frees blocks on destroy (TooManyContainers)', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open({ ...FIXTURE, ephemeral_ports_per_container: 512 });
    const c1 = await iso.create({ id: 'c1' });
    expect(c1.ephemeral_ports).toEqual({ begin: 30208, end: 30719 });
    const before = { links: pmiLinks(), filters: portTableFilters(), pins: pins(), records: records() };
    await expect(iso.create({ id: 'c2' })).rejects.toThrow(/Failed to allocate ephemeral ports: no free block of 512 ports/);
    expect({ links: pmiLinks(), filters: portTableFilters(), pins: pins(), records: records() }).toEqual(before);
    expect(await iso.destroy('c1')).toBe(true);
    expect(await iso.destroy('c1')).toBe(false);
    const c2 = await iso.create({ id: 'c2' });
    expect(c2.ephemeral_ports).toEqual({ begin: 30208, end: 30719 });
  });
});

describe('two engines on one work_dir', () => {
  it("each sees the other's creates, updates and destroys (from the change log, or everything when it is gone), and traffic agrees", async () => {
    lab = new IsolatorLab();
    const a = await lab.open({ ...FIXTURE, ephemeral_ports_per_container: 256 }); // 999 ports: 3 blocks
    const b = await lab.open({ ...FIXTURE, ephemeral_ports_per_container: 256 });
    const x = await a.create({ id: 'x', ports: '[31500-31501]' });
    await expect(b.create({ id: 'y', ports: '[31501-31502]' })).rejects.toThrow(/already held/);
    const y = await b.create({ id: 'y', ports: '[31502-31503]' });
    expect(y.ephemeral_ports).not.toEqual(x.ephemeral_ports);
    await expect(a.update('x', '[31500-31510]')).rejects.toThrow(/already held/); // a knows y's ports
    await a.update('x', '[31500-31501,31506-31510]');
    await expect(b.update('y', '[31502-31507]')).rejects.toThrow(/already held/); // b knows x's new ones
    const z = await b.create({ id: 'z', ports: '[31520-31520]' });
    expect(new Set([x, y, z].map((c) => c.ephemeral_ports.begin)).size).toBe(3);
    await expect(b.create({ id: 'w' })).rejects.toThrow(/no free block/); // b knows a's block
    expect(await a.destroy('x')).toBe(true);
    const w = await b.create({ id: 'w', ports: '[31500-31501]' }); // x's ports and block are free for b
    expect(w.ephemeral_ports).toEqual(x.ephemeral_ports);
    // Without the change log, the other engine reloads everything, with the same result.
    rmSync(join(lab.workDir, 'changes.log'));
    expect(await b.destroy('z')).toBe(true);
    expect((await a.list()).map((c) => c.id).sort()).toEqual(['w', 'y']);
    const v = await a.create({ id: 'v', ports: '[31520-31520]' });
    expect(v.ephemeral_ports).toEqual(z.ephemeral_ports);
    // What the kernel does agrees: w's port reaches w.
    const l = await listen(w.netns, 'tcp', 31500);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31500, 'to-w\n')).toBe('ok');
    expect(await until(() => l.received().includes('to-w'))).toBe(true);
    l.stop();
  });
});

describe('a failed create', () => {
  it('leaves no record, no veth, no filters, and the next create works', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    await iso.create({ id: 'ok1', ports: '[31000-31009]' });
    const before = { links: pmiLinks(), filters: portTableFilters(), records: records() };
    // A namespace that is not there is refused before anything is built; a name the kernel refuses fails half-way.
    await expect(iso.create({ id: 'bad', ports: '[31010-31019]', netnsPath: '/run/netns/pmi-lab-no-such-namespace' })).rejects.toThrow(
      '--netnsPath: namespace /run/netns/pmi-lab-no-such-namespace does not exist',
    );
    await expect(iso.create({ id: 'bad', ports: '[31010-31019]', ifname: 'a-name-far-too-long-for-linux' })).rejects.toThrow(
      /^Failed to create container bad: /,
    );
    expect({ links: pmiLinks(), filters: portTableFilters(), records: records() }).toEqual(before);
    expect((await iso.list()).map((c) => c.id)).toEqual(['ok1']);
    const next = await iso.create({ id: 'ok2', ports: '[31010-31019]' });
    const l = await listen(next.netns, 'tcp', 31011);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31011, 'after-failure\n')).toBe('ok');
    expect(await until(() => l.received().includes('after-failure'))).toBe(true);
  });
});

describe('a host set up by an earlier version', () => {
  it('has its shared layout rebuilt when no container uses it, and refuses a create while one does', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    await iso.create({ id: 'old', ports: '[31000-31009]' });
    await iso.close();
    const hostJson = join(lab.workDir, 'host.json');
    const setLayout = (layout: string) => writeFileSync(hostJson, JSON.stringify({ ...JSON.parse(readFileSync(hostJson, 'utf8')), shared: { layout } }));
    setLayout('hashed-v1');
    const again = await lab.open();
    await expect(again.create({ id: 'new', ports: '[31010-31019]' })).rejects.toThrow(
      /set up by an earlier portmap-isolator or for other IPv6 addresses \(shared layout "hashed-v1", now "data-path-v2: [^"]*"\); destroy its containers/,
    );
    expect(await again.destroy('old')).toBe(true);
    // The earlier layout (a one-level port table here) goes; ours is built; traffic reaches the new container.
    const c = await again.create({ id: 'new', ports: '[31010-31019]' });
    expect(JSON.parse(readFileSync(hostJson, 'utf8')).shared.layout).not.toBe('hashed-v1');
    const l = await listen(c.netns, 'tcp', 31012);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31012, 'rebuilt\n')).toBe('ok');
    expect(await until(() => l.received().includes('rebuilt'))).toBe(true);
    l.stop();
  });
});

describe('a namespace the engine does not own', () => {
  it('is left with its name free at once on destroy; the veth pair goes in the background; a new container can follow right away', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    const name = `${lab.lab.id}-own`;
    execFileSync('ip', ['netns', 'add', name]);
    try {
      const path = `/run/netns/${name}`;
      const first = await iso.create({ id: 'p1', ports: '[31000-31009]', netnsPath: path });
      expect(await iso.destroy('p1')).toBe(true);
      // Right after destroy: no eth0 and no host IP in the namespace (a retired pmix… may linger).
      const links = JSON.parse(execFileSync('ip', ['-j', '-n', name, 'addr', 'show'], { encoding: 'utf8' })) as Array<{
        ifname: string;
        addr_info: Array<{ local: string }>;
      }>;
      expect(links.map((l) => l.ifname).filter((n) => !/^pmix\d+$/.test(n))).toEqual(['lo']);
      expect(links.filter((l) => l.ifname !== 'lo').flatMap((l) => l.addr_info.map((a) => a.local))).toEqual([]);
      const second = await iso.create({ id: 'p2', ports: '[31000-31009]', netnsPath: path });
      expect(second.veth).not.toBe(first.veth);
      const l = await listen(path, 'tcp', 31003);
      expect(send(lab.lab.world, 'tcp', HOST_IP, 31003, 'again\n')).toBe('ok');
      expect(await until(() => l.received().includes('again'))).toBe(true);
      l.stop();
      await iso.close(); // waits for the background deletion
      expect(pmiLinks()).toEqual([second.veth]);
      expect(
        (JSON.parse(execFileSync('ip', ['-j', '-n', name, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string }>).map((x) => x.ifname).sort(),
      ).toEqual(['eth0', 'lo']);
    } finally {
      execFileSync('ip', ['netns', 'del', name]);
    }
  });
});

describe('mirrors beyond one filter', () => {
  it('ARP and ICMP answers reach containers in every mirror filter (more containers than one filter holds)', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    const cs = [];
    for (let i = 0; i < 10; i++) cs.push(await iso.create({ id: `m${i}` }));
    for (const c of [cs[0]!, cs[8]!, cs[9]!]) {
      expect(arpResolve(c.netns, 'eth0', GATEWAY).replies, c.id).toBe(1);
      expect(icmpEcho(c.netns, GATEWAY), c.id).toEqual({ sent: 1, received: 1, duplicates: 0 });
    }
    await iso.destroy('m9'); // the second filter shrinks; the others keep working
    expect(arpResolve(cs[8]!.netns, 'eth0', GATEWAY).replies).toBe(1);
  });
});

describe('rate limits (real transfers)', () => {
  it('shapes egress on the host, where a container that deletes every qdisc of its namespace is still held to it', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open({ ...FIXTURE, egress_rate_limit_per_container: '100KB', minimum_egress_rate_limit: '0B' });
    const c = await iso.create({ id: 'c1' });
    const qdiscs = () =>
      JSON.parse(execFileSync('nsenter', [`--net=${c.netns}`, 'tc', '-j', 'qdisc', 'show'], { encoding: 'utf8' })) as Array<{ kind: string; dev: string }>;
    expect(qdiscs().some((q) => q.kind === 'htb')).toBe(false); // nothing to remove in there
    const world = await listen(lab.lab.world, 'tcp', 7100);
    expect(await timedTransfer(c.netns, world, GATEWAY, 7100, 300 * 1024)).toBeGreaterThan(2.2);
    // To the host's own services (through lo) too.
    const onHost = await listen(lab.lab.host, 'tcp', 7102);
    expect(await timedTransfer(c.netns, onHost, HOST_IP, 7102, 300 * 1024)).toBeGreaterThan(2.2);
    // Root in the container (its own steering of the host IP on lo and eth0 goes with its ingress qdiscs) removes every qdisc it has (its steering on lo and eth0 included).
    for (const q of qdiscs()) if (q.kind === 'ingress') execFileSync('nsenter', [`--net=${c.netns}`, 'tc', 'qdisc', 'del', 'dev', q.dev, 'ingress']);
    expect(qdiscs().filter((q) => q.kind !== 'noqueue')).toEqual([]);
    world.stop();
    const again = await listen(lab.lab.world, 'tcp', 7101);
    expect(await timedTransfer(c.netns, again, GATEWAY, 7101, 300 * 1024)).toBeGreaterThan(2.2);
    const [s] = await iso.stats('c1');
    expect(s!.statistics.net_tx_rate_limit).toBe(102400);
    const bw = (s!.statistics.net_traffic_control_statistics as Array<{ id: string; bytes: number }>).find((t) => t.id === 'bw_limit');
    expect(bw!.bytes).toBeGreaterThan(900 * 1024);
    // Someone deletes the host's pairs by hand: recover makes them again, and the container is
    // shaped (and its ping answered, through the echo fan-out) as before.
    expect(await iso.checkHost()).toEqual([]);
    for (const dev of ['pmi-shape', 'pmi-echo']) execFileSync('ip', ['-n', lab.lab.host, 'link', 'del', dev]);
    expect(await iso.checkHost()).toEqual([
      'the echo-reply fan-out (pmi-echo) is missing: recover makes it again',
      'the egress shaper (pmi-shape) is missing: recover makes it again',
    ]);
    const report = await iso.recover();
    expect(await iso.checkHost()).toEqual([]);
    expect(report.errors).toEqual([]);
    // (Its class and classifier, and the class's fq_codel leaf where the kernel has fq_codel.)
    expect(report.repaired).toContainEqual(expect.stringMatching(/^egress shaper: its pair and [23] of its containers' objects put back$/));
    const after = await listen(lab.lab.world, 'tcp', 7103);
    expect(await timedTransfer(c.netns, after, GATEWAY, 7103, 300 * 1024)).toBeGreaterThan(2.2);
    expect(icmpEcho(c.netns, GATEWAY)).toEqual({ sent: 1, received: 1, duplicates: 0 });
    await iso.destroy('c1');
    // Its class went with it; the shaper stays for the next one (cleanup removes it).
    expect(execFileSync('tc', ['-n', lab.lab.host, 'class', 'show', 'dev', 'pmi-shape'], { encoding: 'utf8' })).toBe('');
  });

  it('shapes egress on the container side with egress_shaping_placement=container (Mesos, SmallEgressLimit)', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open({
      ...FIXTURE,
      egress_rate_limit_per_container: '100KB',
      minimum_egress_rate_limit: '0B',
      egress_shaping_placement: 'container',
    });
    const c = await iso.create({ id: 'c1' });
    const sink = await listen(lab.lab.world, 'tcp', 7100);
    const seconds = await timedTransfer(c.netns, sink, GATEWAY, 7100, 300 * 1024);
    expect(seconds).toBeGreaterThan(2.2); // 300 KB at 100 KB/s, less the first burst
    const cls = JSON.parse(execFileSync('nsenter', [`--net=${c.netns}`, 'tc', '-j', 'qdisc', 'show', 'dev', 'eth0'], { encoding: 'utf8' }));
    expect(cls.some((q: { kind: string; handle: string }) => q.kind === 'htb' && q.handle === '1:')).toBe(true);
    const [s] = await iso.stats('c1');
    expect(s!.statistics.net_tx_rate_limit).toBe(102400);
    const bw = (s!.statistics.net_traffic_control_statistics as Array<{ id: string; bytes: number }>).find((t) => t.id === 'bw_limit');
    expect(bw!.bytes).toBeGreaterThan(300 * 1024);
  });

  it('shapes ingress on the host veth to the configured rate (SmallIngressLimit)', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open({ ...FIXTURE, ingress_rate_limit_per_container: '100KB', minimum_ingress_rate_limit: '0B' });
    const c = await iso.create({ id: 'c1', ports: '[31000-31009]' });
    const sink = await listen(c.netns, 'tcp', 31001);
    const seconds = await timedTransfer(`/run/netns/${lab.lab.world}`, sink, HOST_IP, 31001, 300 * 1024);
    expect(seconds).toBeGreaterThan(2.2);
    const classes = execFileSync('tc', ['-n', lab.lab.host, 'class', 'show', 'dev', 'pmi1'], { encoding: 'utf8' });
    expect(classes).toMatch(/class htb 1:1 root .*rate 819200bit/);
    const [s] = await iso.stats('c1');
    expect(s!.statistics.net_rx_rate_limit).toBe(102400);
    expect((s!.statistics.net_traffic_control_statistics as Array<{ id: string }>).map((t) => t.id)).toContain('ingress_bw_limit');
  });
});

describe('validation against the host', () => {
  it("refuses an ephemeral pool that overlaps the host's ip_local_port_range, naming --resources", async () => {
    lab = new IsolatorLab();
    execFileSync('ip', ['netns', 'exec', lab.lab.host, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=30500 40000']);
    const err = await lab.open().catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.flag).toBe('resources');
    expect(err.message).toMatch(/intersect with the ephemeral ports used by the host \[30500,40001\)/);
  });
  it('refuses a missing public interface, naming --eth0_name', async () => {
    lab = new IsolatorLab();
    const err = await lab.open({ ...FIXTURE, eth0_name: 'nope0' }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toBe('--eth0_name: The public interface nope0 does not exist');
  });
  it('refuses unique egress flows up front on a kernel without fq_codel, and accepts them where it exists', async () => {
    lab = new IsolatorLab();
    const hasFqCodel = spawnSync('tc', ['-n', lab.lab.host, 'qdisc', 'add', 'dev', 'lo', 'root', 'fq_codel']).status === 0;
    if (hasFqCodel) execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'del', 'dev', 'lo', 'root']);
    const r = await lab.open({ ...FIXTURE, egress_unique_flow_per_container: true }).then(
      () => 'opened',
      (e: Error) => e,
    );
    if (hasFqCodel) expect(r).toBe('opened');
    else {
      expect(r).toBeInstanceOf(ConfigError);
      expect((r as ConfigError).message).toMatch(/^--egress_unique_flow_per_container: .*fq_codel/);
    }
  });
});

describe('restart and recovery', () => {
  it('recovers live containers after a restart; traffic keeps flowing; orphans are removed', async () => {
    lab = new IsolatorLab();
    const first = await lab.open();
    const c = await first.create({ id: 'live', ports: '[31000-31009]' });
    await first.close(); // the agent "restarts"
    // Orphans: a veth named like ours, a namespace pin and a port-table filter nobody owns.
    execFileSync('ip', ['-n', lab.lab.host, 'link', 'add', 'pmi999', 'type', 'veth', 'peer', 'name', 'pmi999p']);
    execFileSync('ip', ['netns', 'add', 'pmi-orphan-tmp']);
    execFileSync('touch', [join(lab.workDir, 'netns', 'ghost')]);
    execFileSync('mount', ['--bind', '/run/netns/pmi-orphan-tmp', join(lab.workDir, 'netns', 'ghost')]);
    execFileSync('ip', ['netns', 'del', 'pmi-orphan-tmp']);
    // (one in each level of the port tables: a 256-port block's slot and a single port's)
    execFileSync('tc', [
      '-n',
      lab.lab.host,
      'filter',
      'add',
      'dev',
      'eth0',
      'parent',
      'ffff:',
      'prio',
      '770',
      'handle',
      '100:7a:ffe',
      'protocol',
      'ip',
      'u32',
      'ht',
      '100:7a:',
      'match',
      'ip',
      'dport',
      '31232',
      '0xff00',
    ]);
    execFileSync('tc', [
      '-n',
      lab.lab.host,
      'filter',
      'add',
      'dev',
      'lo',
      'parent',
      'ffff:',
      'prio',
      '770',
      'handle',
      '27a:0:ffe',
      'protocol',
      'ip',
      'u32',
      'ht',
      '27a:0:',
      'match',
      'ip',
      'dport',
      '31234',
      '0xffff',
    ]);
    const second = await lab.open();
    const report = await second.recover();
    expect(report.recovered).toEqual(['live']);
    expect(report.orphans.veths).toEqual(['pmi999']);
    expect(report.orphans.netns).toEqual([join(lab.workDir, 'netns', 'ghost')]);
    expect(report.orphans.filters).toEqual(['eth0 100:7a:ffe', 'lo 27a::ffe']); // formatted as tc prints it
    expect(report.errors).toEqual([]);
    expect(await until(() => !pmiLinks().includes('pmi999'))).toBe(true);
    const l = await listen(c.netns, 'tcp', 31005);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31005, 'still-there\n')).toBe('ok');
    expect(await until(() => l.received().includes('still-there'))).toBe(true);
    expect((await second.list()).map((x) => x.id)).toEqual(['live']);
  });

  it.each(['plan+checkpoint', 'netns', 'host batch', 'host sysctl', 'container sysctls+socket', 'container batch', 'checkpoint'])(
    'a kill right after "%s" of create leaves nothing recover cannot find and remove',
    async (phase) => {
      lab = new IsolatorLab();
      const iso = await lab.open();
      await iso.create({ id: 'keep', ports: '[31000-31009]' }); // sets up the host first
      const keep = { links: pmiLinks(), filters: portTableFilters() };
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), lab.lab.host, lab.workDir, 'crashy'], {
        env: { ...process.env, PORTMAP_ISOLATOR_CRASH_AT: phase },
        timeout: 30_000,
        encoding: 'utf8',
      });
      expect(r.signal).toBe('SIGKILL');
      const report = await iso.recover();
      if (phase === 'checkpoint')
        expect(report.recovered).toContain('crashy'); // complete: kept
      else expect(report.cleaned.map((c) => c.id)).toEqual(['crashy']);
      expect(report.errors).toEqual([]);
      if (phase === 'checkpoint') await iso.destroy('crashy');
      await until(() => pmiLinks().length === keep.links.length);
      expect(pmiLinks()).toEqual(keep.links);
      expect(portTableFilters()).toEqual(keep.filters);
      expect(records()).toEqual(['keep.json']);
      expect(pins()).toEqual(['keep']);
    },
  );
});

describe('a crash while a create takes a spare of the warm pool', () => {
  it.each(['netns', 'host batch', 'container batch'])('a kill right after "%s" leaves nothing recover cannot find and remove', async (phase) => {
    lab = new IsolatorLab();
    const iso = await lab.open(FIXTURE, [], { warmPool: 1 });
    await iso.create({ id: 'keep', ports: '[31000-31009]' });
    const spares = () => readdirSync(join(lab.workDir, 'spares')).filter((f) => f.endsWith('.json'));
    expect(await until(() => spares().length === 1 && pins().some((p) => p.startsWith('.spare-')), 5000)).toBe(true);
    await iso.close(); // no refill of ours in the way
    const keepLinks = pmiLinks().filter((l) => (pins().includes(`.spare-${l.slice(3)}`) ? false : true));
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), lab.lab.host, lab.workDir, 'crashy'], {
      env: { ...process.env, PORTMAP_ISOLATOR_CRASH_AT: phase, PMI_TEST_WARM_POOL: '1' },
      timeout: 30_000,
      encoding: 'utf8',
    });
    expect(r.signal).toBe('SIGKILL');
    const again = await lab.open();
    const report = await again.recover();
    expect(report.cleaned.map((c) => c.id)).toEqual(['crashy']);
    expect(report.errors).toEqual([]);
    await until(() => pmiLinks().length === keepLinks.length);
    expect(pmiLinks()).toEqual(keepLinks);
    expect(records()).toEqual(['keep.json']);
    expect(pins()).toEqual(['keep']);
    expect(spares()).toEqual([]);
  });
});

describe('interrupted operations are finished by the next change, without a recover', () => {
  const crash = (phase: string, id: string, ports?: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), lab.lab.host, lab.workDir, id, ...(ports ? [ports] : [])], {
      env: { ...process.env, PORTMAP_ISOLATOR_CRASH_AT: phase },
      timeout: 30_000,
    });

  it('a create killed half-way does not break the next create in the same mirror chunk', async () => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    await iso.create({ id: 'first', ports: '[31000-31009]' });
    expect(crash('host batch', 'torn').signal).toBe('SIGKILL');
    const next = await iso.create({ id: 'second', ports: '[31010-31019]' });
    expect((await iso.list()).map((c) => c.id).sort()).toEqual(['first', 'second']);
    expect(records().sort()).toEqual(['first.json', 'second.json']);
    const l = await listen(next.netns, 'tcp', 31012);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31012, 'ok-after-crash\n')).toBe('ok');
    expect(await until(() => l.received().includes('ok-after-crash'))).toBe(true);
  });

  it.each([
    ['add', [[31000, 31009]]],
    ['adopt', [[31000, 31019]]],
  ] as const)('an update killed after "%s" is rolled to a consistent state: ports %j, and exactly their filters', async (phase, expected) => {
    lab = new IsolatorLab();
    const iso = await lab.open();
    const c = await iso.create({ id: 'u', ports: '[31000-31009]' });
    expect(crash(phase, 'u', '[31000-31019]').signal).toBe('SIGKILL');
    const report = await iso.recover();
    expect(report.errors).toEqual([]);
    const after = (await iso.list())[0]!;
    expect(after.ports).toEqual(expected);
    // Traffic agrees with the recorded ports: 31015 reaches the container only if it owns it.
    const l = await listen(c.netns, 'tcp', 31015);
    const r = send(lab.lab.world, 'tcp', HOST_IP, 31015, 'probe\n', { timeoutMs: phase === 'add' ? 1000 : 4000 });
    if (phase === 'add')
      expect(r).toMatch(/^fail: timeout/); // a managed port nobody holds: dropped
    else expect(await until(() => l.received().includes('probe'))).toBe(true);
    // and the update can be done again
    expect((await iso.update('u', '[31000-31029]')).ports).toEqual([[31000, 31029]]);
  });
});

describe('cleanup', () => {
  it('removes every container and every host-side change, and is idempotent', async () => {
    lab = new IsolatorLab();
    const sysctl = (k: string) => execFileSync('ip', ['netns', 'exec', lab.lab.host, 'sysctl', '-n', k], { encoding: 'utf8' }).trim();
    const before = {
      rp: sysctl('net.ipv4.conf.all.rp_filter'),
      local: sysctl('net.ipv4.conf.lo.route_localnet'),
      mtu: JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show', 'lo'], { encoding: 'utf8' }))[0].mtu,
    };
    const iso = await lab.open();
    await iso.create({ id: 'a', ports: '[31000-31009]' });
    await iso.create({ id: 'b', ports: '[31010-31019]' });
    expect(sysctl('net.ipv4.conf.lo.route_localnet')).toBe('1');
    const r = await iso.cleanup();
    expect(r.destroyed.sort()).toEqual(['a', 'b']);
    expect(r.errors).toEqual([]);
    expect(await until(() => pmiLinks().length === 0)).toBe(true);
    expect(execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'show', 'dev', 'eth0'], { encoding: 'utf8' })).not.toMatch(/ingress/);
    expect(execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' })).not.toMatch(/ingress/);
    expect({
      rp: sysctl('net.ipv4.conf.all.rp_filter'),
      local: sysctl('net.ipv4.conf.lo.route_localnet'),
      mtu: JSON.parse(execFileSync('ip', ['-j', '-n', lab.lab.host, 'link', 'show', 'lo'], { encoding: 'utf8' }))[0].mtu,
    }).toEqual(before);
    expect(records()).toEqual([]);
    expect(pins()).toEqual([]);
    const again = await iso.cleanup();
    expect(again).toEqual({ destroyed: [], errors: [] });
  });

  it("lets go of the lock between containers: another process's create gets in, and is kept with the host's setup", async () => {
    lab = new IsolatorLab();
    const a = await lab.open();
    const b = await lab.open(); // another engine: its own lock file description, as another process has
    writeHostConfig(lab.workDir, FIXTURE); // as the CLI stores it before its first create
    for (let i = 0; i < 30; i++) await a.create({ id: `c${i}` });
    const order: string[] = [];
    const cleaning = a.cleanup().then((r) => (order.push('cleanup'), r));
    let leftWhenLateWasIn = -1;
    const late = b.create({ id: 'late' }).then(() => {
      order.push('late');
      leftWhenLateWasIn = records().filter((f) => /^c\d+\.json$/.test(f)).length;
    });
    const [report] = await Promise.all([cleaning, late]);
    // With the lock held for all of it, the create would have waited for the whole cleanup.
    expect(order).toEqual(['late', 'cleanup']);
    expect(leftWhenLateWasIn).toBeGreaterThan(10);
    expect(report.errors).toEqual([]);
    expect(report.destroyed.sort()).toEqual(Array.from({ length: 30 }, (_, i) => `c${i}`).sort());
    // The late container was made after cleanup began: it stays, and works.
    expect(records()).toEqual(['late.json']);
    expect(execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' })).toMatch(/ingress/);
    expect(await a.checkHost()).toEqual([]);
    // ...and so does the configuration it was built with, until nothing is left.
    expect(readHostConfig(lab.workDir)?.flags).toEqual(FIXTURE);
    expect(await b.cleanup()).toEqual({ destroyed: ['late'], errors: [] });
    expect(execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' })).not.toMatch(/ingress/);
    expect(readHostConfig(lab.workDir)).toBeUndefined();
  });
});

it('keeps a pre-existing ingress qdisc on the host eth0 and its filters through cleanup', async () => {
  lab = new IsolatorLab();
  execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'add', 'dev', 'eth0', 'ingress']);
  execFileSync('tc', [
    '-n',
    lab.lab.host,
    'filter',
    'add',
    'dev',
    'eth0',
    'parent',
    'ffff:',
    'prio',
    '10',
    'protocol',
    'ip',
    'u32',
    'match',
    'ip',
    'dport',
    '9',
    '0xffff',
  ]);
  const iso = await lab.open();
  await iso.create({ id: 'a' });
  await iso.cleanup();
  const left = execFileSync('tc', ['-n', lab.lab.host, 'filter', 'show', 'dev', 'eth0', 'ingress'], { encoding: 'utf8' });
  expect(left).toMatch(/pref 10 u32/);
  expect(left).not.toMatch(/pref (258|514|770)/);
  writeFileSync('/dev/null', '');
});
