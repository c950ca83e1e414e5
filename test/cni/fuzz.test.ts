/**
 * Issue 15, item 4: the CNI plugin's stdin and environment, fuzzed with 10^4 generated
 * invocations (seeded: a failure replays) run in-process inside the lab host namespace — among
 * them well-formed ADD/DEL/CHECK into real namespaces. No invocation throws, none answers
 * INTERNAL (999) for a caller's mistake, every answer is one JSON object with a code, and after a
 * DEL of whatever ADD accepted nothing is left.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nsExec } from '../helpers/lab.js';
import { IsolatorLab, sweepStaleLabs } from '../../src/lab/index.js';

let lab: IsolatorLab;
const sandboxes: string[] = [];

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  for (let i = 0; i < 4; i++) sandboxes.push(lab.lab.path(lab.lab.addNamespace(`sandbox${i}`)));
});
afterAll(async () => {
  await lab?.destroy();
});

describe('the CNI plugin under 10^4 generated invocations', () => {
  it('never throws, never answers INTERNAL for bad input, always answers JSON, and leaves nothing', () => {
    const r = spawnSync(
      'ip',
      [
        'netns',
        'exec',
        lab.lab.host,
        process.execPath,
        '--import',
        'tsx',
        join(import.meta.dirname, 'fuzz-driver.ts'),
        lab.workDir,
        '20261207',
        '10000',
        ...sandboxes,
      ],
      {
        encoding: 'utf8',
        timeout: 240_000,
        maxBuffer: 64 << 20,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      byCode: Record<string, number>;
      threw: string[];
      internal: string[];
      malformed: string[];
      added: number;
      delErrors: string[];
    };
    expect(out.threw).toEqual([]);
    expect(out.internal).toEqual([]);
    expect(out.malformed).toEqual([]);
    expect(out.delErrors).toEqual([]);
    expect(Object.values(out.byCode).reduce((a, b) => a + b, 0)).toBe(10_000);
    // The inputs reached every kind of answer, including real successes.
    for (const code of ['ok', '2', '4', '6', '7', '102']) expect(out.byCode[code], code).toBeGreaterThan(0);
    expect(readdirSync(join(lab.workDir, 'containers')).filter((f) => f.endsWith('.json'))).toEqual([]);
    expect(
      nsExec(lab.lab.host, 'ip', ['-br', 'link'])
        .split('\n')
        .filter((l) => /^pmi\d+/.test(l)),
    ).toEqual([]);
    for (const ns of sandboxes)
      expect(
        nsExec(lab.lab.host, 'nsenter', [`--net=${ns}`, 'ip', '-br', 'link'])
          .trim()
          .split('\n'),
      ).toHaveLength(1); // lo only
  }, 300_000);
});
