/**
 * Before the tests: make sure dist/ (the built CLI that the CLI tests spawn) is not older than the
 * sources, so a test never runs yesterday's build.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  let built = 0;
  try {
    built = statSync(join(root, 'dist', 'app', 'main.js')).mtimeMs;
  } catch {
    /* not built */
  }
  if (built < newest(join(root, 'src'))) execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
