/**
 * Benchmarks (DESIGN.md §7). `npm run bench` prints a table; `npm run bench -- --json` prints one
 * JSON object; `--suite a,b` picks suites; `--quick` runs fewer repetitions and containers (CI);
 * `--report DIR` also writes a Markdown report with SVG plots to DIR. Everything runs in lab
 * namespaces, never the root one. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { benchAgentScale } from './agent-scale.js';
import { benchContainerSetup } from './container-setup.js';
import { benchDump } from './dump.js';
import { benchFilterInstall } from './filter-install.js';
import { benchIpv6 } from './ipv6.js';
import { benchRaw } from './raw.js';
import { verdicts, writeReport } from './report.js';
import { benchScaling } from './scaling.js';
import { stopAllBenchProcesses } from './traffic.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { cpuWatch, runInterruptCleanups, waitQuiet } from './util.js';
import { sweepStaleLabs } from '../src/lab/index.js';

const SUITES: Record<string, (o: SuiteOptions) => Promise<SuiteOutput>> = {
  raw: async (o) => ({ result: await benchRaw(o.quick ? { n: 2000, repetitions: 3, processN: 50 } : {}) }),
  filter_install: benchFilterInstall,
  container_setup: benchContainerSetup,
  dump: benchDump,
  ipv6: benchIpv6,
  agent: benchAgentScale,
  // Last: freeing 1000 namespaces keeps the kernel busy for a while after it.
  scaling: benchScaling,
};

/** Suites whose result is a section of another suite's in the JSON (`agent` → `scaling.agent`). */
const SECTION_OF: Record<string, string> = { agent: 'scaling' };

/** A bad command line: reported without a stack trace. */
class UsageError extends Error {}
const USAGE = 'usage: npm run bench -- [--json] [--quick] [--suite a,b] [--report DIR]';

export interface Args {
  json: boolean;
  quick: boolean;
  report: string | undefined;
  suites: string[];
}

function value(argv: string[], name: string): string | undefined {
  const eq = argv.find((a) => a.startsWith(`${name}=`));
  if (eq) return eq.slice(name.length + 1);
  const at = argv.indexOf(name);
  if (at < 0) return undefined;
  const v = argv[at + 1];
  if (!v || v.startsWith('--')) throw new UsageError(`${name}: needs a value`);
  return v;
}

export function parseArgs(argv: string[]): Args {
  const known = ['--json', '--quick', '--suite', '--report'];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.split('=')[0]!;
    if (!known.includes(name)) throw new UsageError(`unknown argument '${a}' (known: ${known.join(', ')})`);
    if ((name === '--suite' || name === '--report') && !a.includes('=')) i++;
  }
  const suiteArg = value(argv, '--suite');
  const suites = suiteArg ? suiteArg.split(',').filter(Boolean) : Object.keys(SUITES);
  for (const s of suites) if (!(s in SUITES)) throw new UsageError(`--suite: unknown suite '${s}' (known: ${Object.keys(SUITES).join(', ')})`);
  return { json: argv.includes('--json'), quick: argv.includes('--quick'), report: value(argv, '--report'), suites };
}

/** Flatten nested figures to dotted rows; `spread` objects become "min – max" rows. */
function rows(prefix: string, obj: object, out: Array<[string, string]>): Array<[string, string]> {
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'spread' && v && typeof v === 'object') {
      for (const [sk, sv] of Object.entries(v as Record<string, { min: number; max: number }>)) out.push([`${prefix}${sk} range`, `${sv.min} – ${sv.max}`]);
    } else if (v && typeof v === 'object' && !Array.isArray(v)) {
      rows(`${prefix}${k}.`, v, out);
    } else {
      out.push([`${prefix}${k}`, v === null ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v)]);
    }
  }
  return out;
}

function printTable(name: string, result: object): void {
  console.log(`\n${name}`);
  const r = rows('', result, []);
  const width = Math.max(...r.map(([k]) => k.length));
  for (const [k, v] of r) console.log(`  ${k.padEnd(width)}  ${v}`);
}

