/**
 * ICMP echo and ARP from inside a lab namespace, without icmpEcho(8) or arpResolve(8): Node has no raw
 * sockets, so python3 scripts (icmp.py, arp.py) send and count them. Each run is one process
 * started with nsenter, bounded in count and time.
 */
import { execFileSync, spawn } from 'node:child_process';
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

/** What a lab namespace's device received in a window (datapath.py sniff). */
export interface SniffResult {
  total: number;
  arp: number;
  icmp_echo_request: number;
  icmp: number;
  udp: number;
  fragments: number;
}

/** Count what arrives on `dev` of `netns` in `ms` from when the capture is up, while `during` runs (started then). */
export async function sniffDuring(netns: string, dev: string, ms: number, during: () => unknown): Promise<SniffResult> {
  return sniffWith<SniffResult>('datapath.py', 'sniff', netns, dev, ms, during);
}

/** What a lab namespace's device received in a window, IPv6 by kind (datapath6.py sniff6). */
export interface Sniff6Result {
  total: number;
  ipv4: number;
  ipv6: number;
  icmp6_echo_request: number;
  icmp6_echo_reply: number;
  ns: number;
  na: number;
  ra: number;
  /** Neighbour advertisements by target address; and the unsolicited ones (not a kernel's answer to a solicitation). */
  na_targets: Record<string, number>;
  na_unsolicited_targets: Record<string, number>;
  mld: number;
  udp: number;
  tcp: number;
  fragments: number;
}

/** sniffDuring for IPv6 (datapath6.py sniff6). */
export async function sniff6During(netns: string, dev: string, ms: number, during: () => unknown): Promise<Sniff6Result> {
  return sniffWith<Sniff6Result>('datapath6.py', 'sniff6', netns, dev, ms, during);
}

/** Run one datapath6.py mode in `netns` (see its docstring). */
export function datapath6<T = Record<string, unknown>>(netns: string, mode: string, ...args: Array<string | number>): T {
  return py<T>(netns, 'datapath6.py', [mode, ...args], 60_000);
}

async function sniffWith<T>(file: string, mode: string, netns: string, dev: string, ms: number, during: () => unknown): Promise<T> {
  const child = spawn('nsenter', [`--net=${path(netns)}`, 'python3', script(file), mode, dev, String(ms)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let ready: () => void = () => undefined;
  const capturing = new Promise<void>((r) => (ready = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) ready();
  });
  const done = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms + 60_000);
  // The traffic starts once the capture socket is bound (python's start takes ~1 s under emulation).
  await Promise.race([capturing, done]);
  await during();
  const code = await done;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${file} ${mode} exited with ${code}`);
  return JSON.parse(out.slice('ready\n'.length)) as T;
}

/** Run one datapath.py mode in `netns` (see its docstring). */
export function datapath<T = Record<string, unknown>>(netns: string, mode: string, ...args: Array<string | number>): T {
  return py<T>(netns, 'datapath.py', [mode, ...args], 60_000);
}

/** Start a datapath.py mode in `netns` in the background; resolves to its JSON line. */
export function datapathAsync<T = Record<string, unknown>>(netns: string, mode: string, ...args: Array<string | number>): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', [`--net=${path(netns)}`, 'python3', script('datapath.py'), mode, ...args.map(String)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(out) as T);
      else reject(new Error(`datapath.py ${mode} exited with ${code}: ${err.trim()}`));
    });
  });
}

/** ARP requests for `addr` from `dev` of `netns`, one a second for `timeoutMs`, every reply counted. */
export function arpCount(netns: string, dev: string, addr: string, timeoutMs: number): ArpResult {
  return py<ArpResult>(netns, 'arp.py', [dev, addr, 100, timeoutMs], timeoutMs + 30_000);
}

/** /proc/net/snmp of a namespace: {Icmp: {InEchos: …}, Udp: {…}, …}. */
export function snmp(netns: string): Record<string, Record<string, number>> {
  const text = execFileSync('nsenter', [`--net=${path(netns)}`, 'cat', '/proc/net/snmp'], { encoding: 'utf8', timeout: 10_000 });
  const lines = text.split('\n').filter(Boolean);
  const out: Record<string, Record<string, number>> = {};
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [proto, keys] = lines[i]!.split(':');
    const values = lines[i + 1]!.split(':')[1]!.trim().split(/\s+/).map(Number);
    out[proto!] = Object.fromEntries(
      keys!
        .trim()
        .split(/\s+/)
        .map((k, j) => [k, values[j]!]),
    );
  }
  return out;
}
