/**
 * container_setup: K containers created, then destroyed, one after another through the engine
 * (Isolator.create / destroy, as the CLI and the agent call them), in a lab:
 *   - with a namespace the engine creates (the default `create`), and
 *   - with pre-created namespaces (`netnsPath`, as a runtime or CNI hands one over);
 * p50/p99 of each, and the median of every phase of create (Isolator.lastTimings). Next to it,
 * in another lab of the same run, the same topology built and removed by shell scripts of
 * `ip`/`tc`/`sysctl` commands generated from the engine's planner (bench/shell.ts); one
 * container built both ways is compared object by object (bench/equivalence.ts).
 *
 * Latency is what the caller sees: create resolves when everything is in place; destroy
 * resolves when nothing steers traffic to the container any more (the veth itself is deleted
 * in the background, as the engine does; the benchmark waits for those deletions between
 * phases, not between containers).
 */
import { readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Isolator } from '../src/isolator/engine.js';
import { PortSet } from '../src/isolator/port-set.js';
import { NetlinkSession, Netns, createNetns, removeNetns } from '../src/netlink/index.js';
import { RTM_NAMES, linkRequests } from '../src/rtnl/index.js';
import { compareTopologies, topology } from './equivalence.js';
import type { ShellHostFacts } from './shell.js';
import { ShellIsolator } from './shell.js';
import { round, summarize } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardIsolatorLab, ipJson, meterNetlinkCalls, nowMs, onInterrupt, run, sleep, waitQuiet } from './util.js';
import { IsolatorLab, tmpfsDir } from '../src/lab/index.js';

const WARM_POOL = 4;
const POOL_GAP_MS = 5;
export const BENCH_FLAGS = { resources: 'ports:[31000-32063];ephemeral_ports:[33000-60999]', ephemeral_ports_per_container: 16 };
const POOL = PortSet.ofRanges([[33000, 60999]]);

export interface LatencyFigures {
  setup_p50_ms: number;
  setup_p99_ms: number;
  teardown_p50_ms: number;
  teardown_p99_ms: number;
}

export interface ContainerSetupResult extends LatencyFigures {
  k: number;
  shell_setup_p50_ms: number;
  shell_setup_p99_ms: number;
  shell_teardown_p50_ms: number;
  shell_k: number;
  ratio_shell_vs_sdk: number;
  /** The same with namespaces created beforehand (netnsPath). */
  precreated: LatencyFigures;
  /** What any create with a namespace of its own costs at least: that namespace and a veth pair into it, nothing else (measureFloor). */
  floor: { setup_p50_ms: number; setup_p99_ms: number };
  /**
   * Engine-made namespaces through an engine keeping `spares` ready (IsolatorOptions.warmPool),
   * creates `gap_ms` apart; `spare_taken_share`: creates that found a ready spare.
   */
  warm_pool: LatencyFigures & {
    spares: number;
    gap_ms: number;
    spare_taken_share: number;
    phases_ms: Record<string, number>;
    without_pool_same_gap: LatencyFigures;
  };
  /** Median of each phase of create (engine-made namespace), ms. */
  phases_ms: Record<string, number>;
  phases_ms_precreated: Record<string, number>;
  /** The slowest tenth of creates (engine-made namespace): mean of each phase, to show where the tail goes. */
  tail_phases_ms: Record<string, number>;
  /**
   * Median time per create / destroy spent inside netlink socket calls (the kernel doing the
   * work, inside sendmsg); the rest is the process's own (JS, state files, /proc/sys, netns).
   */
  netlink_calls_ms: { setup: number; teardown: number; setup_precreated: number; teardown_precreated: number };
  /** The very first create of the run, which also sets up the host (not in the percentiles). */
  first_create_ms: number;
  shell_equivalence: string;
  ports_per_container: string;
  spread: Record<string, { min: number; max: number }>;
}

const ms = (x: number) => round(x, 2);

export function latencyFigures(setup: number[], teardown: number[]): LatencyFigures {
  const s = summarize(setup);
  const t = summarize(teardown);
  return { setup_p50_ms: ms(s.median), setup_p99_ms: ms(s.p99), teardown_p50_ms: ms(t.median), teardown_p99_ms: ms(t.p99) };
}

