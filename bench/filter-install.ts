/**
 * filter_install: N u32 filters (destination IP + destination port, mirred redirect to a veth)
 * in the hashed layout the isolator uses (a 256-bucket table keyed on the destination port's
 * high byte, reached through a link filter), installed in a lab namespace by:
 *   - the SDK, batched (Tc.addFilters: one request per filter, few sendmsg calls);
 *   - the SDK, one request at a time (await each ACK);
 *   - `tc -batch` (one tc process reading every command);
 *   - one `tc` process per filter (N = 1000 only; how Mesos does it), from a shell script;
 *   - the C floor: the SDK's bytes replayed by bench/floor/nl-replay.c (kernel + syscalls only).
 * Every method installs the same filters with the same handles; the table is emptied (ingress
 * qdisc removed and rebuilt) before each run and the count is verified by a dump after it.
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetlinkError, NetlinkSession, Netns } from '../src/netlink/index.js';
import { RTM_NAMES } from '../src/rtnl/index.js';
import { Tc, U32NodeAllocator, filterDumpRequest, filterRequest, formatU32Handle } from '../src/tc/index.js';
import type { U32FilterSpec } from '../src/tc/index.js';
import { round, summarize } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { buildFloor, guardLab, ip, ipJson, nowMs, recordSends, run, sleep } from './util.js';
import { Lab } from '../src/lab/index.js';

const DST = '198.18.0.2';
const TABLE = 0x100; // htid of the port table
const PRIO = 1;
const FIRST_PORT = 20000;
const PORT_TABLE = (TABLE << 20) >>> 0;

export interface MethodFigures {
  n: number;
  sdk_batched_per_sec: number;
  sdk_single_per_sec: number;
  tc_batch_per_sec: number;
  /** null when not measured (N = 10000). */
  tc_process_per_sec: number | null;
  /** Filters the tc-process figure was measured on (a rate; quick mode uses fewer). */
  tc_process_n: number | null;
  /** The C floor replaying the SDK's bytes (NLM_F_ACK on the last request of each sendmsg). */
  c_floor_per_sec: number | null;
  /** The same bytes with NLM_F_ACK on every request: a C program acknowledging each one. */
  c_floor_ack_each_per_sec: number | null;
  ratio_sdk_vs_tc_batch: number;
  ratio_sdk_vs_c_floor: number | null;
  ratio_sdk_vs_c_floor_ack_each: number | null;
  spread: Record<string, { min: number; max: number }>;
}

export interface FilterInstallResult {
  n1000: MethodFigures;
  n10000: MethodFigures;
  repetitions: { n1000: number; n10000: number; tc_process: number };
  layout: string;
  c_floor: string;
  verified: string;
}

interface Plan {
  specs: U32FilterSpec[];
  tcLines: string[];
}

/** N filters: ports FIRST_PORT…, handle 100:<dport high byte>:<node>, redirect to `target`. */
function plan(n: number, ifindex: number, dev: string, targetIndex: number, target: string): Plan {
  const alloc = new U32NodeAllocator();
  const specs: U32FilterSpec[] = [];
  const tcLines: string[] = [];
  for (let i = 0; i < n; i++) {
    const port = FIRST_PORT + i;
    const ht = (PORT_TABLE | ((port >> 8) << 12)) >>> 0;
    const handle = alloc.allocate({ ht });
    specs.push({
      kind: 'u32',
      ifindex,
      parent: 'ffff:',
      priority: PRIO,
      protocol: 'ip',
      handle,
      ht,
      matches: [
        { type: 'ipDst', address: `${DST}/32` },
        { type: 'dstPort', port },
      ],
      actions: [{ kind: 'mirred', action: 'redirect', ifindex: targetIndex }],
    });
    tcLines.push(
      `filter add dev ${dev} parent ffff: prio ${PRIO} protocol ip handle ${formatU32Handle(handle)} u32 ht ${formatU32Handle(ht)} ` +
        `match ip dst ${DST}/32 match ip dport ${port} 0xffff action mirred egress redirect dev ${target}`,
    );
  }
  return { specs, tcLines };
}

