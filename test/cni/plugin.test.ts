/**
 * The CNI plugin (`node dist/app/main.js`) invoked as the spec says, by the bench acting as the
 * runtime (test/helpers/cni.ts), inside a lab: in the lab's host namespace, against runtime-style
 * namespaces made with `ip netns add`. Cache, NETCONFPATH and work_dir are private temp dirs.
 * (test/cni/libcni/run.sh drives the same plugin through a real libcni client, outside npm test.)
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { dumpFilters } from '../../src/isolator/engine.js';
import { Rtnl } from '../../src/rtnl/index.js';
import { CniBench, hostTraces, requireCniTools } from '../helpers/cni.js';
import { ip, ipJson } from '../helpers/lab.js';
import { listen, peerPortServer, send, stopAllTraffic } from '../helpers/traffic.js';
import { GATEWAY, HOST_IP, sweepStaleLabs, until } from '../../src/lab/index.js';

const NET = 'pmi';
const ADDRESS = `${HOST_IP}/24`;

let b: CniBench;
let iso: Isolator;
let hostMac: string;

const newId = () => randomBytes(32).toString('hex'); // what runtimes use: 64 hex chars
const nsName = (path: string) => basename(path);
/** The result ADD prints for a container whose host veth is `veth`, in namespace `ns`. */
const addResult = (veth: string, ns: string) => ({
  cniVersion: '1.0.0',
  interfaces: [
    { name: veth, mac: hostMac },
    { name: 'eth0', mac: hostMac, sandbox: ns },
  ],
  ips: [{ address: ADDRESS, gateway: GATEWAY, interface: 1 }],
  routes: [{ dst: '0.0.0.0/0', gw: GATEWAY }],
  dns: {},
});
const inNs = (path: string, ...cmd: string[]) => execFileSync('ip', ['netns', 'exec', nsName(path), ...cmd], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  sweepStaleLabs();
  requireCniTools();
  b = new CniBench();
  b.writeConflist(NET, [b.pluginConf()]);
  iso = await b.iso.open();
  hostMac = ipJson(b.lab.host, 'link', 'show', 'eth0')[0].address;
}, 120_000);

afterAll(async () => {
  stopAllTraffic();
  await b?.destroy();
});

