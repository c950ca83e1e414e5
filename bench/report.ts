/**
 * `--report DIR`: a Markdown report (DIR/report.md) with hand-written SVG plots (latency
 * distributions, where create's time goes, scaling curves, install rates) and every figure and
 * raw sample in DIR/results.json. Targets (issue #7) are compared, never asserted.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AgentScaleResult } from './agent-scale.js';
import type { ContainerSetupResult } from './container-setup.js';
import type { DumpResult } from './dump.js';
import type { FilterInstallResult, MethodFigures } from './filter-install.js';
import type { RawResult } from './raw.js';
import type { ScalingResult } from './scaling.js';
import { barChart, cdfChart, color, lineChart, short, stackedBars } from './svg.js';

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | undefined;
}

type Out = Record<string, unknown> & {
  machine?: Record<string, unknown>;
  filter_install?: FilterInstallResult;
  container_setup?: ContainerSetupResult;
  /** `agent` alone (`--suite agent`) when the scaling suite itself did not run. */
  scaling?: Partial<ScalingResult> & { agent?: AgentScaleResult };
  dump?: DumpResult;
  raw?: RawResult;
};

/** '; floor …': a namespace and a veth pair alone, from the same run (older results have none). */
const floorNote = (cs: ContainerSetupResult, which: 'p50' | 'p99'): string =>
  cs.floor ? `; floor (a namespace and a veth pair into it, nothing else) ${which === 'p50' ? cs.floor.setup_p50_ms : cs.floor.setup_p99_ms} ms` : '';

/** The scaling suite's own figures, if it ran (its `agent` section can come alone). */
const scalingOf = (out: Out): ScalingResult | undefined => (out.scaling?.phases_ms ? (out.scaling as ScalingResult) : undefined);