export function phaseMedians(phases: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(summarize(v).median, 3)]));
}

/** Per operation: wall time not covered by any phase of lastTimings (promise hops, GC, lock release). */
export const OUTSIDE = '(outside phases)';
export function addOutside(total: number[], phases: Record<string, number[]>): Record<string, number[]> {
  const keys = Object.keys(phases);
  return { ...phases, [OUTSIDE]: total.map((t, i) => Math.max(0, t - keys.reduce((a, k) => a + (phases[k]![i] ?? 0), 0))) };
}

/** Mean of each phase over the slowest tenth of the operations: where the tail's time goes. */
export function tailPhases(total: number[], phases: Record<string, number[]>): Record<string, number> {
  const cut = [...total].sort((a, b) => a - b)[Math.floor(total.length * 0.9)] ?? Infinity;
  const slow = total.map((t, i) => (t >= cut ? i : -1)).filter((i) => i >= 0);
  return Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(slow.reduce((a, i) => a + (v[i] ?? 0), 0) / Math.max(1, slow.length), 3)]));
}

/** Wait (bounded) until the host has no pmi* veths left: background deletions are done. */
export async function waitVethsGone(ns: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const left = ipJson<Array<{ ifname: string }>>(ns, 'link', 'show', 'type', 'veth').filter((l) => /^pmi\d+$/.test(l.ifname));
    if (!left.length) return;
    await sleep(50);
  }
  throw new Error(`container_setup: veths still present in ${ns} after ${timeoutMs} ms`);
}

/** The host facts the shell scripts need, read from a lab host. */
export function shellHostFacts(ns: string): ShellHostFacts {
  const managed = PortSet.parse(/ports:(\[[^\]]*\])/.exec(BENCH_FLAGS.resources)![1]!)
    .union(POOL)
    .ranges.map(([begin, end]) => ({ begin, end }));

  const links = ipJson<Array<{ ifname: string; ifindex: number; address: string; mtu: number }>>(ns, 'link', 'show');
  const eth0 = links.find((l) => l.ifname === 'eth0')!;
  const lo = links.find((l) => l.ifname === 'lo')!;
  const addr = ipJson<Array<{ addr_info: Array<{ family: string; local: string; prefixlen: number }> }>>(ns, 'addr', 'show', 'dev', 'eth0')[0]!.addr_info.find(
    (a) => a.family === 'inet',
  )!;
  const gw = ipJson<Array<{ gateway: string }>>(ns, 'route', 'show', 'default')[0]!.gateway;
  // As the engine: the host's entry for the gateway, when resolved, becomes the containers' permanent one.
  const gatewayMac = ipJson<Array<{ dst: string; lladdr?: string; state?: string[] }>>(ns, 'neigh', 'show', 'dev', 'eth0').find(
    (n) => n.dst === gw && n.lladdr && !n.state?.some((s) => s === 'FAILED' || s === 'INCOMPLETE'),
  )?.lladdr;
  return {
    ns,
    eth0: { name: 'eth0', index: eth0.ifindex, address: eth0.address, mtu: eth0.mtu },
    lo: { name: 'lo', index: lo.ifindex },
    ip: addr.local,
    prefixlen: addr.prefixlen,
    gateway: gw,
    ...(gatewayMac ? { gatewayMac } : {}),
    managed,
  };
}

/** Run a generated script with sh -e; returns its wall time (ms). */
export function runScript(lines: string[], file: string): number {
  writeFileSync(file, lines.join('\n') + '\n');
  const t0 = nowMs();
  run('sh', ['-e', file], { stdout: 'ignore', timeoutMs: 120_000 });
  return nowMs() - t0;
}

/** Interface indexes of the floor's veth pairs (clear of the engine's, 1 000 000 + N). */
const FLOOR_INDEX = 2_000_000;

/**
 * The floor of a create with a namespace of its own: `k` times, back to back, a namespace (made
 * and pinned, as the engine makes it) and a veth pair into it, one queue pair per end — nothing
 * else. Per-pair wall times (ms); the pairs and pins are removed afterwards (`name` names the pins).
 */
