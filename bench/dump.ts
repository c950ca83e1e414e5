/**
 * dump: listing 10 000 u32 filters (the filter_install layout) on one device, by the SDK
 * (Tc.listFilters: every filter decoded into typed matches and actions), by the SDK's request
 * engine alone (a dump that keeps only each handle), and by `tc filter show` (text) and
 * `tc -j filter show` (JSON), each as one process. Counts are checked on every run.
 */
import { NetlinkSession, Netns } from '../src/netlink/index.js';
import { RTM_NAMES } from '../src/rtnl/index.js';
import { Tc, U32NodeAllocator, filterDumpRequest, isU32 } from '../src/tc/index.js';
import type { U32FilterSpec } from '../src/tc/index.js';
import { round, summarize } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardLab, ip, ipJson, nowMs, run } from './util.js';
import { Lab } from '../src/lab/index.js';

export interface DumpResult {
  n: number;
  sdk_ms: number;
  sdk_handles_only_ms: number;
  tc_ms: number;
  tc_json_ms: number;
  ratio_tc_vs_sdk: number;
  repetitions: number;
  spread: Record<string, { min: number; max: number }>;
}

const TABLE = 0x100;
const PT = (TABLE << 20) >>> 0;

export async function benchDump(opts: SuiteOptions): Promise<SuiteOutput<DumpResult>> {
  const n = 10_000;
  const reps = opts.quick ? 3 : 5;
  const lab = new Lab({ world: false });
  const unguard = guardLab(lab);
  const ns = lab.host;
  const session = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  const tc = new Tc(session);
  try {
    ip(ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
    const links = ipJson<Array<{ ifname: string; ifindex: number }>>(ns, 'link', 'show');
    const dev = links.find((l) => l.ifname === 'bench0')!.ifindex;
    const target = links.find((l) => l.ifname === 'bench1')!.ifindex;
    await tc.addQdisc({ ifindex: dev, kind: 'ingress' });
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
    const { results } = await tc.addFilters(specs);
    const bad = results.find((r) => !r.ok);
    if (bad && !bad.ok) throw bad.error;
    opts.log(`dump: ${n} filters installed; ${reps} repetitions`);

    const inTable = (h: number) => h >>> 20 === TABLE && (h & 0xfff) !== 0;
    const sdk = async () => {
      const fs = await tc.listFilters(dev, 'ffff:');
      const c = fs.filter((f) => isU32(f) && inTable(f.handle) && f.actions.length === 1 && f.matches.length === 2).length;
      if (c !== n) throw new Error(`dump: the SDK listed ${c} filters, expected ${n}`);
    };
    const handles = async () => {
      const hs = await session.dump(filterDumpRequest(dev, 'ffff:'), { decode: (m) => m.payload.readUInt32LE(8) });
      const c = hs.filter(inTable).length;
      if (c !== n) throw new Error(`dump: the handle-only dump counted ${c} filters, expected ${n}`);
    };
    const tcText = () => {
      const out = run('tc', ['-n', ns, 'filter', 'show', 'dev', 'bench0', 'ingress']);
      const c = out.split('\n').filter((l) => /^filter .* fh 100:[0-9a-f]+:[0-9a-f]+ order/.test(l)).length;
      if (c !== n) throw new Error(`dump: tc filter show printed ${c} filters, expected ${n}`);
    };
    const tcJson = () => {
      const out = JSON.parse(run('tc', ['-n', ns, '-j', 'filter', 'show', 'dev', 'bench0', 'ingress'])) as Array<{
        options?: { fh?: string; actions?: unknown[] };
      }>;
      const c = out.filter((f) => /^100:[0-9a-f]+:[0-9a-f]+$/.test(f.options?.fh ?? '') && f.options?.actions?.length === 1).length;
      if (c !== n) throw new Error(`dump: tc -j filter show listed ${c} filters, expected ${n}`);
    };
    // warm up
    await sdk();
    await handles();
    tcText();
    tcJson();
    const t: Record<string, number[]> = { sdk: [], handles: [], tc: [], tc_json: [] };
    const time = async (k: string, fn: () => unknown) => {
      const t0 = nowMs();
      await fn();
      t[k]!.push(nowMs() - t0);
    };
    for (let r = 0; r < reps; r++) {
      await time('sdk', sdk);
      await time('handles', handles);
      await time('tc', tcText);
      await time('tc_json', tcJson);
    }
    const s = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, summarize(v)]));
    const spread = Object.fromEntries(
      Object.entries(s).map(([k, v]) => [`${k === 'handles' ? 'sdk_handles_only' : k}_ms`, { min: round(v.min, 1), max: round(v.max, 1) }]),
    );
    return {
      result: {
        n,
        sdk_ms: round(s.sdk!.median, 1),
        sdk_handles_only_ms: round(s.handles!.median, 1),
        tc_ms: round(s.tc!.median, 1),
        tc_json_ms: round(s.tc_json!.median, 1),
        ratio_tc_vs_sdk: round(s.tc!.median / s.sdk!.median),
        repetitions: reps,
        spread,
      },
      samples: t,
    };
  } finally {
    session.close();
    lab.destroy();
    unguard();
  }
}