/** The issue's targets against the figures of this run (undefined: not measured). */
export function verdicts(out: Out): Verdict[] {
  const v: Verdict[] = [];
  const agent = out.scaling?.agent;
  if (agent) {
    const top = `at ${agent.containers} containers`;
    v.push(
      { target: `agent RSS ≤ 100 MB ${top}`, measured: `${agent.rss_mb[`at_${agent.containers}`]} MB`, met: agent.rss_mb[`at_${agent.containers}`]! <= 100 },
      {
        target: `GET /monitor/statistics and /metrics ≤ 100 ms ${top} (median)`,
        measured: `${agent.monitor_statistics_ms.median} and ${agent.metrics_ms.median} ms`,
        met: Math.max(agent.monitor_statistics_ms.median, agent.metrics_ms.median) <= 100,
      },
      { target: `agent start-up recover ≤ 2 s ${top}`, measured: `${agent.recover_ms} ms`, met: agent.recover_ms <= 2000 },
    );
  }
  const fi = out.filter_install;
  if (fi) {
    for (const key of ['n1000', 'n10000'] as const) {
      const m = fi[key];
      if (m.c_floor_per_sec) {
        v.push({
          target: `filter install (${m.n}): SDK batched within ×1.3 of the C floor`,
          measured:
            `SDK ${short(m.sdk_batched_per_sec)}/s vs floor ${short(m.c_floor_per_sec)}/s (×${(m.c_floor_per_sec / m.sdk_batched_per_sec).toFixed(2)} slower)` +
            (m.c_floor_ack_each_per_sec
              ? `; vs a C floor acknowledging each request ${short(m.c_floor_ack_each_per_sec)}/s (×${(m.c_floor_ack_each_per_sec / m.sdk_batched_per_sec).toFixed(2)})`
              : ''),
          met: m.c_floor_per_sec / m.sdk_batched_per_sec <= 1.3,
        });
      }
      v.push({ target: `filter install (${m.n}): SDK batched ≈ 2× tc -batch`, measured: `×${m.ratio_sdk_vs_tc_batch}`, met: m.ratio_sdk_vs_tc_batch >= 2 });
    }
  }
  const cs = out.container_setup;
  if (cs) {
    const wp = cs.warm_pool;
    if (wp) {
      const how = `warm pool of ${wp.spares} (the agent's default), creates ${wp.gap_ms} ms apart, ${Math.round(wp.spare_taken_share * 100)} % took a spare`;
      v.push({ target: 'setup p50 ≤ 1.5 ms, with a warm pool', measured: `${wp.setup_p50_ms} ms (${how})`, met: wp.setup_p50_ms <= 1.5 });
      v.push({ target: 'setup p99 ≤ 4 ms, with a warm pool', measured: `${wp.setup_p99_ms} ms (${how})`, met: wp.setup_p99_ms <= 4 });
    }
    const spaced = wp ? `; ${wp.without_pool_same_gap.setup_p50_ms} / ${wp.without_pool_same_gap.setup_p99_ms} ms ${wp.gap_ms} ms apart` : '';
    v.push({
      target: 'setup p50 ≤ 1.5 ms, without a pool',
      measured: `${cs.setup_p50_ms} ms (engine-made netns), ${cs.precreated.setup_p50_ms} ms (pre-created)${spaced && ` (p50 / p99${spaced})`}${floorNote(cs, 'p50')}`,
      met: cs.setup_p50_ms <= 1.5,
    });
    v.push({
      target: 'setup p99 ≤ 4 ms, without a pool',
      measured: `${cs.setup_p99_ms} ms (engine-made netns), ${cs.precreated.setup_p99_ms} ms (pre-created)${floorNote(cs, 'p99')}`,
      met: cs.setup_p99_ms <= 4,
    });
    v.push({
      target: 'caller-visible teardown ≤ 3 ms (p50)',
      measured: `${cs.teardown_p50_ms} ms (p99 ${cs.teardown_p99_ms}); pre-created ${cs.precreated.teardown_p50_ms} ms`,
      met: cs.teardown_p50_ms <= 3,
    });
  }
  const sc = scalingOf(out);
  if (sc) {
    const wp = sc.warm_pool;
    if (wp)
      v.push({
        target: 'setup at 1000 containers ≤ 1.3× at 0, with a warm pool',
        measured: `${wp.setup_p50_ms.at_1000} vs ${wp.setup_p50_ms.at_0} ms (×${wp.ratio_setup_1000_vs_0}; pool of ${wp.spares}, creates ${wp.gap_ms} ms apart)`,
        met: wp.ratio_setup_1000_vs_0 <= 1.3,
      });
    v.push({
      target: 'setup at 1000 containers ≤ 1.3× at 0, without a pool',
      measured: `${sc.setup_p50_ms_at_1000} vs ${sc.setup_p50_ms_at_0} ms (×${sc.ratio_setup_1000_vs_0})`,
      met: sc.ratio_setup_1000_vs_0 <= 1.3,
    });
    v.push({
      target: 'pps at 1000 containers ≥ 0.9× pps at 1',
      measured: `${short(sc.pps_at_1000)} vs ${short(sc.pps_at_1)} (×${sc.ratio_pps_1000_vs_1}; newest container, position ${sc.bucket_position.at_1000} in its bucket)`,
      met: sc.ratio_pps_1000_vs_1 >= 0.9,
    });
  }
  return v;
}

const md = (rows: Array<Array<string | number | null | undefined>>) =>
  rows
    .map((r, i) => `| ${r.map((c) => (c === null || c === undefined ? '—' : String(c))).join(' | ')} |${i === 0 ? `\n|${r.map(() => '---').join('|')}|` : ''}`)
    .join('\n');

function filterRows(m: MethodFigures): Array<Array<string | number | null>> {
  const r = (k: keyof MethodFigures & string, label: string) => {
    const v = m[k] as number | null;
    const s = m.spread[k];
    return [label, v === null ? null : v.toLocaleString('en-US'), s ? `${s.min.toLocaleString('en-US')} – ${s.max.toLocaleString('en-US')}` : null];
  };
  return [
    ['method', 'filters/s (median)', 'min – max'],
    r('c_floor_per_sec', "C floor (nl-replay.c, the SDK's bytes)"),
    r('c_floor_ack_each_per_sec', 'C floor, ACK on every request'),
    r('sdk_batched_per_sec', 'SDK batched'),
    r('sdk_single_per_sec', 'SDK one at a time'),
    r('tc_batch_per_sec', 'tc -batch'),
    r('tc_process_per_sec', `one tc process per filter${m.tc_process_n && m.tc_process_n !== m.n ? ` (${m.tc_process_n} filters)` : ''}`),
  ];
}

