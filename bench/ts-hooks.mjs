/**
 * Module hooks that run the benchmarks' TypeScript as plain esbuild output (bench/register.mjs
 * installs them). tsx would do it too, but it always compiles with esbuild's `keepNames`, which
 * wraps every function and closure it creates in a `__name(fn, "…")` call: on a hot path such as
 * decoding 10 000 filters that alone made the SDK ~1.8× slower than the `tsc` output users run.
 * Here nothing is added: types are stripped, the code is what tsc emits for ES2022 modules.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { transform } from 'esbuild';

/** `./x.js` written for tsc's output resolves to `./x.ts` beside it when there is no x.js. */
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (e) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !relative || !specifier.endsWith('.js')) throw e;
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  const path = fileURLToPath(url);
  const { code } = await transform(await readFile(path, 'utf8'), {
    loader: 'ts',
    format: 'esm',
    target: 'node20',
    sourcefile: path,
    sourcemap: 'inline',
  });
  return { format: 'module', source: code, shortCircuit: true };
}
