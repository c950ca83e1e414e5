/**
 * ICMP echo and ARP from inside a lab namespace, without icmpEcho(8) or arpResolve(8): Node has no raw
 * sockets, so python3 scripts (icmp.py, arp.py) send and count them. Each run is one process
 * started with nsenter, bounded in count and time.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = (name: string) => fileURLToPath(new URL(name, import.meta.url));
const path = (netns: string) => (netns.startsWith('/') ? netns : `/run/netns/${netns}`);

function py<T>(netns: string, name: string, args: Array<string | number>, timeoutMs: number): T {
  const out = execFileSync('nsenter', [`--net=${path(netns)}`, 'python3', script(name), ...args.map(String)], {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as T;
}

export interface PingResult {
  sent: number;
  /** Requests answered (distinct sequence numbers). */
  received: number;
  /** Answers beyond the first for a sequence number (ping's "DUP!"). */
  duplicates: number;
}

export interface PingOptions {
  /** Requests to send (1..100); default 1. */
  count?: number;
  /** Between requests; default 100 ms. */
  intervalMs?: number;
  /** ICMP data bytes per request (ping -s); default 56. */
  sizeBytes?: number;
  /** How long to wait for answers after the last request (ping -W); default 2000 ms. */
  waitMs?: number;
  /** Once every request is answered, how long to keep counting duplicates; default 100 ms. */
  dupWaitMs?: number;
}

/** ICMP echo from `netns` to `addr`, counted as iputils' ping -c COUNT -i INTERVAL -s SIZE -W WAIT counts. */
export function icmpEcho(netns: string, addr: string, opts: PingOptions = {}): PingResult {
  const { count = 1, intervalMs = 100, sizeBytes = 56, waitMs = 2000, dupWaitMs = 100 } = opts;
  // Python's start under the stock-kernel stage's emulation takes ~1 s: a generous process bound.
  const boundMs = count * intervalMs + waitMs + 30_000;
  return py<PingResult>(netns, 'icmp.py', [addr, count, intervalMs, sizeBytes, waitMs, dupWaitMs], boundMs);
}

export interface ArpResult {
  /** ARP requests broadcast (one a second until answered). */
  sent: number;
  /** ARP replies from the address to the device's own address. */
  replies: number;
}

/** Resolve `addr` with ARP on `dev` of `netns`, answered like iputils' ARP tool with -c 1 -w TIMEOUT -I DEV. */
export function arpResolve(netns: string, dev: string, addr: string, timeoutMs = 2000): ArpResult {
  return py<ArpResult>(netns, 'arp.py', [dev, addr, 1, timeoutMs], timeoutMs + 30_000);
}
