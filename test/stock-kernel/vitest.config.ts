/**
 * The stock-kernel stage (issue #8): the real-kernel suites, plus the stock-kernel-only tests of
 * this folder (`*.stock.ts`, which the native `npm test` never picks up), run inside Debian's
 * stock kernel under qemu by `test/stock-kernel/run.sh`.
 *
 * Everything runs ~10-25x slower under emulation, and Vite's on-the-fly TypeScript transform of
 * src/ was most of that. So imports of `src/**` are served from the built tree (`dist/**`, which
 * run.sh rebuilds on the host before it boots the guest) and handed to Node unchanged; only the
 * test files and their helpers go through Vite. No global setup: the freshness check of dist/ is
 * run.sh's, on the host.
 */
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vitest/config';

const root = fileURLToPath(new URL('../..', import.meta.url));
const src = join(root, 'src') + sep;
const dist = join(root, 'dist') + sep;

export const STOCK_KERNEL_FILES = [
  'test/netlink/kernel.test.ts',
  'test/rtnl/kernel.test.ts',
  'test/tc/kernel.test.ts',
  'test/isolator/traffic.test.ts',
  'test/isolator/lifecycle.test.ts',
  'test/isolator/data-path.test.ts',
  'test/isolator/ipv6.test.ts',
  'test/tc/bpf.test.ts',
  'test/stock-kernel/*.stock.ts',
];

/** `…/src/x/y.js` (as tests import it) → `…/dist/x/y.js`, when the built file exists. */
function builtTree(): Plugin {
  return {
    name: 'pmi-stock-kernel-built-tree',
    enforce: 'pre',
    resolveId(id, importer) {
      if (!importer || !id.startsWith('.') || !id.endsWith('.js')) return null;
      const abs = resolve(dirname(importer.split('?')[0]!), id);
      if (!abs.startsWith(src)) return null;
      const built = join(dist, relative(src, abs));
      return existsSync(built) ? built : null;
    },
  };
}

export default defineConfig({
  root,
  plugins: [builtTree()],
  test: {
    include: STOCK_KERNEL_FILES,
    // One process per file: setns() switches a thread, so files never share one.
    pool: 'forks',
    server: { deps: { external: [/\/dist\//] } },
    // ~10-25x slower than natively; the slowest test takes ~40 s in the guest. A hung test fails
    // alone instead of running the stage into its budget.
    testTimeout: 150_000,
    hookTimeout: 150_000,
  },
});
