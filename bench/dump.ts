/**
 * dump: listing 10 000 u32 filters (the filter_install layout) on one device, by the SDK
 * (Tc.listFilters: every filter decoded into typed matches and actions), by the SDK's request
 * engine alone (a dump that keeps only each handle), and by `tc filter show` (text) and
 * `tc -j filter show` (JSON), each as one process; then 1000 links (500 veth pairs) listed by the SDK
 * (Rtnl.links.list(): every link decoded) and by `ip -j link show`. Counts are checked on every run.
 *
 * The flat keys (sdk_ms, tc_ms, ...) are the filter medians the report has always read; `n10000`
 * and `links_n1000` hold the same runs as medians and p99s, plus the CPU time of the in-process
 * probes (`*_cpu_ms`), steadier than wall time when other work shares the machine.
 */
import { NetlinkSession, Netns } from '../src/netlink/index.js';
import { RTM_NAMES, Rtnl } from '../src/rtnl/index.js';
import { Tc, U32NodeAllocator, filterDumpRequest, isU32 } from '../src/tc/index.js';
import type { U32FilterSpec } from '../src/tc/index.js';
import { round, summarize } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardLab, ip, ipJson, nowMs, run } from './util.js';
import { Lab } from '../src/lab/index.js';

/** Median and p99 of one measured thing, ms. */
type Timed<K extends string> = { [P in `${K}_ms` | `${K}_p99_ms`]: number };

export interface DumpResult {
  n: number;
  sdk_ms: number;
  sdk_handles_only_ms: number;
  tc_ms: number;
  tc_json_ms: number;
  ratio_tc_vs_sdk: number;
  repetitions: number;
  spread: Record<string, { min: number; max: number }>;
  n10000: Timed<'sdk' | 'sdk_handles_only' | 'tc' | 'tc_json' | 'sdk_cpu' | 'sdk_handles_only_cpu'> & {
    ratio_sdk_vs_tc: number;
    ratio_sdk_vs_handles_only: number;
    ratio_sdk_vs_handles_only_cpu: number;
  };
  links_n1000: Timed<'sdk' | 'ip' | 'sdk_cpu'> & { n: number; repetitions: number; ratio_sdk_vs_ip: number };
}

const TABLE = 0x100;
const PT = (TABLE << 20) >>> 0;
const N_FILTERS = 10_000;
const N_LINKS = 1000;

/** The filter_install layout: a 256-bucket table, a link into it, n port filters with mirred. */
function filterSpecs(dev: number, target: number, n: number): U32FilterSpec[] {
  const alloc = new U32NodeAllocator();
  const specs: U32FilterSpec[] = [
    { kind: 'u32', ifindex: dev, parent: 'ffff:', priority: 1, protocol: 'ip', handle: PT, divisor: 256 },
    {
      kind: 'u32',
      ifindex: dev,
      parent: 'ffff:',
      priority: 1,
      protocol: 'ip',
      handle: 0x800,
      matches: [{ type: 'ipDst', address: '198.18.0.2/32' }],
      link: PT,
      hashkey: { mask: 0xff00, at: 20 },
    },
  ];
  for (let i = 0; i < n; i++) {
    const port = 20000 + i;
    const ht = (PT | ((port >> 8) << 12)) >>> 0;
    specs.push({
      kind: 'u32',
      ifindex: dev,
      parent: 'ffff:',
      priority: 1,
      protocol: 'ip',
      handle: alloc.allocate({ ht }),
      ht,
      matches: [
        { type: 'ipDst', address: '198.18.0.2/32' },
        { type: 'dstPort', port },
      ],
      actions: [{ kind: 'mirred', action: 'redirect', ifindex: target }],
    });
  }
  return specs;
}

/**
 * Run every probe once to warm up, then `reps` rounds of all of them, interleaved. Wall time of
 * each, and for the in-process probes (`cpu` names them) this process's CPU time as `<k>_cpu`:
 * on a shared machine the wall time of a dump mostly measures the other tenants.
 */
async function timeRounds(probes: Record<string, () => unknown>, reps: number, cpu: string[] = []): Promise<Record<string, number[]>> {
  for (const fn of Object.values(probes)) await fn();
  const t: Record<string, number[]> = Object.fromEntries([...Object.keys(probes), ...cpu.map((k) => `${k}_cpu`)].map((k) => [k, []]));
  for (let r = 0; r < reps; r++) {
    for (const [k, fn] of Object.entries(probes)) {
      const c0 = process.cpuUsage();
      const t0 = nowMs();
      await fn();
      t[k]!.push(nowMs() - t0);
      const c = process.cpuUsage(c0);
      if (cpu.includes(k)) t[`${k}_cpu`]!.push((c.user + c.system) / 1000);
    }
  }
  return t;
}

/** `{ k_ms: median, k_p99_ms: p99 }` for each key. */
function medianP99(t: Record<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(t)) {
    const s = summarize(v);
    out[`${k}_ms`] = round(s.median, 1);
    out[`${k}_p99_ms`] = round(s.p99, 1);
  }
  return out;
}