async function measureFloor(hostPath: string, k: number, name: (i: number) => string): Promise<number[]> {
  const session = NetlinkSession.open({ netns: Netns.fromPath(hostPath), typeNames: RTM_NAMES });
  const times: number[] = [];
  let made = 0;
  try {
    for (; made < k; made++) {
      const t0 = nowMs();
      const ns = createNetns(name(made));
      try {
        const q = { numTxQueues: 1, numRxQueues: 1 };
        await session.request(
          linkRequests.addVeth({ name: `floor${made}`, index: FLOOR_INDEX + made, ...q, peer: { name: 'eth0', index: FLOOR_INDEX + made, ...q, netns: ns } }),
        );
      } finally {
        ns.close();
      }
      times.push(nowMs() - t0);
    }
  } finally {
    for (let i = 0; i < made; i++) {
      await session.request(linkRequests.delete(FLOOR_INDEX + i)).catch(() => undefined);
      removeNetns(name(i));
    }
    session.close();
  }
  return times;
}

const portsOf = (i: number) => `[${31000 + i * 10}-${31000 + i * 10 + 9}]`;

export async function benchContainerSetup(opts: SuiteOptions): Promise<SuiteOutput<ContainerSetupResult>> {
  const k = opts.quick ? 50 : 100;
  const shellK = opts.quick ? 6 : 20;
  const warmups = opts.quick ? 100 : 300;
  const elab = new IsolatorLab(tmpfsDir()); // work_dir on tmpfs, like the default /var/run
  const slab = new IsolatorLab();
  const script = join(tmpdir(), `pmi-bench-shell-${process.pid}.sh`);
  const preNames: string[] = [];
  /** The floor's pins (removed by measureFloor; here for an interrupt). */
  const floorNames: string[] = [];
  const shellNames: string[] = [];
  const removeExtra = () => {
    for (const n of [...preNames.splice(0), ...floorNames.splice(0)]) removeNetns(n);
    for (const n of shellNames.splice(0)) {
      try {
        run('ip', ['netns', 'del', n], { timeoutMs: 10_000 });
      } catch {
        /* removed by its teardown script */
      }
    }
  };
  const unguard = [guardIsolatorLab(elab), guardIsolatorLab(slab), onInterrupt(removeExtra)];
  let iso: Isolator | undefined;
  try {
    iso = await elab.open(BENCH_FLAGS);
    const host = elab.lab.host;

    // The first create sets the host up; then more warm the JIT, as in an agent that has been
    // running a while (none of these is counted; with 10, every create step still ran as
    // unoptimised code: ~50 µs for what takes ~5 µs once optimised).
    let t0 = nowMs();
    await iso.create({ id: 'warm0', ports: portsOf(0) });
    const firstCreate = nowMs() - t0;
    await iso.destroy('warm0');
    for (let i = 1; i <= warmups; i++) {
      await iso.create({ id: `warm${i}`, ports: portsOf(i % k) });
      await iso.destroy(`warm${i}`);
    }
    await waitVethsGone(host);
    // The kernel frees destroyed namespaces in the background (cleanup_net, under the RTNL lock):
    // measure only once that is over, as before each measured phase below.
    await waitQuiet(opts.quick ? 5000 : 15_000);

    /** Create k containers, then destroy them; per-call wall times and create phases. */
    const measure = async (label: string, netnsPath?: (i: number) => string, pool?: { iso: Isolator; gapMs: number; spares: () => number; hits: number[] }) => {
      const engine = pool?.iso ?? iso!;
      opts.log(`container_setup: ${k} containers (${label})`);
      const setup: number[] = [];
      const teardown: number[] = [];
      const netlinkSetup: number[] = [];
      const netlinkTeardown: number[] = [];
      const phases: Record<string, number[]> = {};
      const meter = meterNetlinkCalls();
      try {
        for (let i = 0; i < k; i++) {
          const spec = { id: `c${i}`, ports: portsOf(i), ...(netnsPath ? { netnsPath: netnsPath(i) } : {}) };
          if (pool) {
            await sleep(pool.gapMs);
            pool.hits.push(pool.spares() > 0 ? 1 : 0);
          }
          meter.take();
          t0 = nowMs();
          await engine.create(spec);
          setup.push(nowMs() - t0);
          netlinkSetup.push(meter.take());
          for (const [p, v] of Object.entries(engine.lastTimings)) (phases[p] ??= []).push(v);
        }
        for (let i = 0; i < k; i++) {
          meter.take();
          t0 = nowMs();
          await engine.destroy(`c${i}`);
          teardown.push(nowMs() - t0);
          netlinkTeardown.push(meter.take());
        }
      } finally {
        meter.restore();
      }
      if (!pool) await waitVethsGone(host); // (a pool keeps its spares' veths; its cleanup waits)
      return { setup, teardown, phases: addOutside(setup, phases), netlinkSetup, netlinkTeardown };
    };

    const own = await measure('namespaces made by the engine');
    await waitQuiet(opts.quick ? 5000 : 15_000);
    opts.log(`container_setup: ${k} × a namespace and a veth pair into it (the floor)`);
    const floor = await measureFloor(elab.lab.path(host), k, (i) => {
      const name = `${elab.lab.id}-floor${i}`;
      if (!floorNames.includes(name)) floorNames.push(name);
      return name;
    });
    for (let i = 0; i < k; i++) {
      const name = `${elab.lab.id}-pre${i}`;
      createNetns(name);
      preNames.push(name);
    }
    await waitQuiet(opts.quick ? 5000 : 15_000);
    const pre = await measure('pre-created namespaces', (i) => `/run/netns/${preNames[i]}`);

    // The warm pool: engine-made namespaces again, through an engine keeping 4 spares, with the
    // creates 5 ms apart (a spare takes ~3–4 ms to make, so the pool refills between them; back to
    // back, a create would wait for the refill holding the lock, and nothing would be gained).
    await waitQuiet(opts.quick ? 5000 : 15_000);
    const pooled = await elab.open(BENCH_FLAGS, [], { warmPool: WARM_POOL });
    const readySpares = () =>
      readdirSync(join(elab.workDir, 'spares')).filter((f) => f.endsWith('.json') && readFileSync(join(elab.workDir, 'spares', f), 'utf8').includes('"ready"'))
        .length;
    const hits: number[] = [];
    for (let i = 0; i < warmups / 2; i++) {
      // Warms the path of a create that takes a spare (and starts the refill).
      await sleep(POOL_GAP_MS);
      await pooled.create({ id: `pool-warm${i}`, ports: portsOf(i % k) });
      await pooled.destroy(`pool-warm${i}`);
    }
    await waitQuiet(opts.quick ? 5000 : 15_000);
    const warm = await measure(`namespaces from a warm pool of ${WARM_POOL}, creates ${POOL_GAP_MS} ms apart`, undefined, {
      iso: pooled,
      gapMs: POOL_GAP_MS,
      spares: readySpares,
      hits,
    });
    await pooled.cleanup();
    await pooled.close();
    await waitVethsGone(host);
    // The same spacing without a pool: an idle gap before each create makes it slower by itself
    // on this VM (measured: 3.6 → ~6 ms p50 with 20 ms gaps), so the pool is compared with this.
    await waitQuiet(opts.quick ? 5000 : 15_000);
    const spaced = await measure(`namespaces made by the engine, creates ${POOL_GAP_MS} ms apart`, undefined, {
      iso: iso!,
      gapMs: POOL_GAP_MS,
      spares: () => 0,
      hits: [],
    });

    // The shell baseline, in its own lab.
    opts.log(`container_setup: ${shellK} containers by shell scripts`);
    const sfacts = shellHostFacts(slab.lab.host);
    const sh = new ShellIsolator(sfacts, POOL, 16);
    runScript(sh.hostSetup(), script);
    const shellSetup: number[] = [];
    const shellTeardown: number[] = [];
    for (let i = 0; i < shellK; i++) {
      const name = `${slab.lab.id}-sh${i}`;
      shellNames.push(name);
      shellSetup.push(runScript(sh.create(`s${i}`, PortSet.parse(portsOf(i)), { ns: name, createNs: true }).script, script));
    }
    for (let i = 0; i < shellK; i++) shellTeardown.push(runScript(sh.destroy(`s${i}`, { removeNs: true }), script));

    // Equivalence: one container built both ways, compared object by object.
    opts.log('container_setup: comparing one container built by the engine and by the shell');
    const info = await iso.create({ id: 'eq', ports: portsOf(3) });
    const rec = (await iso.get('eq'))!;
    const eqName = `${slab.lab.id}-sheq`;
    shellNames.push(eqName);
    const seq = rec.vethIndex - 1_000_000;
    runScript(
      sh.create('eq', PortSet.parse(portsOf(3)), { ns: eqName, createNs: true, fixed: { seq, ephemeral: rec.ephemeralPorts, mirrorSlot: rec.mirrorSlot } })
        .script,
      script,
    );
    const eth0 = iso.host.eth0.index;
    const lo = iso.host.lo.index;
    const a = await topology({ host: elab.lab.path(host), container: info.netns, vethIndex: rec.vethIndex, eth0, lo, mac: iso.host.eth0.address });
    const b = await topology({
      host: slab.lab.path(slab.lab.host),
      container: `/run/netns/${eqName}`,
      vethIndex: rec.vethIndex,
      eth0: sfacts.eth0.index,
      lo: sfacts.lo.index,
      mac: sfacts.eth0.address,
    });
    const diff = compareTopologies(a, b);
    const objects = Object.values(a).reduce((n, v) => n + v.length, 0);
    await iso.destroy('eq');
    runScript(sh.destroy('eq', { removeNs: true }), script);

    const ss = summarize(shellSetup);
    const st = summarize(shellTeardown);
    const headline = latencyFigures(own.setup, own.teardown);
    const sp = (v: number[]) => {
      const s = summarize(v);
      return { min: ms(s.min), max: ms(s.max) };
    };
    return {
      result: {
        k,
        ...headline,
        shell_setup_p50_ms: ms(ss.median),
        shell_setup_p99_ms: ms(ss.p99),
        shell_teardown_p50_ms: ms(st.median),
        shell_k: shellK,
        ratio_shell_vs_sdk: round(ss.median / headline.setup_p50_ms, 1),
        precreated: latencyFigures(pre.setup, pre.teardown),
        floor: { setup_p50_ms: ms(summarize(floor).median), setup_p99_ms: ms(summarize(floor).p99) },
        warm_pool: {
          ...latencyFigures(warm.setup, warm.teardown),
          spares: WARM_POOL,
          gap_ms: POOL_GAP_MS,
          spare_taken_share: round(hits.reduce((a, b) => a + b, 0) / Math.max(1, hits.length), 2),
          phases_ms: phaseMedians(warm.phases),
          without_pool_same_gap: latencyFigures(spaced.setup, spaced.teardown),
        },
        phases_ms: phaseMedians(own.phases),
        phases_ms_precreated: phaseMedians(pre.phases),
        tail_phases_ms: tailPhases(own.setup, own.phases),
        netlink_calls_ms: {
          setup: ms(summarize(own.netlinkSetup).median),
          teardown: ms(summarize(own.netlinkTeardown).median),
          setup_precreated: ms(summarize(pre.netlinkSetup).median),
          teardown_precreated: ms(summarize(pre.netlinkTeardown).median),
        },
        first_create_ms: ms(firstCreate),
        shell_equivalence: diff ? `DIFFERS: ${diff}` : `identical (${objects} objects compared)`,
        ports_per_container: '10 non-ephemeral ports (e.g. [31000-31009]) + a 16-port ephemeral block',
        spread: {
          setup_ms: sp(own.setup),
          teardown_ms: sp(own.teardown),
          precreated_setup_ms: sp(pre.setup),
          precreated_teardown_ms: sp(pre.teardown),
          shell_setup_ms: sp(shellSetup),
        },
      },
      samples: {
        setup: own.setup,
        teardown: own.teardown,
        pre_setup: pre.setup,
        pre_teardown: pre.teardown,
        shell_setup: shellSetup,
        shell_teardown: shellTeardown,
        phases: phaseMedians(own.phases),
        phases_pre: phaseMedians(pre.phases),
      },
    };
  } finally {
    await elab.destroy(); // engine cleanup() + lab
    removeExtra();
    await slab.destroy();
    for (const u of unguard) u();
    try {
      unlinkSync(script);
    } catch {
      /* none */
    }
  }
}
