/**
 * What an ICMP echo request or an ARP request to the host's address costs the host (issue #16):
 * the lab's world sends RATE of them a second for a few seconds (control-flood.py, paced, asleep
 * between bursts), and the machine's busy CPU time over that window (/proc/stat) less an idle
 * window of the same length just before is the cost: the sender's system calls, the host's work
 * (which the kernel runs in softirq on the sender's CPU, charged to the sender unless it accounts
 * softirq time apart: it cannot be told from the sending) and the answers. Reported in CPU cores
 * at RATE/s (at 10 000/s: the CPU per 10k requests/s) and as answers per request. With one
 * container it is the floor (sending and the host's own answer); Mesos' data path copies both
 * kinds to every container, and each answers: its cost grows with the count.
 * Standalone: `node --import ./bench/register.mjs bench/control-flood.ts [--containers N]
 * [--checkout DIR]` builds a lab with N containers using DIR's built isolator (default this one),
 * to compare versions back to back.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { round, summarize } from './stats.js';
import { sleep } from './util.js';

const SCRIPT = fileURLToPath(new URL('./control-flood.py', import.meta.url));
/** /proc/stat's clock ticks per second (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** Busy CPU seconds of the whole machine so far (every state but idle and iowait). */
function busySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / USER_HZ;
}

export interface FloodCost {
  requests_per_s: number;
  sent: number;
  /** Answers that reached the sender, per request sent (1: only the host answered). */
  replies_per_request: number;
  /** The machine's CPU at that rate, in cores (busy time less the idle baseline, over the sender's time): sending, the host's work, the answers. */
  cpu_cores: number;
  /** Of that, the sender's own (its process's CPU time, the kernel's work on its packets included). */
  sender_cpu_cores: number;
}

/** One flood: the sender's report and the machine's busy seconds over it, less an idle window of the same length just before. */
async function floodOnce(worldNs: string, kind: string, addr: string, rate: number, seconds: number) {
  const b0 = busySeconds();
  await sleep(seconds * 1000);
  const idle = busySeconds() - b0;
  const before = busySeconds();
  const t0 = Date.now();
  const out = execFileSync('nsenter', [`--net=/run/netns/${worldNs}`, 'python3', SCRIPT, kind, 'eth0', addr, String(rate), String(seconds)], {
    encoding: 'utf8',
    timeout: (seconds + 60) * 1000,
  });
  const wall = (Date.now() - t0) / 1000;
  const r = JSON.parse(out) as { sent: number; replies: number; seconds: number; cpu_seconds: number };
  return { ...r, used: Math.max(0, busySeconds() - before - idle * (wall / seconds)) };
}

/**
 * Flood `addr` from `worldNs` (its eth0) with `kind` requests at `rate`/s for `seconds`, `reps`
 * times (each after its own idle window: the kernel's background work, such as freeing
 * namespaces, moves one window); the medians.
 */
export async function floodCost(
  worldNs: string,
  kind: 'icmp' | 'icmp-reply' | 'arp',
  addr: string,
  rate: number,
  seconds: number,
  reps = 3,
): Promise<FloodCost> {
  const runs: Array<Awaited<ReturnType<typeof floodOnce>>> = [];
  for (let i = 0; i < reps; i++) runs.push(await floodOnce(worldNs, kind, addr, rate, seconds));
  const med = (f: (r: (typeof runs)[number]) => number) => summarize(runs.map(f)).median;
  return {
    requests_per_s: rate,
    sent: Math.round(med((r) => r.sent)),
    replies_per_request: round(
      med((r) => r.replies / Math.max(1, r.sent)),
      2,
    ),
    cpu_cores: round(
      med((r) => r.used / r.seconds),
      3,
    ),
    sender_cpu_cores: round(
      med((r) => r.cpu_seconds / r.seconds),
      3,
    ),
  };
}

async function main(): Promise<void> {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name);
    return i < 0 ? undefined : process.argv[i + 1];
  };
  const n = Number(arg('--containers') ?? 1000);
  const checkout = arg('--checkout');
  const rate = Number(arg('--rate') ?? 10_000);
  const seconds = Number(arg('--seconds') ?? 2);
  const labModule = checkout ? join(checkout, 'dist/lab/index.js') : '../src/lab/index.js';
  const { IsolatorLab, HOST_IP, sweepStaleLabs, tmpfsDir } = (await import(labModule)) as typeof import('../src/lab/index.js');
  sweepStaleLabs();
  const lab = new IsolatorLab(tmpfsDir());
  try {
    const iso = await lab.open({ resources: 'ports:[31000-32999];ephemeral_ports:[33024-49407]', ephemeral_ports_per_container: 16 });
    for (let i = 0; i < n; i++) await iso.create({ id: `f${i}`, ports: `[${31000 + i}-${31000 + i}]` });
    await sleep(2000);
    const icmp = await floodCost(lab.lab.world, 'icmp', HOST_IP, rate, seconds);
    const arp = await floodCost(lab.lab.world, 'arp', HOST_IP, rate, seconds);
    const echoReplies = await floodCost(lab.lab.world, 'icmp-reply', HOST_IP, rate, seconds);
    console.log(JSON.stringify({ checkout: checkout ?? '.', containers: n, icmp_echo: icmp, arp, icmp_echo_reply: echoReplies }));
  } finally {
    await lab.destroy();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
