/**
 * What IPv6 (--ipv6, issue #19) costs a container: create and destroy latency in a dual-stack lab
 * next to an IPv4-only one (the same flags; rounds alternate between the two so that drift of the
 * machine falls on both), and the kernel objects one container adds, counted in the kernel.
 */
import type { Isolator } from '../src/isolator/index.js';
import { IsolatorLab, tmpfsDir } from '../src/lab/index.js';
import { BENCH_FLAGS, latencyFigures, phaseMedians } from './container-setup.js';
import { round } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardIsolatorLab, nowMs, run, waitQuiet } from './util.js';

export interface Ipv6Result {
  containers_per_round: number;
  rounds: number;
  ipv4_only: ReturnType<typeof latencyFigures>;
  dual_stack: ReturnType<typeof latencyFigures>;
  ratio_setup_p50_dual_vs_ipv4: number;
  /** u32 filters one container (a 10-port block and its ephemeral block) has, per place. */
  filters_per_container: Record<'ipv4_only' | 'dual_stack', Record<'host_eth0_lo' | 'host_veth' | 'container', number>>;
  /** The median of each phase of create (Isolator.lastTimings), ms. */
  create_phase_medians_ms: Record<'ipv4_only' | 'dual_stack', Record<string, number>>;
}

const ports = (i: number) => `[${31000 + i * 10}-${31000 + i * 10 + 9}]`;

/** u32 filter nodes (no tables, no per-priority placeholders) on a device's ingress in a namespace (a name or a path). */
function u32Filters(netns: string, dev: string): number {
  const enter = netns.startsWith('/') ? ['nsenter', `--net=${netns}`, 'tc'] : ['tc', '-n', netns];
  const out = run(enter[0]!, [...enter.slice(1), 'filter', 'show', 'dev', dev, 'ingress']);
  return out.split('\n').filter((l) => /^filter .* u32 .* fh [0-9a-f]+:[0-9a-f]*:[0-9a-f]+ /.test(l)).length;
}

export async function benchIpv6(opts: SuiteOptions): Promise<SuiteOutput<Ipv6Result>> {
  const k = opts.quick ? 20 : 50;
  const rounds = opts.quick ? 2 : 4;
  const labs = { ipv4_only: new IsolatorLab(tmpfsDir()), dual_stack: new IsolatorLab(tmpfsDir(), { ipv6: true }) };
  const unguard = Object.values(labs).map(guardIsolatorLab);
  try {
    const isos: Record<keyof typeof labs, Isolator> = {
      ipv4_only: await labs.ipv4_only.open(BENCH_FLAGS),
      dual_stack: await labs.dual_stack.open(BENCH_FLAGS),
    };
    const filters = {} as Ipv6Result['filters_per_container'];
    for (const kind of ['ipv4_only', 'dual_stack'] as const) {
      const lab = labs[kind].lab;
      await isos[kind].create({ id: 'first', ports: ports(1) }); // (sets the host up)
      const before = u32Filters(lab.host, 'eth0') + u32Filters(lab.host, 'lo');
      const c = await isos[kind].create({ id: 'count', ports: ports(0) });
      filters[kind] = {
        host_eth0_lo: u32Filters(lab.host, 'eth0') + u32Filters(lab.host, 'lo') - before,
        host_veth: u32Filters(lab.host, c.veth),
        container: u32Filters(c.netns, 'lo') + u32Filters(c.netns, 'eth0'),
      };
      await isos[kind].destroy('count');
      await isos[kind].destroy('first');
      // Warm the JIT (not counted).
      for (let i = 0; i < 50; i++) {
        await isos[kind].create({ id: `warm${i}`, ports: ports(i % k) });
        await isos[kind].destroy(`warm${i}`);
      }
    }
    const sampleSet = () => ({ setup: [] as number[], teardown: [] as number[], phases: {} as Record<string, number[]> });
    const samples = { ipv4_only: sampleSet(), dual_stack: sampleSet() };
    for (let r = 0; r < rounds; r++) {
      for (const kind of r % 2 ? (['dual_stack', 'ipv4_only'] as const) : (['ipv4_only', 'dual_stack'] as const)) {
        await waitQuiet(opts.quick ? 3000 : 10_000);
        opts.log(`ipv6: round ${r + 1}/${rounds}, ${k} containers, ${kind}`);
        const iso = isos[kind];
        for (let i = 0; i < k; i++) {
          const t0 = nowMs();
          await iso.create({ id: `c${i}`, ports: ports(i) });
          samples[kind].setup.push(nowMs() - t0);
          for (const [p, v] of Object.entries(iso.lastTimings)) (samples[kind].phases[p] ??= []).push(v);
        }
        for (let i = 0; i < k; i++) {
          const t0 = nowMs();
          await iso.destroy(`c${i}`);
          samples[kind].teardown.push(nowMs() - t0);
        }
      }
    }
    const v4 = latencyFigures(samples.ipv4_only.setup, samples.ipv4_only.teardown);
    const v6 = latencyFigures(samples.dual_stack.setup, samples.dual_stack.teardown);
    return {
      result: {
        containers_per_round: k,
        rounds,
        ipv4_only: v4,
        dual_stack: v6,
        ratio_setup_p50_dual_vs_ipv4: round(v6.setup_p50_ms / v4.setup_p50_ms, 2),
        filters_per_container: filters,
        create_phase_medians_ms: { ipv4_only: phaseMedians(samples.ipv4_only.phases), dual_stack: phaseMedians(samples.dual_stack.phases) },
      },
    };
  } finally {
    for (const lab of Object.values(labs)) await lab.destroy();
    for (const u of unguard) u();
  }
}
