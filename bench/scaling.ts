/**
 * scaling: does a container's cost depend on how many others there are?
 *
 * Setup: with 0, 100 and 1000 containers already present, create M more containers one after
 * another (then destroy them all and wait for their veths to be gone, so the next level starts
 * from its count); p50/p99 and the median of each create phase at each level.
 *
 * Control plane: at the same levels, 10 000 ICMP echo requests and then ARP requests a second to
 * the host's address from the world (control-flood.ts): the host's CPU in cores and the answers
 * per request (Mesos' data path: every container answers both).
 *
 * Data path: with 1, 100 and 1000 containers present, a bounded UDP flood (iperf3, 64-byte
 * datagrams, fixed duration) from the lab's world to the host IP and a container's port, steered
 * by the host's eth0 port table to the container. The figure is datagrams per second through the
 * host to the container (the container eth0's rx_packets over the sender's time); every packet is
 * classified on the sender's CPU, so the classifier's per-packet cost shows in it.
 *
 * With a warm pool (the agent's default of 4 spares): the same M creates at each level through a
 * second engine on the same work_dir, 5 ms apart so the pool refills between them.
 *
 * Every container holds one non-ephemeral port (container i: 31000 + i) and a 16-port ephemeral
 * block, so the port tables are as dense as the pool allows: at 1000 containers, every 16-port
 * level-2 bucket of 31000–31999 holds 16 filters (with the one-level table of earlier versions, a
 * 256-port bucket held 256). The target is the NEWEST container (its filter is the last of its
 * bucket: the worst place), alternating with the first one (the head of its bucket), so the cost
 * of the bucket position and that of the container count show apart.
 */
import type { Isolator } from '../src/isolator/engine.js';
import { NetlinkSession, Netns } from '../src/netlink/index.js';
import { RTM_NAMES, Rtnl } from '../src/rtnl/index.js';
import { Tc } from '../src/tc/index.js';
import { BENCH_FLAGS, addOutside, phaseMedians } from './container-setup.js';
import { round, summarize } from './stats.js';
import { floodCost } from './control-flood.js';
import type { FloodCost } from './control-flood.js';
import { udpFlood } from './traffic.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardIsolatorLab, meterNetlinkCalls, nowMs, run, sleep, waitQuiet } from './util.js';
import { HOST_IP, IsolatorLab, tmpfsDir } from '../src/lab/index.js';

export interface ScalingResult {
  setup_p50_ms_at_0: number;
  setup_p50_ms_at_100: number;
  setup_p50_ms_at_1000: number;
  setup_p99_ms: { at_0: number; at_100: number; at_1000: number };
  teardown_p50_ms: { at_0: number; at_100: number; at_1000: number };
  ratio_teardown_1000_vs_0: number;
  /** Median time per destroy inside netlink socket calls (the veth's deletion, in the background, not included). */
  teardown_netlink_calls_ms: { at_0: number; at_100: number; at_1000: number };
  /**
   * Mirred actions in the host's namespace with the level's containers present: the kernel walks
   * every mirred action of the machine whenever any device goes away (mirred_device_event).
   */
  host_mirred_actions: { at_0: number; at_100: number; at_1000: number };
  ratio_setup_1000_vs_0: number;
  pps_at_1: number;
  pps_at_100: number;
  pps_at_1000: number;
  ratio_pps_1000_vs_1: number;
  /** The same floods to the first container (the head of its bucket), alternating with the newest. */
  pps_first_container: { at_1: number; at_100: number; at_1000: number };
  ratio_pps_first_1000_vs_1: number;
  /** Filters the newest container's packets are compared with in their bucket (its position). */
  bucket_position: { at_1: number; at_100: number; at_1000: number };
  /** Datagrams the iperf3 server itself read per second (bounded by the app, not the host). */
  app_pps: { at_1: number; at_100: number; at_1000: number };
  /** ICMP echo / ARP requests to the host's address at requests_per_s: the machine's CPU (cores; control-flood.ts) and the answers per request. */
  control_plane: {
    requests_per_s: number;
    icmp_echo_cpu_cores: { at_1: number; at_100: number; at_1000: number };
    icmp_echo_replies_per_request: { at_1: number; at_100: number; at_1000: number };
    arp_cpu_cores: { at_1: number; at_100: number; at_1000: number };
    arp_replies_per_request: { at_1: number; at_100: number; at_1000: number };
  };
  /** Median of each create phase at each level (ms). */
  phases_ms: Record<string, Record<string, number>>;
  /** Median time per create inside netlink socket calls (the kernel's share), at each level. */
  netlink_calls_ms: { at_0: number; at_100: number; at_1000: number };
  samples_per_level: number;
  flood: string;
  fill_seconds: number;
  cleanup_seconds: number;
  spread: Record<string, { min: number; max: number }>;
  /** The same probes through an engine with a warm pool, POOL_GAP_MS apart. */
  warm_pool: {
    spares: number;
    gap_ms: number;
    setup_p50_ms: { at_0: number; at_100: number; at_1000: number };
    setup_p99_ms: { at_0: number; at_100: number; at_1000: number };
    ratio_setup_1000_vs_0: number;
    samples_per_level: number;
    spare_taken_share: number;
    phases_ms: Record<string, Record<string, number>>;
    /** Its first create after the other engine filled the level: reloads every record (not in the figures above). */
    first_create_after_fill_ms: { at_0: number; at_100: number; at_1000: number };
  };
}

