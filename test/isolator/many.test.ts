/**
 * Past 64 containers the engine writes new containers' sysctls through a procfs of its own
 * (ContainerProc): the values must land in the right namespace, the mount must be remounted and
 * finally removed by cleanup.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContainerProc } from '../../src/isolator/container-proc.js';
import type { Isolator } from '../../src/isolator/engine.js';
import { IsolatorLab, sweepStaleLabs } from '../../src/lab/index.js';

const FLAGS = { resources: 'ports:[31000-32000];ephemeral_ports:[33000-60999]', ephemeral_ports_per_container: 16 };
const COUNT = 140; // past the threshold (64) and one remount (every 64)

let lab: IsolatorLab;
let iso: Isolator;
const warnings: string[] = [];
const mounted = (path: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === path);
const inNs = (netns: string, file: string) => execFileSync('nsenter', [`--net=${netns}`, 'cat', file], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open(FLAGS, warnings);
});
afterAll(async () => {
  await lab?.destroy();
});

describe('many containers', () => {
  it(`sets up ${COUNT} containers with their sysctls right, through a private procfs past 64`, async () => {
    const procDir = join(lab.workDir, 'proc');
    const procMounts = () =>
      readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .filter((l) => l.split(' ')[8] === 'proc').length;
    const before = procMounts();
    for (let i = 0; i < COUNT; i++) {
      const c = await iso.create({ id: `m${i}`, ports: `[${31000 + i}-${31000 + i}]` });
      expect(mounted(procDir)).toBe(false); // detached as soon as opened
      if (i === 10 || i === 70 || i === COUNT - 1) {
        expect(inNs(c.netns, '/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number)).toEqual([c.ephemeral_ports.begin, c.ephemeral_ports.end]);
        expect(inNs(c.netns, '/proc/sys/net/ipv6/conf/all/disable_ipv6')).toBe('1');
        expect(inNs(c.netns, '/proc/sys/net/ipv6/conf/eth0/disable_ipv6')).toBe('1');
      }
    }
    const report = await iso.cleanup();
    expect(report.errors).toEqual([]);
    expect(report.destroyed).toHaveLength(COUNT);
    expect(mounted(procDir)).toBe(false);
    expect(procMounts()).toBe(before);
    expect(warnings).toEqual([]);
  }, 120_000);

  it('ContainerProc falls back to /proc, with one warning, where it cannot mount a procfs', () => {
    const warned: string[] = [];
    const cp = new ContainerProc('/dev/null/proc', (m) => warned.push(m)); // mkdir under a file fails
    expect(cp.rootFor(1000)).toBe('/proc');
    expect(cp.rootFor(1000)).toBe('/proc');
    expect(warned).toHaveLength(1);
    expect(warned[0]).toMatch(/^cannot mount a procfs at \/dev\/null\/proc .*: container sysctls go through \/proc/);
  });

  it('ContainerProc: /proc below 64 containers, then a detached procfs of its own, replaced every 64 uses', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pmi-cproc-')), 'proc');
    const warned: string[] = [];
    const cp = new ContainerProc(dir, (m) => warned.push(m));
    try {
      expect(cp.rootFor(10)).toBe('/proc');
      const roots = Array.from({ length: 130 }, () => cp.rootFor(1000));
      expect(new Set(roots.slice(0, 64)).size).toBe(1);
      for (const root of [roots[0]!, roots[129]!]) {
        expect(root).toMatch(/^\/proc\/self\/fd\/\d+$/);
        expect(readFileSync(`${root}/sys/net/ipv4/ip_local_port_range`, 'utf8')).toBe(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'));
      }
      expect(mounted(dir)).toBe(false);
      expect(warned).toEqual([]);
    } finally {
      cp.close();
      rmdirSync(dir);
      rmdirSync(join(dir, '..'));
    }
  });
});
