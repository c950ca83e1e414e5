/**
 * Past 64 containers the engine writes new containers' sysctls through a procfs of its own
 * (ContainerProc): the values must land in the right namespace, the mount must be remounted and
 * finally removed by cleanup.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { sweepStaleLabs } from '../helpers/lab.js';
import { IsolatorLab } from '../helpers/isolator-lab.js';

const FLAGS = { resources: 'ports:[31000-32000];ephemeral_ports:[33000-60999]', ephemeral_ports_per_container: 16 };
const COUNT = 140; // past the threshold (64) and one remount (every 64)

let lab: IsolatorLab;
let iso: Isolator;
const mounted = (path: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === path);
const inNs = (netns: string, file: string) => execFileSync('nsenter', [`--net=${netns}`, 'cat', file], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  iso = await lab.open(FLAGS);
});
afterAll(async () => {
  await lab?.destroy();
});

describe('many containers', () => {
  it(`sets up ${COUNT} containers with their sysctls right, through a private procfs past 64`, async () => {
    const procDir = join(lab.workDir, 'proc');
    for (let i = 0; i < COUNT; i++) {
      const c = await iso.create({ id: `m${i}`, ports: `[${31000 + i}-${31000 + i}]` });
      if (i === 10) expect(mounted(procDir)).toBe(false);
      if (i === 70 || i === COUNT - 1) {
        expect(mounted(procDir)).toBe(true);
        expect(inNs(c.netns, '/proc/sys/net/ipv4/ip_local_port_range').split(/\s+/).map(Number)).toEqual([c.ephemeral_ports.begin, c.ephemeral_ports.end]);
        expect(inNs(c.netns, '/proc/sys/net/ipv6/conf/all/disable_ipv6')).toBe('1');
        expect(inNs(c.netns, '/proc/sys/net/ipv6/conf/eth0/disable_ipv6')).toBe('1');
      }
    }
    const report = await iso.cleanup();
    expect(report.errors).toEqual([]);
    expect(report.destroyed).toHaveLength(COUNT);
    expect(mounted(procDir)).toBe(false);
  }, 120_000);
});