const LEVELS = [0, 100, 1000] as const;
/** ICMP echo / ARP requests a second to the host's address, for the control-plane cost. */
const CONTROL_RATE = 10_000;
/** Probe j holds port PROBE_PORT + j (managed: BENCH_FLAGS' ports end at 32063). */
const PROBE_PORT = 32000;
const WARM_POOL = 4;
const POOL_GAP_MS = 5;

/** How many mirred actions a namespace holds (tc's JSON listing). */
function mirredActions(netns: string): number {
  const out = JSON.parse(run('ip', ['netns', 'exec', netns, 'tc', '-j', 'actions', 'ls', 'action', 'mirred'])) as Array<{ actions?: unknown[] }>;
  return out.reduce((n, x) => n + (x.actions?.length ?? 0), 0);
}

export async function benchScaling(opts: SuiteOptions): Promise<SuiteOutput<ScalingResult>> {
  const m = opts.quick ? 10 : 30;
  /** Creates from the pool per level: cheap, and its median at 0 (~1 ms) is easily moved by a slow stretch. */
  const mPool = opts.quick ? 20 : 60;
  const floodSeconds = opts.quick ? 1 : 3;
  const floodReps = opts.quick ? 2 : 3;
  const lab = new IsolatorLab(tmpfsDir()); // work_dir on tmpfs, like the default /var/run
  const unguard = guardIsolatorLab(lab);
  let iso: Isolator | undefined;
  let pooled: Isolator | undefined;
  const poolSetup: Record<number, number[]> = {};
  const poolFirst: Record<number, number> = {};
  const poolPhases: Record<string, Record<string, number>> = {};
  let poolTaken = 0;
  let poolCreates = 0;
  let rtnl: Rtnl | undefined;
  let session: NetlinkSession | undefined;
  const setup: Record<number, number[]> = {};
  const netlink: Record<number, number[]> = {};
  const teardown: Record<number, number[]> = {};
  const teardownNetlink: Record<number, number[]> = {};
  const mirred: Record<number, number> = {};
  const phases: Record<string, Record<string, number>> = {};
  const pps: Record<number, number[]> = {};
  const ppsFirst: Record<number, number[]> = {};
  const appPps: Record<number, number[]> = {};
  const position: Record<number, number> = {};
  const control: Record<number, { icmp: FloodCost; arp: FloodCost }> = {};
  let fillMs = 0;
  let cleanupMs = 0;
  try {
    iso = await lab.open(BENCH_FLAGS);
    pooled = await lab.open(BENCH_FLAGS, [], { warmPool: WARM_POOL });
    const host = lab.lab.host;
    rtnl = Rtnl.open(Netns.fromName(host));
    session = NetlinkSession.open({ netns: Netns.fromName(host), typeNames: RTM_NAMES });
    const tc = new Tc(session);
    const eth0 = iso.host.eth0.index;

    /** Wait (bounded) until a veth deleted in the background is gone. */
    const gone = async (name: string) => {
      const end = Date.now() + 30_000;
      while (Date.now() < end) {
        if (!(await rtnl!.links.find(name))) return;
        await sleep(5);
      }
      throw new Error(`scaling: ${name} still exists 30 s after its container was destroyed`);
    };
    // Host setup and JIT warm-up (not counted): enough creates that the figures at 0 containers
    // are not those of unoptimised code (the fills below would warm it only for the later ones).
    const warmVeths: string[] = [];
    for (let i = 0; i < (opts.quick ? 100 : 300); i++) {
      const c = await iso.create({ id: `warm${i}`, ports: `[${PROBE_PORT}-${PROBE_PORT}]` });
      await iso.destroy(`warm${i}`);
      warmVeths.push(c.veth);
    }
    for (let i = 0; i < (opts.quick ? 50 : 150); i++) {
      // The warm-pool path too (and the pool fills).
      await sleep(POOL_GAP_MS);
      const c = await pooled.create({ id: `pwarm${i}`, ports: `[${PROBE_PORT}-${PROBE_PORT}]` });
      await pooled.destroy(`pwarm${i}`);
      warmVeths.push(c.veth);
    }
    for (const veth of warmVeths) await gone(veth);

    let present = 0;
    const fill = async (n: number) => {
      const t0 = nowMs();
      for (; present < n; present++) await iso!.create({ id: `f${present}`, ports: `[${31000 + present}-${31000 + present}]` });
      fillMs += nowMs() - t0;
      const listed = (await iso!.list()).length;
      if (listed !== n) throw new Error(`scaling: ${listed} containers present, expected ${n}`);
    };
    const rx = (netns: string) => async () => {
      const link = JSON.parse(run('nsenter', [`--net=${netns}`, 'ip', '-j', '-s', 'link', 'show', 'dev', 'eth0'])) as Array<{
        stats64: { rx: { packets: number } };
      }>;
      return link[0]!.stats64.rx.packets;
    };
    const flood = async (id: string, port: number) => {
      const rec = (await iso!.get(id))!;
      return udpFlood({ from: lab.lab.world, to: rec.netns, dst: HOST_IP, port, seconds: floodSeconds, delivered: rx(rec.netns) });
    };
    /** Where the container's eth0 port filter sits in its bucket (1 = first). */
    const bucketPosition = async (id: string) => {
      const rec = (await iso!.get(id))!;
      const mine = rec.hostFilters.find((f) => f.dev === 'eth0' && f.block[0] === 31000 + Number(id.slice(1)))!;
      const nodes = await tc.listU32Nodes(eth0, 'ffff:');
      return nodes.filter((f) => (f.handle & 0xfffff000) === (mine.handle & 0xfffff000) && (f.handle & 0xfff) <= (mine.handle & 0xfff)).length;
    };

    for (const level of LEVELS) {
      await fill(level);
      mirred[level] = mirredActions(host);
      // Filling leaves the kernel deferred work (freed mirror actions, RCU callbacks): measure after it.
      await waitQuiet(opts.quick ? 5000 : 15_000);
      opts.log(`scaling: ${level} containers present; ${m} × one more`);
      const s: number[] = (setup[level] = []);
      const d: number[] = (teardown[level] = []);
      const nl: number[] = (netlink[level] = []);
      const dnl: number[] = (teardownNetlink[level] = []);
      const ph: Record<string, number[]> = {};
      const meter = meterNetlinkCalls();
      try {
        // Probes are created back to back and destroyed together afterwards: the kernel frees a
        // destroyed container's namespace in the background (tens of ms), and a create overlapping
        // that work measures the teardown, not the count.
        const probes: string[] = [];
        for (let j = 0; j < m; j++) {
          meter.take();
          const t0 = nowMs();
          const port = PROBE_PORT + j;
          const c = await iso.create({ id: `probe${j}`, ports: `[${port}-${port}]` }).finally(() => nl.push(meter.take()));
          s.push(nowMs() - t0);
          probes.push(c.veth);
          for (const [p, v] of Object.entries(iso.lastTimings)) (ph[p] ??= []).push(v);
        }
        for (let j = 0; j < m; j++) {
          meter.take();
          const t0 = nowMs();
          await iso.destroy(`probe${j}`).finally(() => dnl.push(meter.take()));
          d.push(nowMs() - t0);
        }
        for (const veth of probes) await gone(veth);
      } finally {
        meter.restore();
      }
      phases[`at_${level}`] = phaseMedians(addOutside(s, ph));

      // The same probes through the engine with a warm pool, spaced so that it refills.
      await waitQuiet(opts.quick ? 5000 : 15_000);
      opts.log(`scaling: ${level} containers present; ${mPool} × one more from a warm pool of ${WARM_POOL}, ${POOL_GAP_MS} ms apart`);
      const ps: number[] = (poolSetup[level] = []);
      const pph: Record<string, number[]> = {};
      const pooledVeths: string[] = [];
      // Not counted: this engine's first create after the other one added containers reloads
      // every record from the work_dir (what an agent does after a CLI create); timed apart.
      let t0 = nowMs();
      const first = await pooled!.create({ id: 'pprobe-first', ports: `[${PROBE_PORT + 63}-${PROBE_PORT + 63}]` });
      poolFirst[level] = nowMs() - t0;
      await pooled!.destroy('pprobe-first');
      pooledVeths.push(first.veth);
      for (let j = 0; j < mPool; j++) {
        await sleep(POOL_GAP_MS);
        t0 = nowMs();
        const port = PROBE_PORT + j;
        const c = await pooled!.create({ id: `pprobe${j}`, ports: `[${port}-${port}]` });
        ps.push(nowMs() - t0);
        poolCreates++;
        if (c.netns.includes('/.spare-')) poolTaken++;
        pooledVeths.push(c.veth);
        for (const [p, v] of Object.entries(pooled!.lastTimings)) (pph[p] ??= []).push(v);
      }
      for (let j = 0; j < mPool; j++) await pooled!.destroy(`pprobe${j}`);
      for (const veth of pooledVeths) await gone(veth);
      poolPhases[`at_${level}`] = phaseMedians(addOutside(ps, pph));

      const n = Math.max(level, 1);
      await fill(n);
      const newest = `f${n - 1}`;
      position[n] = await bucketPosition(newest);
      // The probes' namespaces are freed by the kernel in the background: let that finish first.
      await waitQuiet(opts.quick ? 5000 : 15_000);
      opts.log(`scaling: UDP flood with ${n} containers (${floodReps} × ${floodSeconds} s)`);
      pps[n] = [];
      appPps[n] = [];
      ppsFirst[n] = [];
      for (let r = 0; r < floodReps; r++) {
        const f = await flood(newest, 31000 + n - 1);
        if (f.deliveredShare < 0.99) throw new Error(`scaling: only ${round(f.deliveredShare * 100, 1)}% of the datagrams reached ${newest}`);
        pps[n]!.push(f.pps);
        appPps[n]!.push(f.appPps);
        if (n > 1) {
          const g = await flood('f0', 31000);
          if (g.deliveredShare < 0.99) throw new Error(`scaling: only ${round(g.deliveredShare * 100, 1)}% of the datagrams reached f0`);
          ppsFirst[n]!.push(g.pps);
        } else ppsFirst[n]!.push(f.pps);
      }
      // ICMP echo and ARP requests to the host's address (issue #16): the host's CPU at 10 000/s.
      opts.log(`scaling: ${CONTROL_RATE}/s ICMP echo and ARP requests to the host with ${n} containers`);
      control[n] = {
        icmp: await floodCost(lab.lab.world, 'icmp', HOST_IP, CONTROL_RATE, floodSeconds, floodReps),
        arp: await floodCost(lab.lab.world, 'arp', HOST_IP, CONTROL_RATE, floodSeconds, floodReps),
      };
    }
  } finally {
    const t0 = nowMs();
    session?.close();
    rtnl?.close();
    await lab.destroy(); // engine cleanup() + lab
    unguard();
    cleanupMs = nowMs() - t0;
  }
  const med = (v: number[]) => summarize(v).median;
  const at = <T>(f: (x: number) => T) => ({ at_0: f(0), at_100: f(100), at_1000: f(1000) });
  const atN = <T>(f: (x: number) => T) => ({ at_1: f(1), at_100: f(100), at_1000: f(1000) });
  const spread: Record<string, { min: number; max: number }> = {};
  for (const l of LEVELS) {
    const s = summarize(setup[l]!);
    spread[`setup_ms_at_${l}`] = { min: round(s.min), max: round(s.max) };
  }
  for (const n of [1, 100, 1000]) {
    const s = summarize(pps[n]!);
    spread[`pps_at_${n}`] = { min: Math.round(s.min), max: Math.round(s.max) };
  }
  return {
    result: {
      setup_p50_ms_at_0: round(med(setup[0]!)),
      setup_p50_ms_at_100: round(med(setup[100]!)),
      setup_p50_ms_at_1000: round(med(setup[1000]!)),
      setup_p99_ms: at((l) => round(summarize(setup[l]!).p99)),
      teardown_p50_ms: at((l) => round(med(teardown[l]!))),
      ratio_teardown_1000_vs_0: round(med(teardown[1000]!) / med(teardown[0]!)),
      teardown_netlink_calls_ms: at((l) => round(med(teardownNetlink[l]!))),
      host_mirred_actions: at((l) => mirred[l]!),
      ratio_setup_1000_vs_0: round(med(setup[1000]!) / med(setup[0]!)),
      pps_at_1: Math.round(med(pps[1]!)),
      pps_at_100: Math.round(med(pps[100]!)),
      pps_at_1000: Math.round(med(pps[1000]!)),
      ratio_pps_1000_vs_1: round(med(pps[1000]!) / med(pps[1]!)),
      pps_first_container: atN((n) => Math.round(med(ppsFirst[n]!))),
      ratio_pps_first_1000_vs_1: round(med(ppsFirst[1000]!) / med(ppsFirst[1]!)),
      bucket_position: atN((n) => position[n]!),
      app_pps: atN((n) => Math.round(med(appPps[n]!))),
      control_plane: {
        requests_per_s: CONTROL_RATE,
        icmp_echo_cpu_cores: atN((n) => control[n]!.icmp.cpu_cores),
        icmp_echo_replies_per_request: atN((n) => control[n]!.icmp.replies_per_request),
        arp_cpu_cores: atN((n) => control[n]!.arp.cpu_cores),
        arp_replies_per_request: atN((n) => control[n]!.arp.replies_per_request),
      },
      phases_ms: phases,
      netlink_calls_ms: at((l) => round(med(netlink[l]!))),
      samples_per_level: m,
      flood: `iperf3 -u -b 0 -l 64 -t ${floodSeconds}, ${floodReps} runs per level, world → ${HOST_IP}:<container port>`,
      fill_seconds: round(fillMs / 1e3, 1),
      cleanup_seconds: round(cleanupMs / 1e3, 1),
      spread,
      warm_pool: {
        spares: WARM_POOL,
        gap_ms: POOL_GAP_MS,
        setup_p50_ms: at((l) => round(med(poolSetup[l]!))),
        setup_p99_ms: at((l) => round(summarize(poolSetup[l]!).p99)),
        ratio_setup_1000_vs_0: round(med(poolSetup[1000]!) / med(poolSetup[0]!)),
        samples_per_level: mPool,
        spare_taken_share: round(poolTaken / Math.max(1, poolCreates), 2),
        phases_ms: poolPhases,
        first_create_after_fill_ms: at((l) => round(poolFirst[l]!)),
      },
    },
    samples: { setup, teardown, pps, pps_first: ppsFirst, phases, pool_setup: poolSetup },
  };
}
