/**
 * The work_dir lock under contention (issue #15 item 5): N node processes started at once on one
 * temporary work_dir, each taking the lock through StateStore.withLock, holding it HOLD ms (a
 * create's critical section) and bumping the generation. Compares the polling lock of commit
 * --old (default bd017fb: non-blocking flock polled with backoff up to 50 ms) with the working
 * tree's (waiters blocked in the kernel). No network, no namespaces. Reports, never asserts.
 *
 *   npx tsx bench/lock-contention.ts [--n=250] [--hold=20] [--timeout=30000] [--variant=old,new] [--old=REV]
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const REPO = join(import.meta.dirname, '..');
const arg = (name: string, dflt: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? dflt;
const N = Number(arg('n', '250'));
const HOLD = Number(arg('hold', '20'));
const TIMEOUT = Number(arg('timeout', '30000'));
const VARIANTS = arg('variant', 'old,new').split(',') as Array<'old' | 'new'>;
/** The last commit with the polling lock. */
const OLD_REV = arg('old', 'bd017fb');

// One child per process: waits are measured from the withLock call to entering the critical section.
const CHILD = `
import { StateStore } from './src/isolator/state.ts';
const [dir, hold, timeout] = process.argv.slice(2);
const store = new StateStore(dir);
const t0 = performance.now();
try {
  await store.withLock(async () => {
    const waited = performance.now() - t0;
    await new Promise((r) => setTimeout(r, Number(hold)));
    store.bumpGeneration();
    process.stdout.write(JSON.stringify({ ok: true, waited }));
  }, Number(timeout));
  process.exit(0);
} catch (e) {
  process.stdout.write(JSON.stringify({ ok: false, error: e.name, waited: performance.now() - t0 }));
  process.exit(1);
}
`;

async function bundle(variant: 'old' | 'new', out: string): Promise<void> {
  const head = variant === 'old' ? execFileSync('git', ['show', `${OLD_REV}:src/isolator/state.ts`], { cwd: REPO, encoding: 'utf8' }) : undefined;
  await build({
    stdin: { contents: CHILD, resolveDir: REPO, sourcefile: 'lock-child.ts', loader: 'ts' },
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(REPO, 'src', 'netlink', 'shim.ts')).href) },
    logLevel: 'error',
    plugins: head
      ? [
          {
            name: 'head-state',
            setup: (b) =>
              b.onLoad({ filter: /src\/isolator\/state\.ts$/ }, () => ({ contents: head, loader: 'ts', resolveDir: join(REPO, 'src', 'isolator') })),
          },
        ]
      : [],
  });
}

interface Outcome {
  ok: boolean;
  error?: string;
  waited: number;
}

async function runOnce(variant: 'old' | 'new'): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), `pmi-lockbench-${variant}-`));
  try {
    const script = join(tmp, 'child.mjs');
    await bundle(variant, script);
    const workDir = join(tmp, 'work');
    const t0 = performance.now();
    const outcomes = await Promise.all(
      Array.from(
        { length: N },
        () =>
          new Promise<Outcome>((resolve) => {
            const p = spawn(process.execPath, [script, workDir, String(HOLD), String(TIMEOUT)], { stdio: ['ignore', 'pipe', 'inherit'] });
            let out = '';
            p.stdout.on('data', (d: Buffer) => (out += d.toString()));
            p.on('close', () => {
              try {
                resolve(JSON.parse(out) as Outcome);
              } catch {
                resolve({ ok: false, error: `no result (${out})`, waited: NaN });
              }
            });
          }),
      ),
    );
    const wall = performance.now() - t0;
    const ok = outcomes.filter((o) => o.ok);
    const errors: Record<string, number> = {};
    for (const o of outcomes) if (!o.ok) errors[o.error!] = (errors[o.error!] ?? 0) + 1;
    const waits = ok.map((o) => o.waited).sort((a, b) => a - b);
    const q = (p: number) => (waits.length ? waits[Math.min(waits.length - 1, Math.floor(p * waits.length))]!.toFixed(0) : '-');
    const gen = /gen=(\d+)/.exec(readFileSync(join(workDir, 'lock'), 'latin1'))?.[1];
    console.log(
      `${variant}: ${ok.length}/${N} succeeded, failures ${JSON.stringify(errors)}, wall ${(wall / 1000).toFixed(2)} s, ` +
        `lock wait p50 ${q(0.5)} ms p99 ${q(0.99)} ms max ${q(1)} ms, generation ${gen} (= successes: ${Number(gen) === ok.length})`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

console.log(`${N} processes, hold ${HOLD} ms, timeout ${TIMEOUT} ms`);
for (const v of VARIANTS) await runOnce(v);