describe('VERSION', () => {
  it('reports 0.4.0, 1.0.0 and 1.1.0 in the version asked (1.0.0 without one)', async () => {
    const [v11, v04, bare] = await Promise.all([
      b.exec({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"1.1.0"}'),
      b.exec({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}'),
      b.exec({ CNI_COMMAND: 'VERSION' }, ''),
    ]);
    expect(v11.stderr).toBe('');
    expect(v11).toMatchObject({ status: 0, stdout: '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n' });
    expect(v04).toMatchObject({ status: 0, json: { cniVersion: '0.4.0', supportedVersions: ['0.4.0', '1.0.0', '1.1.0'] } });
    expect(bare).toMatchObject({ status: 0, json: { cniVersion: '1.0.0' } });
  });
});

describe('ADD, CHECK, DEL', () => {
  it('ADD isolates the runtime namespace, CHECK passes and catches breakage, DEL removes everything (twice)', async () => {
    const id = newId();
    const ns = b.runtimeNetns();
    const rangeBefore = inNs(ns, 'cat', '/proc/sys/net/ipv4/ip_local_port_range');
    const rulesBefore = inNs(ns, 'ip', 'rule', 'show');
    const add = await b.cni('add', NET, ns, {
      containerId: id,
      args: 'K8S_POD_NAME=web;PORTS=[31010-31019];IgnoreUnknown=1',
      capArgs: {
        portMappings: [
          { hostPort: 31005, containerPort: 31005, protocol: 'tcp' },
          { hostPort: 31005, containerPort: 31005, protocol: 'udp' },
        ],
      },
    });
    expect(add.status, add.stderr).toBe(0);
    const rec = (await iso.get(id))!;
    expect(rec).toMatchObject({ phase: 'ready', netns: ns, ownsNetns: false, ifname: 'eth0' });
    expect(add.json).toEqual(addResult(rec.veth, ns));
    expect(existsSync(b.cacheFile(NET, id))).toBe(true);

    // The kernel: the runtime's namespace has eth0 with the host's IP, MAC and route; its ephemeral block.
    const eth0 = ipJson(nsName(ns), 'addr', 'show', 'eth0')[0];
    expect(eth0.address).toBe(hostMac);
    expect(eth0.addr_info.find((a: any) => a.family === 'inet')).toMatchObject({ local: HOST_IP, prefixlen: 24 });
    expect(ipJson(nsName(ns), 'route', 'show', 'default')[0].gateway).toBe(GATEWAY);
    expect(inNs(ns, 'cat', '/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number)).toEqual([rec.ephemeralPorts.begin, rec.ephemeralPorts.end]);
    expect(ipJson(b.lab.host, 'link', 'show', rec.veth)[0].flags).toContain('UP');
    expect(await hostTraces(b.lab.host, rec)).toEqual({ veth: true, filters: rec.hostFilters.length });

    // The shared state: the engine (as the CLI and the agent) sees it.
    expect((await iso.list()).find((c) => c.id === id)).toEqual({
      id,
      netns: ns,
      veth: rec.veth,
      ephemeral_ports: rec.ephemeralPorts,
      ports: [
        [31005, 31005],
        [31010, 31019],
      ],
    });
    expect((await iso.stats(id))[0]!.container_id).toBe(id);

    const check = async () => b.cni('check', NET, ns, { containerId: id });
    expect((await check()).status).toBe(0);

    // Broken sysctl, then restored.
    inNs(ns, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=40000 40100');
    let c = await check();
    expect(c.status).toBe(1);
    expect(c.error).toMatchObject({ code: 101, msg: expect.stringMatching(/ip_local_port_range .* is 40000-40100/) });
    inNs(ns, 'sysctl', '-qw', `net.ipv4.ip_local_port_range=${rec.ephemeralPorts.begin} ${rec.ephemeralPorts.end}`);
    expect((await check()).status).toBe(0);

    // One of the rules that keep its traffic to its own ports inside it, deleted, then put back.
    const ownPorts = `pref 110 iif lo ipproto tcp dport ${rec.ephemeralPorts.begin}-${rec.ephemeralPorts.end} lookup local`.split(' ');
    inNs(ns, 'ip', 'rule', 'del', ...ownPorts);
    c = await check();
    expect(c.error).toMatchObject({ code: 101, msg: expect.stringMatching(/1 of the \d+ routing rules that keep its traffic to itself are missing/) });
    inNs(ns, 'ip', 'rule', 'add', ...ownPorts);
    expect((await check()).status).toBe(0);

    // Host veth down.
    ip(b.lab.host, 'link', 'set', rec.veth, 'down');
    c = await check();
    expect(c.error).toMatchObject({ code: 101, msg: expect.stringMatching(new RegExp(`host veth ${rec.veth} is down`)) });
    ip(b.lab.host, 'link', 'set', rec.veth, 'up');

    // The container's default route gone, and one of its host port filters gone.
    ip(nsName(ns), 'route', 'del', 'default');
    const r = Rtnl.open(b.lab.host);
    try {
      const eth0Index = (await r.links.get('eth0')).index;
      const victim = (await dumpFilters(r.session, eth0Index, 0xffff0000)).find((f) => f.handle === rec.hostFilters.find((h) => h.dev === 'eth0')!.handle)!;
      await r.session.request(victim.deleteRequest);
    } finally {
      r.close();
    }
    c = await check();
    expect(c.error?.code).toBe(101);
    expect(c.error?.details).toMatch(/default route .* missing/);
    expect(c.error?.details).toMatch(/port filters on host eth0 are missing/);

    // DEL removes the rest, twice, the second time without a cached prevResult.
    const del = await b.cni('del', NET, ns, { containerId: id });
    expect(del.status, del.stderr).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
    expect(await hostTraces(b.lab.host, rec)).toEqual({ veth: false, filters: 0 });
    // The runtime's namespace outlives the attachment: it is put back as ADD found it.
    expect(ipJson(nsName(ns), 'link', 'show').map((l: any) => l.ifname)).toEqual(['lo']);
    expect(execFileSync('tc', ['-n', nsName(ns), 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' })).not.toMatch(/ingress/);
    expect(inNs(ns, 'cat', '/proc/sys/net/ipv4/ip_local_port_range')).toBe(rangeBefore);
    expect(inNs(ns, 'ip', 'rule', 'show')).toBe(rulesBefore);
    expect(existsSync(b.cacheFile(NET, id))).toBe(false);
    const again = await b.cni('del', NET, ns, { containerId: id });
    expect(again.status, again.stderr).toBe(0);
  });

  it('DEL succeeds when the namespace is already gone, and cleans the host side', async () => {
    const id = newId();
    const ns = b.runtimeNetns();
    expect((await b.cni('add', NET, ns, { containerId: id, args: 'PORTS=[31020-31029]' })).status).toBe(0);
    const rec = (await iso.get(id))!;
    execFileSync('ip', ['netns', 'del', nsName(ns)]);
    const del = await b.cni('del', NET, ns, { containerId: id });
    expect(del.status, del.stderr).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
    expect(await until(() => !ipJson(b.lab.host, 'link', 'show').some((l: any) => l.ifname === rec.veth))).toBe(true);
    expect((await hostTraces(b.lab.host, rec)).filters).toBe(0);
    // And a DEL of a container nobody knows, without CNI_NETNS, exits 0 with nothing on stdout.
    const raw = await b.exec(
      { CNI_COMMAND: 'DEL', CNI_CONTAINERID: newId(), CNI_IFNAME: 'eth0', CNI_PATH: b.bin },
      JSON.stringify({ cniVersion: '1.0.0', name: NET, ...b.pluginConf() }),
    );
    expect(raw).toMatchObject({ status: 0, stdout: '' });
  });

  it('an ADD after the namespace died without a DEL replaces the stale attachment', async () => {
    const id = newId();
    const dead = b.runtimeNetns();
    expect((await b.cni('add', NET, dead, { containerId: id, args: 'PORTS=[31030-31031]' })).status).toBe(0);
    const stale = (await iso.get(id))!;
    execFileSync('ip', ['netns', 'del', nsName(dead)]);
    expect(await until(() => !ipJson(b.lab.host, 'link', 'show').some((l: any) => l.ifname === stale.veth))).toBe(true);
    const ns = b.runtimeNetns();
    const add = await b.cni('add', NET, ns, { containerId: id, args: 'PORTS=[31030-31031]' });
    expect(add.status, add.stderr).toBe(0);
    const fresh = (await iso.get(id))!;
    expect(fresh).toMatchObject({ netns: ns, ports: [[31030, 31031]] });
    expect(fresh.veth).not.toBe(stale.veth);
    expect(await hostTraces(b.lab.host, fresh)).toEqual({ veth: true, filters: fresh.hostFilters.length });
    expect((await b.cni('check', NET, ns, { containerId: id })).status).toBe(0);
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
  });

  it('ADD → DEL → ADD on the same id; the raw plugin output is an exact 1.0.0 result', async () => {
    const id = newId();
    const ns = b.runtimeNetns();
    expect((await b.cni('add', NET, ns, { containerId: id })).status).toBe(0);
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
    const raw = await b.exec(
      { CNI_COMMAND: 'ADD', CNI_CONTAINERID: id, CNI_NETNS: ns, CNI_IFNAME: 'eth0', CNI_PATH: b.bin, CNI_ARGS: 'PORTS=[31040-31041]' },
      JSON.stringify({ cniVersion: '1.0.0', name: NET, ...b.pluginConf() }),
    );
    expect(raw.status, raw.stdout + raw.stderr).toBe(0);
    expect(raw.stdout.endsWith('}\n') && raw.stdout.split('\n').length).toBe(2); // one line of JSON
    const rec = (await iso.get(id))!;
    expect(raw.json).toEqual(addResult(rec.veth, ns));
    expect(rec.ports).toEqual([[31040, 31041]]);
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
  });
});

describe('configuration', () => {
  it('rate limits from the configuration (numbers or sizes) shape the container; the flags are remembered for the CLI', async () => {
    b.writeConflist('shaped', [b.pluginConf({ egress_rate_limit_per_container: 1048576, ingress_rate_limit_per_container: '2MB' })]);
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', 'shaped', ns, { containerId: id });
    expect(add.status, add.stderr).toBe(0);
    const rec = (await iso.get(id))!;
    expect(rec.egress?.rateBytesPerSec).toBe(1048576);
    expect(rec.ingress?.rateBytesPerSec).toBe(2 * 1048576);
    // Egress is shaped on the host (its class on the shaper), out of the container's reach.
    expect(execFileSync('tc', ['-n', nsName(ns), 'qdisc', 'show', 'dev', 'eth0'], { encoding: 'utf8' })).not.toMatch(/htb/);
    expect(execFileSync('tc', ['-n', b.lab.host, 'class', 'show', 'dev', 'pmi-shape'], { encoding: 'utf8' })).toMatch(/class htb 1:\d+ root .*rate 8388Kbit/);
    expect(execFileSync('tc', ['-n', b.lab.host, 'qdisc', 'show', 'dev', rec.veth], { encoding: 'utf8' })).toMatch(/htb/);
    expect(JSON.parse(readFileSync(join(b.workDir, 'flags.json'), 'utf8'))).toEqual({
      resources: 'cpus:2;mem:1024;ports:[31000-32000];ephemeral_ports:[30001-30999]',
      ephemeral_ports_per_container: 16,
      egress_rate_limit_per_container: '1048576B',
      ingress_rate_limit_per_container: '2MB',
    });
    expect((await b.cni('check', 'shaped', ns, { containerId: id })).status).toBe(0);
    expect((await b.cni('del', 'shaped', ns, { containerId: id })).status).toBe(0);
  });
});

describe('chaining', () => {
  it('after loopback and before tuning: keeps prevResult, CHECK and DEL go through the chain', async () => {
    b.writeConflist('chain', [{ type: 'loopback' }, b.pluginConf(), { type: 'tuning', sysctl: { 'net.core.somaxconn': '1234' } }]);
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', 'chain', ns, { containerId: id, args: 'PORTS=[31060-31061];IgnoreUnknown=1' }); // loopback and tuning refuse unknown args otherwise
    expect(add.status, add.stderr).toBe(0);
    const rec = (await iso.get(id))!;
    expect(add.json.interfaces).toEqual([
      { name: 'lo', mac: '00:00:00:00:00:00', sandbox: ns },
      { name: rec.veth, mac: hostMac },
      { name: 'eth0', mac: hostMac, sandbox: ns },
    ]);
    expect(add.json.ips).toContainEqual({ interface: 0, address: '127.0.0.1/8' });
    expect(add.json.ips).toContainEqual({ interface: 2, address: ADDRESS, gateway: GATEWAY });
    expect(inNs(ns, 'sysctl', '-n', 'net.core.somaxconn')).toBe('1234'); // tuning ran on our result
    expect(ipJson(nsName(ns), 'link', 'show', 'lo')[0].flags).toContain('UP');
    const check = await b.cni('check', 'chain', ns, { containerId: id });
    expect(check.status, check.stderr).toBe(0);
    const del = await b.cni('del', 'chain', ns, { containerId: id });
    expect(del.status, del.stderr).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
    expect(ipJson(nsName(ns), 'link', 'show', 'lo')[0].flags).not.toContain('UP'); // loopback's DEL ran after ours
  });

  it('speaks 0.4.0 too (ips carry their version)', async () => {
    b.writeConflist('old', [b.pluginConf()], '0.4.0');
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', 'old', ns, { containerId: id });
    expect(add.status, add.stderr).toBe(0);
    expect(add.json.cniVersion).toBe('0.4.0');
    expect(add.json.ips).toEqual([{ version: '4', address: ADDRESS, gateway: GATEWAY, interface: 1 }]);
    expect((await b.cni('check', 'old', ns, { containerId: id })).status).toBe(0);
    expect((await b.cni('del', 'old', ns, { containerId: id })).status).toBe(0);
  });
});

describe('traffic', () => {
  it('a CNI-added container is isolated exactly like a CLI-created one, side by side in one work_dir', async () => {
    const id = newId();
    const ns = b.runtimeNetns();
    const add = await b.cni('add', NET, ns, {
      containerId: id,
      capArgs: { portMappings: [{ hostPort: 31201, containerPort: 31201, protocol: 'tcp' }] },
      args: 'PORTS=[31200-31209]',
    });
    expect(add.status, add.stderr).toBe(0);
    const cli = await iso.create({ id: 'cli-1', ports: '[31300-31309]' });
    try {
      expect((await iso.list()).map((c) => c.id)).toEqual(expect.arrayContaining(['cli-1', id]));
      const cniRec = (await iso.get(id))!;
      const inRange = await listen(ns, 'tcp', 31201);
      const unassigned = await listen(ns, 'tcp', 31250);
      const othersPort = await listen(ns, 'tcp', 31301);
      const inCli = await listen(cli.netns, 'tcp', 31301);
      try {
        expect(send(b.lab.world, 'tcp', HOST_IP, 31201, 'to-cni\n')).toBe('ok');
        expect(send(b.lab.world, 'tcp', HOST_IP, 31301, 'to-cli\n')).toBe('ok');
        // A managed port nobody holds: dropped on eth0 (and counted), so no answer at all.
        expect(send(b.lab.world, 'tcp', HOST_IP, 31250, 'to-nobody\n', { timeoutMs: 1000 })).toMatch(/^fail: timeout/);
        expect(await until(() => inRange.received().includes('to-cni') && inCli.received().includes('to-cli'))).toBe(true);
        await new Promise((r) => setTimeout(r, 200));
        expect(unassigned.received()).toBe('');
        expect(othersPort.received()).toBe('');
      } finally {
        for (const l of [inRange, unassigned, othersPort, inCli]) l.stop();
      }
      const server = await peerPortServer(b.lab.world, 'tcp', 7000);
      try {
        let port = 0;
        for (let i = 0; i < 3 && !(port > 0); i++) port = Number(send(ns, 'tcp', GATEWAY, 7000, 'x\n', { reply: true })); // a slow reply on a loaded machine reads as ''
        expect(port).toBeGreaterThanOrEqual(cniRec.ephemeralPorts.begin);
        expect(port).toBeLessThanOrEqual(cniRec.ephemeralPorts.end);
      } finally {
        server.stop();
      }
      const [stats] = await iso.stats(id);
      expect((stats!.statistics as Record<string, number>).net_rx_packets).toBeGreaterThan(0);
      // A CNI DEL of the CLI container's id leaves it alone.
      expect((await b.cni('del', NET, ns, { containerId: 'cli-1' })).status).toBe(0);
      expect((await iso.get('cli-1'))?.phase).toBe('ready');
    } finally {
      expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
      await iso.destroy('cli-1');
    }
  });
});

describe('afterwards', () => {
  it('nothing leaked: no container records, no namespace snapshots, no veths on the lab host', async () => {
    expect(await iso.list()).toEqual([]);
    expect(readdirSync(join(b.workDir, 'cni'))).toEqual([]);
    // The traffic agents keep the namespaces they run in (and so the veths there) alive; a veth
    // whose namespace was deleted goes with the kernel's netns cleanup, which lags under load.
    stopAllTraffic();
    const veths = () =>
      ipJson(b.lab.host, 'link', 'show')
        .map((l: any) => l.ifname)
        // Containers' veths (pmi<N>); the host's own pairs (pmi-shape*, pmi-echo*) are its setup, as its ingress qdiscs: cleanup removes them.
        .filter((n: string) => /^pmi\d+$/.test(n));
    await until(() => veths().length === 0, 10_000);
    expect(veths()).toEqual([]);
  });
});
