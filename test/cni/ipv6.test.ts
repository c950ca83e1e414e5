/**
 * The CNI plugin on a dual-stack host (--ipv6, issue #19): ADD gives the runtime's namespace the
 * host's IPv6 address and route too and says so in its result; CHECK passes; IPv6 to the
 * container's port reaches it; DEL removes everything.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { GATEWAY6, HOST_IP6, eventually, sweepStaleLabs } from '../../src/lab/index.js';
import { CniBench, hostTraces, requireCniTools } from '../helpers/cni.js';
import { ipJson } from '../helpers/lab.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';

const NET = 'pmi6';
let b: CniBench;
let iso: Isolator;

beforeAll(async () => {
  sweepStaleLabs();
  requireCniTools();
  b = new CniBench({ ipv6: true });
  b.writeConflist(NET, [b.pluginConf()]);
  iso = await b.iso.open();
}, 120_000);

afterAll(async () => {
  stopAllTraffic();
  await b?.destroy();
});

describe('CNI on a dual-stack host', () => {
  it('ADD adds the IPv6 address and route (and reports them), CHECK passes, IPv6 reaches the port, DEL removes everything', async () => {
    const id = randomBytes(32).toString('hex');
    const ns = b.runtimeNetns();
    const add = await b.cni('add', NET, ns, { containerId: id, args: 'PORTS=[31010-31019]' });
    expect(add.status, add.stderr).toBe(0);
    const result = add.json as { ips: Array<{ address: string; gateway?: string; interface?: number }>; routes: Array<{ dst: string; gw?: string }> };
    expect(result.ips).toContainEqual({ address: `${HOST_IP6}/64`, gateway: GATEWAY6, interface: 1 });
    expect(result.routes).toContainEqual({ dst: '::/0', gw: GATEWAY6 });
    const eth0 = ipJson(basename(ns), 'addr', 'show', 'eth0')[0];
    expect(eth0.addr_info.filter((a: { family: string }) => a.family === 'inet6').map((a: { local: string }) => a.local)).toEqual([HOST_IP6]);
    expect((await b.cni('check', NET, ns, { containerId: id })).status).toBe(0);
    // CHECK sees a missing IPv6 address, and says which.
    execFileSync('ip', ['-n', basename(ns), 'addr', 'del', `${HOST_IP6}/64`, 'dev', 'eth0']);
    const broken = await b.cni('check', NET, ns, { containerId: id });
    expect(broken.status).not.toBe(0);
    expect(JSON.stringify(broken.json)).toMatch(/lacks the host's IPv6 address 2001:2::2\/64/);
    execFileSync('ip', ['-n', basename(ns), 'addr', 'add', `${HOST_IP6}/64`, 'dev', 'eth0', 'nodad']);
    expect((await b.cni('check', NET, ns, { containerId: id })).status).toBe(0);

    const l = await listen(ns, 'tcp', 31012, { ipv6: true });
    expect(send(b.lab.world, 'tcp', HOST_IP6, 31012, 'v6 over cni')).toBe('ok');
    await eventually(() => expect(l.received()).toBe('v6 over cni'));
    l.stop();

    const rec = (await iso.get(id))!;
    expect((await b.cni('del', NET, ns, { containerId: id })).status).toBe(0);
    expect(await iso.get(id)).toBeUndefined();
    expect(await hostTraces(b.lab.host, rec)).toEqual({ veth: false, filters: 0 });
  });
});
