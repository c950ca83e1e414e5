// Host side of the stock-kernel stage, before the guest boots: bundle each TypeScript entry that
// the guest's tests spawn with `node --import tsx` (tsx needs 8-30 s to start under emulation,
// longer than the tests' own timeouts), and write the map the guest's tsx stub reads.
// usage: node test/stock-kernel/prepare.mjs OUT_DIR
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Entries spawned as `node --import tsx <file>` by the suites the stage runs. */
export const BUNDLED = ['test/isolator/crash-child.ts', 'test/stock-kernel/update-crash-child.ts'];

const root = fileURLToPath(new URL('../..', import.meta.url));
const out = process.argv[2];
if (!out) throw new Error('usage: node test/stock-kernel/prepare.mjs OUT_DIR');
const esbuild = createRequire(join(root, 'package.json'))('esbuild');
mkdirSync(join(out, 'bundles'), { recursive: true });
const map = {};
for (const entry of BUNDLED) {
  const src = join(root, entry);
  const outfile = join(out, 'bundles', `${basename(entry, '.ts')}.mjs`);
  esbuild.buildSync({
    entryPoints: [src],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    // The native shim is found from its source location (src/netlink/shim.ts is the only module
    // that reads import.meta.url), as test/helpers/cni.ts does for the CNI launcher.
    define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(root, 'src', 'netlink', 'shim.ts')).href) },
    logLevel: 'error',
  });
  map[pathToFileURL(src).href] = pathToFileURL(outfile).href;
}
writeFileSync(join(out, 'tsx-map.json'), JSON.stringify(map, null, 2));