/** The checked-out commit (read-only), '+' when the work tree has changes; undefined outside git. */
function gitCommit(): string | undefined {
  try {
    const opts = { encoding: 'utf8' as const, stdio: ['ignore', 'pipe', 'ignore'] as ['ignore', 'pipe', 'ignore'], timeout: 5000 };
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], opts).trim();
    const dirty = execFileSync('git', ['--no-optional-locks', 'status', '--porcelain', '--untracked-files=no'], opts).trim() !== '';
    return `${head}${dirty ? '+' : ''}`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new UsageError('benchmarks build lab network namespaces and need root');
  sweepStaleLabs();
  const log = (line: string) => {
    if (!args.json) process.stderr.write(`${line}\n`);
  };
  const started = Date.now();
  const out: Record<string, unknown> = {
    machine: {
      kernel: release(),
      cpus: cpus().length,
      cpu_model: cpus()[0]?.model,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      date: new Date().toISOString(),
      mode: args.quick ? 'quick' : 'full',
      command: ['npm run bench --', ...process.argv.slice(2)].join(' '),
      commit: gitCommit(),
      loadavg_start: loadavg().map((x) => Math.round(x * 100) / 100),
    },
  };
  const samples: Record<string, Record<string, unknown> | undefined> = {};
  const seconds: Record<string, number> = {};
  const quiet: Record<string, { waited_s: number; busy: number }> = {};
  const cpu: Record<string, { busy: number; others: number }> = {};
  for (const s of args.suites) {
    // Let the previous suite's kernel work (namespaces being freed) and other jobs quiet down.
    quiet[s] = await waitQuiet(args.quick ? 15_000 : 60_000);
    log(
      `running ${s}… (machine ${Math.round(quiet[s]!.busy * 100)}% busy before it${quiet[s]!.waited_s >= 1 ? `, after waiting ${quiet[s]!.waited_s} s` : ''})`,
    );
    const t0 = Date.now();
    const watch = cpuWatch();
    const r = await SUITES[s]!({ quick: args.quick, log });
    cpu[s] = watch.stop();
    seconds[s] = Math.round((Date.now() - t0) / 100) / 10;
    const parent = SECTION_OF[s];
    if (parent) out[parent] = { ...(out[parent] as object | undefined), [s]: r.result };
    else out[s] = { ...(out[s] as object | undefined), ...(r.result as object) };
    samples[s] = r.samples;
    if (!args.json) {
      printTable(s, r.result);
      console.log(`  (${seconds[s]} s; CPU ${Math.round(cpu[s]!.busy * 100)} % busy, ${Math.round(cpu[s]!.others * 100)} % by other work)`);
    }
  }
  (out.machine as Record<string, unknown>).loadavg_end = loadavg().map((x) => Math.round(x * 100) / 100);
  (out.machine as Record<string, unknown>).suite_seconds = seconds;
  (out.machine as Record<string, unknown>).busy_before_suite = quiet;
  // Share of all CPUs used during each suite, in all and by anything but the benchmark.
  (out.machine as Record<string, unknown>).cpu_during_suite = cpu;
  (out.machine as Record<string, unknown>).total_seconds = Math.round((Date.now() - started) / 100) / 10;
  if (args.report) {
    const path = writeReport(args.report, out, samples);
    log(`report: ${path}`);
  }
  if (args.json) {
    console.log(JSON.stringify(out));
    return;
  }
  const v = verdicts(out);
  if (v.length) {
    console.log('\ntargets (issue #7; reported, not asserted)');
    for (const x of v) console.log(`  ${x.met ? 'met   ' : 'MISSED'}  ${x.target}: ${x.measured}`);
  }
  log(`\ndone in ${(out.machine as { total_seconds: number }).total_seconds} s (load average now ${loadavg()[0]!.toFixed(2)})`);
}

const stop = (signal: NodeJS.Signals) => {
  stopAllBenchProcesses();
  runInterruptCleanups();
  process.stderr.write(`bench: ${signal}; lab namespaces removed\n`);
  process.exit(130);
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);

main().catch((e) => {
  stopAllBenchProcesses();
  if (e instanceof UsageError) console.error(`bench: ${e.message}\n${USAGE}`);
  else console.error(`bench: ${(e as Error).stack ?? (e as Error).message}`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
