/**
 * The agent keeps V8's young generation at its initial size (src/app/young-generation.ts), unless
 * the user gave a young-generation flag: checked in fresh Node processes that keep objects alive
 * across scavenges, the load under which Node's default grows the semi-spaces.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const MODULE = join(import.meta.dirname, '..', '..', 'dist', 'app', 'young-generation.js');

/** Run a Node process that (optionally) calls keepYoungGenerationSmall, then allocates; its young generation's size. */
function youngGeneration(call: boolean, nodeFlags: string[] = [], env: NodeJS.ProcessEnv = {}): { applied: boolean | null; newSpaceMb: number } {
  const script = `
    import { getHeapSpaceStatistics } from 'node:v8';
    const { keepYoungGenerationSmall } = await import(${JSON.stringify(MODULE)});
    const applied = ${call} ? keepYoungGenerationSmall() : null;
    const keep = [];
    for (let r = 0; r < 100; r++) {
      const batch = [];
      for (let i = 0; i < 20000; i++) batch.push({ i, s: 'x' + i });
      keep.push(batch);
      if (keep.length > 6) keep.shift();
    }
    const ns = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(JSON.stringify({ applied, newSpaceMb: ns.space_size / 1048576 }));`;
  const r = spawnSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { applied: boolean | null; newSpaceMb: number };
}

describe('the agent keeps the young generation small', () => {
  it('semi-spaces stay at their initial 1 MB where Node alone grows them', () => {
    expect(youngGeneration(false).newSpaceMb).toBeGreaterThan(4);
    expect(youngGeneration(true)).toEqual({ applied: true, newSpaceMb: 2 });
  });

  it('a young-generation flag of the user’s own, on the command line or in NODE_OPTIONS, is left alone', () => {
    const flagged = youngGeneration(true, [], { NODE_OPTIONS: '--max-semi-space-size=8' });
    expect(flagged.applied).toBe(false);
    expect(flagged.newSpaceMb).toBeGreaterThan(2);
    expect(youngGeneration(true, ['--semi-space-growth-factor=2']).applied).toBe(false);
  });
});
