// Module hooks of the stock-kernel tsx stub: a TypeScript file URL → its prebuilt bundle.
let map = {};

export function initialize(data) {
  map = data.map;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (r.url.startsWith('file:') && /\.[cm]?tsx?$/.test(new URL(r.url).pathname)) {
    const bundle = map[r.url];
    if (!bundle) {
      throw new Error(
        `stock-kernel guest: ${r.url} is TypeScript run with --import tsx, and tsx is replaced here by bundles built on the host: add the file to BUNDLED in test/stock-kernel/prepare.mjs`,
      );
    }
    return { url: bundle, format: 'module', shortCircuit: true };
  }
  return r;
}
