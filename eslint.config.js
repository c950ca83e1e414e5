// Lint rules of the project (npm run lint): typescript-eslint's recommended set, and the layering
// of DESIGN.md §1 — each layer imports only the layers below it, and nothing reaches into another
// layer's schemas/ (their encodings stay behind that layer's verbs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Layers, lowest first: a file may import its own layer and those before it (lab and cni are side by side: neither imports the other). */
const LAYERS = ['netlink', 'rtnl', 'tc', 'isolator', 'lab', 'cni', 'app'];
const SIDE_BY_SIDE = { cni: ['lab'] };

/** For src/<layer>/**: forbid imports of higher layers and of other layers' schemas. */
function layerRules(layer) {
  const above = [...LAYERS.slice(LAYERS.indexOf(layer) + 1), ...(SIDE_BY_SIDE[layer] ?? [])];
  const others = LAYERS.filter((l) => l !== layer);
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...(above.length
              ? [{ group: above.map((l) => `**/${l}/**`), message: `src/${layer} must not import a higher layer (${above.join(', ')}): DESIGN.md §1.` }]
              : []),
            { group: others.map((l) => `**/${l}/schemas/**`), message: "import another layer's index, not its schemas/: its encodings stay behind its verbs." },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'prebuilds/**', 'docs/api/**', 'test/golden/**/*.json'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        Buffer: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setImmediate: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        URL: 'readonly',
        SharedArrayBuffer: 'readonly',
        Atomics: 'readonly',
        NodeJS: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        AbortController: 'readonly',
        structuredClone: 'readonly',
        queueMicrotask: 'readonly',
        BigInt: 'readonly',
      },
    },
    rules: {
      // Decoded netlink attributes are loosely typed at the edges; `any` there is deliberate.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `void promise` marks a deliberately detached task.
      'no-void': 'off',
      // Errors are wrapped with our own `causes` list, and defaults before a try are on purpose.
      'preserve-caught-error': 'off',
      'no-useless-assignment': 'off',
    },
  },
  {
    // Expected output is written as the tool prints it, spaces and all.
    files: ['test/**/*.ts'],
    rules: { 'no-regex-spaces': 'off' },
  },
  ...LAYERS.map(layerRules),
  {
    // bench/ and examples/ are applications too: they use src/ and never test/ internals.
    files: ['bench/**/*.ts', 'examples/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/test/**'], message: 'bench/ and examples/ must not import test/ helpers: use src/lab.' }] },
      ],
    },
  },
);