async function benchFilters(ns: string, session: NetlinkSession, reps: number, log: (s: string) => void) {
  const tc = new Tc(session);
  ip(ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
  const links = ipJson<Array<{ ifname: string; ifindex: number }>>(ns, 'link', 'show');
  const dev = links.find((l) => l.ifname === 'bench0')!.ifindex;
  const target = links.find((l) => l.ifname === 'bench1')!.ifindex;
  await tc.addQdisc({ ifindex: dev, kind: 'ingress' });
  const { results } = await tc.addFilters(filterSpecs(dev, target, N_FILTERS));
  const bad = results.find((r) => !r.ok);
  if (bad && !bad.ok) throw bad.error;
  log(`dump: ${N_FILTERS} filters installed; ${reps} repetitions`);

  const n = N_FILTERS;
  const inTable = (h: number) => h >>> 20 === TABLE && (h & 0xfff) !== 0;
  const count = (what: string, c: number) => {
    if (c !== n) throw new Error(`dump: ${what} listed ${c} filters, expected ${n}`);
  };
  return timeRounds(
    {
      sdk: async () => {
        const fs = await tc.listFilters(dev, 'ffff:');
        count('the SDK', fs.filter((f) => isU32(f) && inTable(f.handle) && f.actions.length === 1 && f.matches.length === 2).length);
      },
      sdk_handles_only: async () => {
        const hs = await session.dump(filterDumpRequest(dev, 'ffff:'), { decode: (m) => m.payload.readUInt32LE(8) });
        count('the handle-only dump', hs.filter(inTable).length);
      },
      tc: () => {
        const out = run('tc', ['-n', ns, 'filter', 'show', 'dev', 'bench0', 'ingress']);
        count('tc filter show', out.split('\n').filter((l) => /^filter .* fh 100:[0-9a-f]+:[0-9a-f]+ order/.test(l)).length);
      },
      tc_json: () => {
        const out = JSON.parse(run('tc', ['-n', ns, '-j', 'filter', 'show', 'dev', 'bench0', 'ingress'])) as Array<{
          options?: { fh?: string; actions?: unknown[] };
        }>;
        count('tc -j filter show', out.filter((f) => /^100:[0-9a-f]+:[0-9a-f]+$/.test(f.options?.fh ?? '') && f.options?.actions?.length === 1).length);
      },
    },
    reps,
    ['sdk', 'sdk_handles_only'],
  );
}

async function benchLinks(ns: string, session: NetlinkSession, reps: number, log: (s: string) => void) {
  const batch = Array.from({ length: N_LINKS / 2 }, (_, i) => `link add bd${i} type veth peer name bp${i}\n`).join('');
  run('ip', ['-n', ns, '-batch', '-'], { input: batch, stdout: 'ignore' });
  log(`dump: ${N_LINKS} veth links added; ${reps} repetitions`);
  const rtnl = new Rtnl(session, undefined);
  const count = (what: string, names: string[]) => {
    const c = names.filter((x) => /^b[dp]\d+$/.test(x)).length;
    if (c !== N_LINKS) throw new Error(`dump: ${what} listed ${c} veth links, expected ${N_LINKS}`);
  };
  return timeRounds(
    {
      sdk: async () =>
        count(
          'Rtnl.links.list()',
          (await rtnl.links.list()).map((l) => l.name),
        ),
      ip: () =>
        count(
          'ip -j link show',
          ipJson<Array<{ ifname: string }>>(ns, 'link', 'show').map((l) => l.ifname),
        ),
    },
    reps,
    ['sdk'],
  );
}

export async function benchDump(opts: SuiteOptions): Promise<SuiteOutput<DumpResult>> {
  const reps = opts.quick ? 3 : 5;
  const linkReps = opts.quick ? 5 : 20;
  const lab = new Lab({ world: false });
  const unguard = guardLab(lab);
  const ns = lab.host;
  const session = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  try {
    const t = await benchFilters(ns, session, reps, opts.log);
    const l = await benchLinks(ns, session, linkReps, opts.log);
    const s = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summarize(v)]));
    const wallOnly = Object.entries(s).filter(([k]) => !k.endsWith('_cpu'));
    const spread = Object.fromEntries(wallOnly.map(([k, v]) => [`${k}_ms`, { min: round(v.min, 1), max: round(v.max, 1) }]));
    const f = medianP99(t) as DumpResult['n10000'];
    const lk = medianP99(l) as DumpResult['links_n1000'];
    return {
      result: {
        n: N_FILTERS,
        sdk_ms: f.sdk_ms,
        sdk_handles_only_ms: f.sdk_handles_only_ms,
        tc_ms: f.tc_ms,
        tc_json_ms: f.tc_json_ms,
        ratio_tc_vs_sdk: round(s.tc!.median / s.sdk!.median),
        repetitions: reps,
        spread,
        n10000: {
          ...f,
          ratio_sdk_vs_tc: round(f.sdk_ms / f.tc_ms),
          ratio_sdk_vs_handles_only: round(f.sdk_ms / f.sdk_handles_only_ms),
          ratio_sdk_vs_handles_only_cpu: round(f.sdk_cpu_ms / f.sdk_handles_only_cpu_ms),
        },
        links_n1000: { ...lk, n: N_LINKS, repetitions: linkReps, ratio_sdk_vs_ip: round(lk.sdk_ms / lk.ip_ms) },
      },
      samples: { ...t, ...Object.fromEntries(Object.entries(l).map(([k, v]) => [`links_${k}`, v])) },
    };
  } finally {
    session.close();
    lab.destroy();
    unguard();
  }
}
