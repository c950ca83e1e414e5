/**
 * /metrics in the Prometheus text format, checked with a real parser (parse-prometheus-text-format):
 * every family appears once, with its HELP and TYPE, whatever order the agent renders it in. With
 * samples of two families interleaved (the tc counters of rate-limited containers), strict parsers
 * split them into families of type "untyped".
 */
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/app/agent.js';
import { createLogger } from '../../src/app/log.js';
import { MetricsWriter } from '../../src/app/metrics.js';
import { FIXTURE, IsolatorLab, sweepStaleLabs } from '../../src/lab/index.js';
import { request } from '../helpers/http.js';

type Family = { name: string; type: string; help: string; metrics: unknown[] };

/** Each family once, typed, with its samples. */
function expectWellFormed(text: string): Family[] {
  const families = parsePrometheus(text) as Family[];
  const names = families.map((f) => f.name);
  expect(names.length, text).toBe(new Set(names).size);
  for (const f of families) expect(f.type, f.name).not.toBe('UNTYPED');
  return families;
}

describe('MetricsWriter', () => {
  it('groups samples by family, whatever order they come in; histogram series stay with their family', () => {
    const w = new MetricsWriter();
    w.help('a_total', 'counter', 'A.');
    w.help('b_total', 'counter', 'B.');
    w.sample('a_total', { c: 'x' }, 1);
    w.sample('b_total', { c: 'x' }, 2);
    w.sample('a_total', { c: 'y' }, 3);
    w.help('d_seconds', 'histogram', 'D.');
    w.sample('d_seconds_bucket', { le: '+Inf' }, 1);
    w.sample('b_total', { c: 'y' }, 4);
    w.sample('d_seconds_sum', {}, 0.5);
    w.sample('d_seconds_count', {}, 1);
    const families = expectWellFormed(w.toString());
    expect(families.map((f) => [f.name, f.type, f.metrics.length])).toEqual([
      ['a_total', 'COUNTER', 2],
      ['b_total', 'COUNTER', 2],
      ['d_seconds', 'HISTOGRAM', 1],
    ]);
  });

  it('escapes backslash, newline and double quote in label values, and only those', () => {
    const w = new MetricsWriter();
    w.help('x_total', 'counter', 'X.');
    w.sample('x_total', { container: 'plain-1.a_b' }, 1);
    w.sample('x_total', { container: 'a\\b"c\nd', id: 'bw_limit' }, 2);
    w.sample('x_total', {}, Infinity);
    expect(w.toString().split('\n')).toEqual([
      '# HELP x_total X.',
      '# TYPE x_total counter',
      'x_total{container="plain-1.a_b"} 1',
      'x_total{container="a\\\\b\\"c\\nd",id="bw_limit"} 2',
      'x_total 0',
      '',
    ]);
    const [family] = expectWellFormed(w.toString());
    expect((family!.metrics[1] as { labels: Record<string, string> }).labels.container).toBe('a\\b"c\nd');
  });
});

describe('the agent', () => {
  let lab: IsolatorLab;
  beforeAll(() => {
    sweepStaleLabs();
    lab = new IsolatorLab();
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('serves /metrics a strict parser reads whole, with rate-limited containers (tc counters) and operations', async () => {
    const iso = await lab.open({ ...FIXTURE, egress_rate_limit_per_container: '1MB' });
    const socket = join(lab.workDir, 'agent.sock');
    const agent = new Agent(iso, { socket, log: createLogger('json', () => undefined) });
    await agent.start();
    try {
      for (const [id, ports] of [
        ['m1', '[31000-31009]'],
        ['m2', '[31010-31019]'],
      ]) {
        expect((await request({ socketPath: socket }, 'POST', '/containers', { body: JSON.stringify({ id, ports }) })).status).toBe(201);
      }
      const families = expectWellFormed((await request({ socketPath: socket }, 'GET', '/metrics')).text);
      const drops = families.find((f) => f.name === 'portmap_isolator_tc_drops_total')!;
      expect(drops.type).toBe('COUNTER');
      expect(drops.metrics.length).toBeGreaterThanOrEqual(2); // a bw_limit entry per container at least
      expect(families.find((f) => f.name === 'portmap_isolator_operation_duration_seconds')?.type).toBe('HISTOGRAM');
    } finally {
      await agent.stop();
    }
  });
});