export async function benchFilterInstall(opts: SuiteOptions): Promise<SuiteOutput<FilterInstallResult>> {
  // Repetitions: 10 at N=1000 (one run takes tens of ms), 5 at N=10000; one tc process per
  // filter takes ~10 ms a filter, so it runs 5 times (quick: 3 times, on the first 200 filters).
  const repsFor = (n: number) => (n === 1000 ? 10 : 5);
  const processReps = opts.quick ? 3 : 5;
  const processN = opts.quick ? 200 : 1000;
  const lab = new Lab({ world: false });
  const unguard = guardLab(lab);
  const ns = lab.host;
  const session = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  const tc = new Tc(session);
  const files: string[] = [];
  const floor = buildFloor();
  try {
    ip(ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
    ip(ns, 'link', 'set', 'bench0', 'up');
    ip(ns, 'link', 'set', 'bench1', 'up');
    const links = ipJson<Array<{ ifname: string; ifindex: number }>>(ns, 'link', 'show');
    const dev = links.find((l) => l.ifname === 'bench0')!.ifindex;
    const target = links.find((l) => l.ifname === 'bench1')!.ifindex;

    /** Remove every filter (with the qdisc) and rebuild the empty table and its link filter. */
    const reset = async () => {
      try {
        await tc.deleteQdisc({ ifindex: dev, kind: 'ingress', parent: 'ingress' });
      } catch (e) {
        if (!(e instanceof NetlinkError)) throw e;
      }
      await tc.addQdisc({ ifindex: dev, kind: 'ingress' });
      const { results } = await tc.addFilters([
        { kind: 'u32', ifindex: dev, parent: 'ffff:', priority: PRIO, protocol: 'ip', handle: PORT_TABLE, divisor: 256 },
        {
          kind: 'u32',
          ifindex: dev,
          parent: 'ffff:',
          priority: PRIO,
          protocol: 'ip',
          handle: 0x800,
          matches: [{ type: 'ipDst', address: `${DST}/32` }],
          link: PORT_TABLE,
          hashkey: { mask: 0x0000ff00, at: 20 },
        },
      ]);
      for (const r of results) if (!r.ok) throw r.error;
    };
    /** Filter nodes in the port table, counted from a dump (handles only). */
    const count = async () => {
      const handles = await session.dump(filterDumpRequest(dev, 'ffff:'), { decode: (m) => m.payload.readUInt32LE(8) });
      return handles.filter((h) => h >>> 20 === TABLE && (h & 0xfff) !== 0).length;
    };
    const verify = async (what: string, n: number) => {
      const got = await count();
      if (got !== n) throw new Error(`filter_install: ${what} left ${got} filters in the table, expected ${n}`);
    };

    // Warm up the JIT and the kernel's allocators (not measured).
    {
      const warm = plan(1000, dev, 'bench0', target, 'bench1');
      for (let i = 0; i < 2; i++) {
        await reset();
        await tc.addFilters(warm.specs);
        await reset();
        for (const s of warm.specs.slice(0, 300)) await session.request(filterRequest('add', s));
      }
    }

    const sizes = [1000, 10_000] as const;
    const out: Partial<Record<'n1000' | 'n10000', MethodFigures>> = {};
    const samples: Record<string, Record<string, number[]>> = {};
    for (const n of sizes) {
      const reps = repsFor(n);
      opts.log(`filter_install: ${n} filters × ${reps} repetitions`);
      const p = plan(n, dev, 'bench0', target, 'bench1');
      const batchFile = join(tmpdir(), `pmi-bench-tc-${process.pid}-${n}.batch`);
      writeFileSync(batchFile, p.tcLines.join('\n') + '\n');
      files.push(batchFile);
      const scriptFile = join(tmpdir(), `pmi-bench-tc-${process.pid}-${n}.sh`);
      writeFileSync(
        scriptFile,
        p.tcLines
          .slice(0, processN)
          .map((l) => `tc -n ${ns} ${l}`)
          .join('\n') + '\n',
      );
      files.push(scriptFile);
      // The C floor replays the bytes the SDK sends (recorded from one unmeasured run).
      const msgFile = join(tmpdir(), `pmi-bench-nl-${process.pid}-${n}.bin`);
      await reset();
      writeFileSync(msgFile, await recordSends(session, () => tc.addFilters(p.specs)));
      files.push(msgFile);

      const rate: Record<string, number[]> = { sdk_batched: [], sdk_single: [], tc_batch: [], tc_process: [], c_floor: [], c_floor_ack_each: [], ratio: [] };
      // Empty the table, then let the kernel's deferred frees of the previous run settle (filters
      // are freed from a workqueue after RCU: measured, 50 ms after a reset of 1000 filters the
      // next run was up to 2× slower for every method).
      const fresh = async () => {
        await reset();
        await sleep(300);
      };
      for (let r = 0; r < reps; r++) {
        // SDK, batched
        await fresh();
        let t0 = nowMs();
        const { results } = await tc.addFilters(p.specs);
        let ms = nowMs() - t0;
        const bad = results.find((x) => !x.ok);
        if (bad && !bad.ok) throw bad.error;
        await verify('the SDK (batched)', n);
        rate.sdk_batched!.push(n / (ms / 1e3));

        // SDK, one request at a time
        await fresh();
        t0 = nowMs();
        for (const s of p.specs) await session.request(filterRequest('add', s));
        ms = nowMs() - t0;
        await verify('the SDK (one at a time)', n);
        rate.sdk_single!.push(n / (ms / 1e3));

        // tc -batch
        await fresh();
        t0 = nowMs();
        run('tc', ['-n', ns, '-batch', batchFile], { stdout: 'ignore', timeoutMs: 300_000 });
        ms = nowMs() - t0;
        await verify('tc -batch', n);
        rate.tc_batch!.push(n / (ms / 1e3));
        rate.ratio!.push(rate.sdk_batched!.at(-1)! / rate.tc_batch!.at(-1)!);

        // The C floor
        if (floor.path) {
          await fresh();
          const [ok, errors, errno, ns_] = run(floor.path, [lab.path(ns), msgFile, '1024', String(128 << 10)])
            .trim()
            .split(' ')
            .map(Number);
          if (errors) throw new Error(`filter_install: the C floor got ${errors} errors (first errno ${errno})`);
          await verify('the C floor', ok!);
          rate.c_floor!.push(n / (ns_! / 1e9));
          // The same bytes with NLM_F_ACK on every message: one ACK per request, as most libraries do.
          await fresh();
          const [okA, errorsA, errnoA, nsA] = run(floor.path, [lab.path(ns), msgFile, '1024', String(128 << 10), '1'])
            .trim()
            .split(' ')
            .map(Number);
          if (errorsA) throw new Error(`filter_install: the C floor (ACK each) got ${errorsA} errors (first errno ${errnoA})`);
          await verify('the C floor (ACK each)', okA!);
          rate.c_floor_ack_each!.push(n / (nsA! / 1e9));
        }

        // One tc process per filter (N = 1000 only)
        if (n === 1000 && r < processReps) {
          await fresh();
          t0 = nowMs();
          run('sh', ['-e', scriptFile], { stdout: 'ignore', timeoutMs: 600_000 });
          ms = nowMs() - t0;
          await verify('one tc process per filter', processN);
          rate.tc_process!.push(processN / (ms / 1e3));
        }
      }
      await reset();
      samples[`n${n}`] = rate;
      const s = Object.fromEntries(Object.entries(rate).map(([k, v]) => [k, v.length ? summarize(v) : undefined]));
      const m = (k: string) => (s[k] ? Math.round(s[k]!.median) : null);
      const spread: Record<string, { min: number; max: number }> = {};
      for (const [k, v] of Object.entries(s)) {
        if (!v) continue;
        spread[k === 'ratio' ? 'ratio_sdk_vs_tc_batch' : `${k}_per_sec`] =
          k === 'ratio' ? { min: round(v.min), max: round(v.max) } : { min: Math.round(v.min), max: Math.round(v.max) };
      }
      out[`n${n}`] = {
        n,
        sdk_batched_per_sec: m('sdk_batched')!,
        sdk_single_per_sec: m('sdk_single')!,
        tc_batch_per_sec: m('tc_batch')!,
        tc_process_per_sec: m('tc_process'),
        tc_process_n: n === 1000 ? processN : null,
        c_floor_per_sec: m('c_floor'),
        c_floor_ack_each_per_sec: m('c_floor_ack_each'),
        ratio_sdk_vs_tc_batch: round(s.sdk_batched!.median / s.tc_batch!.median),
        ratio_sdk_vs_c_floor: s.c_floor ? round(s.sdk_batched!.median / s.c_floor.median) : null,
        ratio_sdk_vs_c_floor_ack_each: s.c_floor_ack_each ? round(s.sdk_batched!.median / s.c_floor_ack_each.median) : null,
        spread,
      };
    }
    return {
      result: {
        n1000: out.n1000!,
        n10000: out.n10000!,
        repetitions: { n1000: repsFor(1000), n10000: repsFor(10_000), tc_process: processReps },
        layout: 'u32 hash table 100: (256 buckets, hashkey dport high byte) behind a link filter; each filter: ip dst + dport, mirred egress redirect',
        c_floor: floor.path ? 'bench/floor/nl-replay.c replaying the SDK request bytes' : `not measured: ${floor.reason}`,
        verified: 'filter count checked by a dump after every run',
      },
      samples,
    };
  } finally {
    session.close();
    lab.destroy();
    unguard();
    for (const f of files) {
      try {
        unlinkSync(f);
      } catch {
        /* gone */
      }
    }
  }
}
