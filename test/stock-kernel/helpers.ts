/**
 * Helpers of the stock-kernel-only tests (`*.stock.ts`): lab namespaces without IPv6 chatter,
 * fq_codel's time quantisation, and `tc -s filter show` as the lab host's admin would read it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { tcRun } from '../tc/helpers.js';

/** Run `sysctl -qw KEY=VALUE…` inside a lab namespace (never the root namespace). */
export function nsSysctl(ns: string, ...settings: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);
}

/**
 * Stop IPv6 in a lab namespace: the stock kernel sends ND/MLD/RS on every new link, which moves
 * counters between two reads. Devices created later inherit `default`.
 */
export function quietIpv6(ns: string, ...devs: string[]): void {
  nsSysctl(ns, 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', ...devs.map((d) => `net.ipv6.conf.${d}.disable_ipv6=1`));
}

/**
 * These tests are about features this stage exists for; they fail, never skip, where the kernel
 * lacks fq_codel. Probed on the lab's own loopback.
 */
export function assertFqCodel(ns: string): void {
  const add = spawnSync('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '7ff:', 'fq_codel'], { encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`this kernel has no fq_codel (tc: ${add.stderr.trim()}); the stock-kernel tests need one`);
  execFileSync('tc', ['-n', ns, 'qdisc', 'del', 'dev', 'lo', 'root']);
}

/**
 * What the kernel reports for an fq_codel time set in microseconds: it keeps codel times in
 * units of 1024 ns (CODEL_SHIFT), so 5000 µs comes back as 4999 µs.
 */
export const codelRoundTrip = (us: number): number => Math.floor((Math.floor((us * 1000) / 1024) * 1024) / 1000);

export interface FilterHits {
  handle: string;
  pref: number;
  flowid?: string;
  /** "rule hit": how often the node was evaluated. */
  hit: number;
  /** "success": how often it matched. */
  success: number;
}

/** `tc -s filter show dev DEV parent PARENT` in a lab namespace, parsed: one entry per u32 node with counters. */
export function filterHits(ns: string, dev: string, parent: string): FilterHits[] {
  const out: FilterHits[] = [];
  for (const line of tcRun(ns, '-s', 'filter', 'show', 'dev', dev, 'parent', parent).split('\n')) {
    const m = /pref (\d+) u32 .*fh (\S+) .*\(rule hit (\d+) success (\d+)\)/.exec(line);
    if (!m) continue;
    const flow = /\*?flowid (\S+)/.exec(line);
    out.push({ pref: Number(m[1]), handle: m[2]!, hit: Number(m[3]), success: Number(m[4]), ...(flow ? { flowid: flow[1]! } : {}) });
  }
  return out;
}

/** Sum of the successes of the nodes that classify into `flowid`. */
export const successesOf = (hits: FilterHits[], flowid: string): number => hits.filter((h) => h.flowid === flowid).reduce((a, h) => a + h.success, 0);

/** `tc ARGS…` inside a namespace given by path (container namespaces are pinned in the work_dir, not /run/netns). */
export function tcAt(nsPath: string, ...args: string[]): string {
  return execFileSync('nsenter', [`--net=${nsPath}`, 'tc', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The Mesos view of one qdisc as `tc -j -s` prints it. */
export const mesosOfTc = (t: any) => ({
  backlog: t.backlog,
  bytes: t.bytes,
  drops: t.drops,
  overlimits: t.overlimits,
  packets: t.packets,
  qlen: t.qlen,
  requeues: t.requeues,
});
