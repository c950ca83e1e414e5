/**
 * Benchmarks (DESIGN.md §7). `npm run bench` prints a table; `npm run bench -- --json` prints one
 * JSON object; `--suite raw` picks suites. Everything runs in lab namespaces, never the root one.
 */
import { cpus, release } from 'node:os';
import { sweepStaleLabs } from '../test/helpers/lab.js';
import { benchRaw } from './raw.js';

const SUITES = { raw: benchRaw } as const;

function parseArgs(argv: string[]) {
  const json = argv.includes('--json');
  const at = argv.indexOf('--suite');
  const suiteArg = argv.find((a) => a.startsWith('--suite='))?.slice(8) ?? (at >= 0 ? argv[at + 1] : undefined);
  if (at >= 0 && !suiteArg) throw new Error('--suite: needs a comma-separated list of suites');
  const suites = (suiteArg ? suiteArg.split(',') : Object.keys(SUITES)) as Array<keyof typeof SUITES>;
  for (const s of suites) if (!(s in SUITES)) throw new Error(`--suite: unknown suite '${s}' (known: ${Object.keys(SUITES).join(', ')})`);
  return { json, suites };
}

function printTable(name: string, result: object): void {
  console.log(`\n${name}`);
  const rows = Object.entries(result).filter(([k]) => k !== 'spread');
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  const spread = (result as { spread?: Record<string, { min: number; max: number }> }).spread;
  if (spread) for (const [k, v] of Object.entries(spread)) console.log(`  ${(k + ' range').padEnd(width)}  ${v.min} – ${v.max}`);
}

async function main(): Promise<void> {
  const { json, suites } = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('benchmarks build lab network namespaces and need root');
  sweepStaleLabs();
  const out: Record<string, unknown> = {
    machine: { kernel: release(), cpus: cpus().length, cpu_model: cpus()[0]?.model, node: process.version, date: new Date().toISOString() },
  };
  for (const s of suites) {
    if (!json) process.stderr.write(`running ${s}…\n`);
    out[s] = await SUITES[s]();
    if (!json) printTable(s, out[s] as object);
  }
  if (json) console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`bench: ${(e as Error).message}`);
  process.exit(1);
});
