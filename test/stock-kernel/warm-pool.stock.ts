/**
 * The warm pool on a kernel with fq_codel: a container taken from a spare gets its shaping at
 * create (its class and fq_codel leaf on the host's shaper, HTB and the fq_codel leaf on the host
 * veth) and ends up with exactly
 * the objects of a container made without the pool; traffic flows through it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Isolator } from '../../src/isolator/engine.js';
import { compareTopologies, containerTopology } from '../../bench/equivalence.js';
import { listen, send, stopAllTraffic } from '../helpers/traffic.js';
import { assertFqCodel } from './helpers.js';
import { FIXTURE, HOST_IP, IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const FLAGS = { ...FIXTURE, egress_rate_limit_per_container: '1MB', ingress_rate_limit_per_container: '1MB' };
const PORTS = '[31040-31049]';

let lab: IsolatorLab;
let plain: Isolator;
let pooled: Isolator;

beforeAll(async () => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  assertFqCodel(lab.lab.host);
  plain = await lab.open(FLAGS);
  pooled = await lab.open(FLAGS, [], { warmPool: 1 });
});
afterAll(async () => {
  stopAllTraffic();
  await lab?.destroy();
});

const readySpares = () => {
  const dir = join(lab.workDir, 'spares');
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json') && readFileSync(join(dir, f), 'utf8').includes('"ready"')) : [];
};

/** The container's objects, with its veth's index and name and the kernel-chosen fq_codel handles made neutral. */
const snapshot = (info: { netns: string; veth: string }) => containerTopology(lab.lab.path(lab.lab.host), info, plain.host);

describe('warm pool with shaping and fq_codel', () => {
  it('a container taken from a spare has exactly the objects of one made without the pool, shaping included', async () => {
    const a = await plain.create({ id: 'plain', ports: PORTS });
    const want = await snapshot(a);
    await plain.destroy('plain');
    await pooled.recover(); // fills the pool
    expect(await until(() => readySpares().length === 1, 30_000)).toBe(true);
    const b = await pooled.create({ id: 'pooled', ports: PORTS });
    expect(b.netns).toContain('.spare-');
    const got = await snapshot(b);
    // Egress is shaped on the host's shaper (its class and fq_codel leaf there), nothing in the container.
    expect(got['container qdiscs']!.filter((q) => /^(htb|fq_codel) /.test(q))).toHaveLength(0);
    expect(execFileSync('tc', ['-n', lab.lab.host, 'qdisc', 'show', 'dev', 'pmi-shape'], { encoding: 'utf8' })).toMatch(/qdisc fq_codel \w+: parent 1:2 /);
    expect(got['host veth qdiscs']!.filter((q) => /^(htb|fq_codel) /.test(q))).toHaveLength(2);
    expect(compareTopologies(got, want)).toBe('');

    const l = await listen(b.netns, 'tcp', 31041);
    expect(send(lab.lab.world, 'tcp', HOST_IP, 31041, 'through-the-pool\n')).toBe('ok');
    expect(await until(() => l.received().includes('through-the-pool'))).toBe(true);
    l.stop();
  });
});