export function writeReport(dir: string, out: Out, samples: Record<string, Record<string, unknown> | undefined>): string {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true });
  const svg = (name: string, text: string) => {
    writeFileSync(join(abs, name), text);
    return `![${name}](${name})`;
  };
  const m = out.machine ?? {};
  const lines: string[] = [];
  lines.push('# portmap-isolator benchmarks', '');
  lines.push(
    `Run ${String(m.date)} in ${String(m.mode)} mode (\`${String(m.command)}\`, commit ${String(m.commit ?? '?')}), ` +
      `${String(m.total_seconds)} s. Machine: Linux ${String(m.kernel)}, ${String(m.cpus)} × ${String(m.cpu_model)}, ${String(m.memory_gb)} GB, Node ${String(m.node)}. ` +
      `Load average (1 min) ${String((m.loadavg_start as number[] | undefined)?.[0] ?? '?')} at the start, ${String((m.loadavg_end as number[] | undefined)?.[0] ?? '?')} at the end.`,
    '',
    'Everything runs in lab network namespaces (198.18.0.0/15), never in the root namespace. Medians with min – max (rates) or p50/p99 (latencies).',
    '',
  );
  const quiet = m.busy_before_suite as Record<string, { waited_s: number; busy: number }> | undefined;
  if (quiet) {
    lines.push(
      `Whole-machine CPU use just before each suite (the runner waits up to a minute for it to drop below 15 %): ${Object.entries(quiet)
        .map(([k, q]) => `${k} ${Math.round(q.busy * 100)} %${q.waited_s >= 1 ? ` (after ${q.waited_s} s)` : ''}`)
        .join(', ')}. Figures taken while other work runs on the machine are not comparable with quiet ones.`,
      '',
      `CPU use during each suite (all CPUs; in brackets the part not used by the benchmark or its children, i.e. other jobs and deferred kernel work): ${Object.entries(
        (m.cpu_during_suite as Record<string, { busy: number; others: number }> | undefined) ?? {},
      )
        .map(([k, c]) => `${k} ${Math.round(c.busy * 100)} % (${Math.round(c.others * 100)} %)`)
        .join(', ')}.`,
      '',
    );
  }
  const v = verdicts(out);
  if (v.length) {
    lines.push(
      '## Targets (issue #7)',
      '',
      md([['target', 'measured', ''], ...v.map((x) => [x.target, x.measured, x.met === undefined ? '—' : x.met ? 'met' : '**missed**'])]),
      '',
    );
  }

  const fi = out.filter_install;
  if (fi) {
    lines.push(
      '## filter_install',
      '',
      `${fi.layout}. Repetitions: ${fi.repetitions.n1000} (1000 filters), ${fi.repetitions.n10000} (10 000), ${fi.repetitions.tc_process} for one tc process per filter; ${fi.verified}; C floor: ${fi.c_floor}.`,
      '',
    );
    for (const k of ['n1000', 'n10000'] as const) {
      const f = fi[k];
      lines.push(
        `### ${f.n} filters`,
        '',
        md(filterRows(f)),
        '',
        `SDK batched / tc -batch: ×${f.ratio_sdk_vs_tc_batch} (per-run range ${f.spread.ratio_sdk_vs_tc_batch?.min} – ${f.spread.ratio_sdk_vs_tc_batch?.max}); SDK batched / C floor: ×${f.ratio_sdk_vs_c_floor ?? '—'} (ACK each: ×${f.ratio_sdk_vs_c_floor_ack_each ?? '—'}).`,
        '',
      );
    }
    const bars = (f: MethodFigures) =>
      (
        [
          ['C floor', 'c_floor_per_sec'],
          ['C floor, ACK each', 'c_floor_ack_each_per_sec'],
          ['SDK batched', 'sdk_batched_per_sec'],
          ['SDK one at a time', 'sdk_single_per_sec'],
          ['tc -batch', 'tc_batch_per_sec'],
          ['tc per process', 'tc_process_per_sec'],
        ] as const
      )
        .filter(([, key]) => f[key] !== null)
        .map(([label, key], i) => ({ label, value: f[key] as number, min: f.spread[key]?.min, max: f.spread[key]?.max, color: color(i) }));
    lines.push(
      svg(
        'filter-install.svg',
        barChart({
          title: 'u32 filter install rate (filters/s, median, min–max)',
          unit: 'filters per second',
          log: true,
          groups: [
            { label: '1000 filters', bars: bars(fi.n1000) },
            { label: '10 000 filters', bars: bars(fi.n10000) },
          ],
        }),
      ),
      '',
    );
  }

  const cs = out.container_setup;
  const css = samples.container_setup as Record<string, number[] | Record<string, number>> | undefined;
  if (cs) {
    lines.push(
      '## container_setup',
      '',
      `${cs.k} containers created one after another, then destroyed, through the engine; each holds ${cs.ports_per_container}. ` +
        `The shell baseline builds the same topology with one \`ip\`/\`tc\`/\`sysctl\` process per command (${cs.shell_k} containers); ` +
        `one container built both ways compared object by object: ${cs.shell_equivalence}.`,
      '',
      md([
        ['variant', 'setup p50', 'setup p99', 'teardown p50', 'teardown p99'],
        ['engine, namespace made by the engine', cs.setup_p50_ms, cs.setup_p99_ms, cs.teardown_p50_ms, cs.teardown_p99_ms],
        [
          'engine, pre-created namespace (netnsPath)',
          cs.precreated.setup_p50_ms,
          cs.precreated.setup_p99_ms,
          cs.precreated.teardown_p50_ms,
          cs.precreated.teardown_p99_ms,
        ],
        ...(cs.warm_pool
          ? [
              [
                `engine, warm pool of ${cs.warm_pool.spares} (creates ${cs.warm_pool.gap_ms} ms apart; ${Math.round(cs.warm_pool.spare_taken_share * 100)} % took a spare)`,
                cs.warm_pool.setup_p50_ms,
                cs.warm_pool.setup_p99_ms,
                cs.warm_pool.teardown_p50_ms,
                cs.warm_pool.teardown_p99_ms,
              ],
              [
                `engine, no pool, creates ${cs.warm_pool.gap_ms} ms apart`,
                cs.warm_pool.without_pool_same_gap.setup_p50_ms,
                cs.warm_pool.without_pool_same_gap.setup_p99_ms,
                cs.warm_pool.without_pool_same_gap.teardown_p50_ms,
                cs.warm_pool.without_pool_same_gap.teardown_p99_ms,
              ],
            ]
          : []),
        ['shell script (ip/tc per command)', cs.shell_setup_p50_ms, cs.shell_setup_p99_ms, cs.shell_teardown_p50_ms, null],
        ...(cs.floor ? [['the floor: a namespace and a veth pair into it, nothing else (SDK)', cs.floor.setup_p50_ms, cs.floor.setup_p99_ms, null, null]] : []),
      ]),
      '',
      `All in ms. Shell / engine setup (p50): ×${cs.ratio_shell_vs_sdk}. The first create of the run (which also sets the host up) took ${cs.first_create_ms} ms. ` +
        `Time inside netlink socket calls (the kernel at work, median per call): create ${cs.netlink_calls_ms.setup} ms (pre-created namespace: ${cs.netlink_calls_ms.setup_precreated} ms), destroy ${cs.netlink_calls_ms.teardown} ms; the rest is the process's own.`,
      '',
    );
    if (css) {
      lines.push(
        svg(
          'setup-latency.svg',
          cdfChart({
            title: 'Create and destroy latency (distribution)',
            xLabel: 'ms',
            log: true,
            series: [
              { label: 'create', values: css.setup as number[] },
              { label: 'create, pre-created ns', values: css.pre_setup as number[] },
              { label: 'destroy', values: css.teardown as number[], dashed: true },
              { label: 'destroy, pre-created', values: css.pre_teardown as number[], dashed: true },
              { label: 'shell create', values: css.shell_setup as number[] },
              { label: 'shell destroy', values: css.shell_teardown as number[], dashed: true },
            ],
            refs: [
              { value: 1.5, label: 'p50 target 1.5' },
              { value: 4, label: 'p99 target 4' },
            ],
          }),
        ),
        '',
      );
    }
    const sc = scalingOf(out);
    const rows = [
      { label: 'engine netns', parts: cs.phases_ms },
      { label: 'pre-created netns', parts: cs.phases_ms_precreated },
      ...(cs.warm_pool ? [{ label: 'from a warm pool', parts: cs.warm_pool.phases_ms }] : []),
      { label: 'slowest tenth', parts: cs.tail_phases_ms },
      ...(sc ? Object.entries(sc.phases_ms).map(([k, p]) => ({ label: `scaling, ${k.replace('at_', '')} present`, parts: p })) : []),
    ];
    lines.push(
      'Where create spends its time (median of each phase of `Isolator.lastTimings`, ms):',
      '',
      svg('setup-phases.svg', stackedBars({ title: 'create: median time per phase', unit: 'ms', rows })),
      '',
    );
  }

  const sc = scalingOf(out);
  if (sc) {
    const ss = samples.scaling as
      | { setup: Record<string, number[]>; pool_setup?: Record<string, number[]>; pps: Record<string, number[]>; pps_first: Record<string, number[]> }
      | undefined;
    const poolCell = (k: 'at_0' | 'at_100' | 'at_1000') => (sc.warm_pool ? `${sc.warm_pool.setup_p50_ms[k]} / ${sc.warm_pool.setup_p99_ms[k]}` : undefined);
    lines.push(
      '## scaling',
      '',
      `One more container created (and destroyed) ${sc.samples_per_level} times with 0, 100 and 1000 containers present; UDP flood (${sc.flood}) to the newest container's port with 1, 100 and 1000 present. ` +
        `Each container holds one port of 31000–32000 and a 16-port ephemeral block, so the port table is as dense as the pool allows (the newest container's filter is the last of a full bucket at 1000). ` +
        `Filling to 1000 took ${sc.fill_seconds} s; the engine's cleanup() of 1000 containers and the lab ${sc.cleanup_seconds} s.`,
      '',
      `Time inside netlink socket calls per create (median): ${sc.netlink_calls_ms.at_0} / ${sc.netlink_calls_ms.at_100} / ${sc.netlink_calls_ms.at_1000} ms at 0 / 100 / 1000.`,
      '',
      md([
        [
          'containers present',
          'setup p50 (ms)',
          'setup p99 (ms)',
          'warm pool: setup p50 / p99 (ms)',
          'teardown p50 (ms)',
          'pps, newest container',
          'its bucket position',
          'pps, first container',
        ],
        [
          '0 / 1',
          sc.setup_p50_ms_at_0,
          sc.setup_p99_ms.at_0,
          poolCell('at_0'),
          sc.teardown_p50_ms.at_0,
          sc.pps_at_1,
          sc.bucket_position.at_1,
          sc.pps_first_container.at_1,
        ],
        [
          '100',
          sc.setup_p50_ms_at_100,
          sc.setup_p99_ms.at_100,
          poolCell('at_100'),
          sc.teardown_p50_ms.at_100,
          sc.pps_at_100,
          sc.bucket_position.at_100,
          sc.pps_first_container.at_100,
        ],
        [
          '1000',
          sc.setup_p50_ms_at_1000,
          sc.setup_p99_ms.at_1000,
          poolCell('at_1000'),
          sc.teardown_p50_ms.at_1000,
          sc.pps_at_1000,
          sc.bucket_position.at_1000,
          sc.pps_first_container.at_1000,
        ],
      ]),
      '',
    );
    if (ss) {
      const pts = (o: Record<string, number[]>, xs: number[], map: (x: number) => number, p = 50, whiskers = true) =>
        xs.map((x) => {
          const v = o[String(map(x))] ?? [];
          const s = [...v].sort((a, b) => a - b);
          const y = s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? 0;
          return whiskers ? { x, y, min: s[0], max: s[s.length - 1] } : { x, y };
        });
      lines.push(
        svg(
          'scaling-setup.svg',
          lineChart({
            title: 'Create latency vs containers already present',
            xLabel: 'containers present',
            yLabel: 'ms',
            xs: [0, 100, 1000],
            series: [
              { label: 'create p50 (whisker: min–max)', points: pts(ss.setup, [0, 100, 1000], (x) => x) },
              { label: 'create p99', points: pts(ss.setup, [0, 100, 1000], (x) => x, 99, false), dashed: true },
              ...(ss.pool_setup
                ? [
                    {
                      label: `create from a warm pool, p50 (${sc.warm_pool?.gap_ms} ms apart)`,
                      points: pts(ss.pool_setup, [0, 100, 1000], (x) => x, 50, false),
                    },
                  ]
                : []),
            ],
            refs: [{ value: sc.setup_p50_ms_at_0 * 1.3, label: 'target: 1.3 × at 0' }],
          }),
        ),
        '',
        svg(
          'scaling-pps.svg',
          lineChart({
            title: 'UDP datagrams/s through the host to a container',
            xLabel: 'containers present',
            yLabel: 'datagrams per second',
            xs: [1, 100, 1000],
            series: [
              { label: 'newest container (last in its bucket)', points: pts(ss.pps, [1, 100, 1000], (x) => x) },
              { label: 'first container (head of its bucket)', points: pts(ss.pps_first, [1, 100, 1000], (x) => x), dashed: true },
            ],
            refs: [{ value: sc.pps_at_1 * 0.9, label: 'target: 0.9 × at 1' }],
            xNotes: {
              1: `newest: position ${sc.bucket_position.at_1} in its bucket`,
              100: `position ${sc.bucket_position.at_100}`,
              1000: `position ${sc.bucket_position.at_1000}`,
            },
          }),
        ),
        '',
      );
    }
  }

  const d = out.dump;
  if (d) {
    lines.push(
      '## dump',
      '',
      `Listing ${d.n} filters on one device, ${d.repetitions} repetitions (median ms, min – max):`,
      '',
      md([
        ['method', 'ms', 'min – max'],
        ['SDK Tc.listFilters (typed matches and actions)', d.sdk_ms, `${d.spread.sdk_ms?.min} – ${d.spread.sdk_ms?.max}`],
        ['SDK dump, handles only (request engine)', d.sdk_handles_only_ms, `${d.spread.sdk_handles_only_ms?.min} – ${d.spread.sdk_handles_only_ms?.max}`],
        ['tc filter show (text, one process)', d.tc_ms, `${d.spread.tc_ms?.min} – ${d.spread.tc_ms?.max}`],
        ['tc -j filter show (JSON, one process)', d.tc_json_ms, `${d.spread.tc_json_ms?.min} – ${d.spread.tc_json_ms?.max}`],
      ]),
      '',
      svg(
        'dump.svg',
        barChart({
          title: `Listing ${d.n} u32 filters (ms, median, min–max)`,
          unit: 'ms',
          groups: [
            {
              label: 'dump',
              bars: [
                { label: 'SDK listFilters', value: d.sdk_ms, ...d.spread.sdk_ms },
                { label: 'SDK handles only', value: d.sdk_handles_only_ms, ...d.spread.sdk_handles_only_ms },
                { label: 'tc filter show', value: d.tc_ms, ...d.spread.tc_ms },
                { label: 'tc -j filter show', value: d.tc_json_ms, ...d.spread.tc_json_ms },
              ],
            },
          ],
        }),
      ),
      '',
    );
  }

  const raw = out.raw;
  if (raw) {
    lines.push(
      '## raw (the netlink floor: RTM_GETLINK of lo)',
      '',
      md([
        ['method', 'requests/s'],
        ['SDK one at a time (async)', raw.sdk_single_per_sec],
        ['SDK one at a time (requestSync)', raw.sdk_sync_single_per_sec],
        ['SDK batched', raw.sdk_batched_per_sec],
        ['ip -batch', raw.ip_batch_per_sec],
        ['one ip process per request', raw.ip_process_per_sec],
      ]),
      '',
    );
  }
  lines.push('Raw samples and every figure: [results.json](results.json).', '');
  writeFileSync(join(abs, 'results.json'), JSON.stringify({ ...out, samples }, null, 1) + '\n');
  const path = join(abs, 'report.md');
  writeFileSync(path, lines.join('\n'));
  return path;
}
