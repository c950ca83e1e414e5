/**
 * A bounded UDP flood between lab namespaces with iperf3: a one-off server (`-s -1`) in the
 * receiving namespace, a client sending small datagrams as fast as it can (`-u -b 0 -l 64`) for
 * a fixed time (`-t`). The figure is datagrams received per second, as the server counts them.
 * With two or more CPUs the sender is pinned to CPU 0 and the receiver to CPU 1 (taskset): the
 * whole path through the host (veths, tc classification, redirect) runs in the sender's softirq
 * on CPU 0, and runs do not vary with where the scheduler happens to put the two processes.
 * Every process is started by us, killed by PID after a hard deadline, and never outlives the run.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { run, sleep } from './util.js';

const started = new Set<ChildProcess>();

/** Kill every process this module started (by PID). */
export function stopAllBenchProcesses(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  started.clear();
}

const nsPath = (ns: string) => (ns.startsWith('/') ? ns : `/run/netns/${ns}`);

/** `taskset -c CPU nsenter --net=NS …` when there are two CPUs or more, else just nsenter. */
function inNs(ns: string, cpu: number, cmd: string[]): [string, string[]] {
  const enter = ['nsenter', `--net=${nsPath(ns)}`, ...cmd];
  return cpus().length >= 2 ? ['taskset', ['-c', String(cpu), ...enter]] : [enter[0]!, enter.slice(1)];
}

function track(p: ChildProcess, deadlineMs: number): void {
  started.add(p);
  const timer = setTimeout(() => p.exitCode === null && p.kill('SIGKILL'), deadlineMs);
  timer.unref();
  p.on('exit', () => {
    clearTimeout(timer);
    started.delete(p);
  });
}

async function waitListening(ns: string, port: number, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (run('nsenter', [`--net=${nsPath(ns)}`, 'ss', '-Hltn', `sport = :${port}`], { timeoutMs: 5000 }).trim()) return;
    await sleep(20);
  }
  throw new Error(`iperf3 server not listening on ${port} in ${ns}`);
}

export interface FloodResult {
  /**
   * Datagrams per second through the path: what `delivered` counted (e.g. the receiving
   * interface's rx_packets), else what the sender sent.
   */
  pps: number;
  /** Datagrams the sender sent per second. */
  sentPps: number;
  /** Datagrams the receiving application read per second (bounded by its own speed). */
  appPps: number;
  /** Share of sent datagrams the counter saw (1 = every one went through). */
  deliveredShare: number;
  seconds: number;
}

interface IperfJson {
  end?: { sum?: { packets?: number; lost_packets?: number; seconds?: number; lost_percent?: number } };
  error?: string;
}

/**
 * Flood `dst:port` from namespace `from` for `seconds`, with the receiver in namespace `to`.
 * Returns what arrived. Hard deadline: seconds + 15 s for both processes.
 */
export async function udpFlood(opts: {
  from: string;
  to: string;
  dst: string;
  port: number;
  seconds: number;
  payload?: number;
  delivered?: () => Promise<number>;
}): Promise<FloodResult> {
  const deadline = (opts.seconds + 15) * 1000;
  const [scmd, sargs] = inNs(opts.to, 1, ['iperf3', '-s', '-1', '-J', '-p', String(opts.port)]);
  const server = spawn(scmd, sargs, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(server, deadline);
  let serverOut = '';
  server.stdout!.on('data', (d) => (serverOut += d));
  // 'close': the process has exited and its output has been read to the end.
  const serverDone = new Promise<void>((r) => server.on('close', () => r()));
  try {
    await waitListening(opts.to, opts.port);
    const before = opts.delivered ? await opts.delivered() : 0;
    const [ccmd, cargs] = inNs(opts.from, 0, [
      'iperf3',
      '-c',
      opts.dst,
      '-p',
      String(opts.port),
      '-u',
      '-b',
      '0',
      '-l',
      String(opts.payload ?? 64),
      '-t',
      String(opts.seconds),
      '-J',
    ]);
    const client = spawn(ccmd, cargs, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(client, deadline);
    let clientOut = '';
    let clientErr = '';
    client.stdout!.on('data', (d) => (clientOut += d));
    client.stderr!.on('data', (d) => (clientErr += d));
    const code = await new Promise<number | null>((r) => client.on('close', (c) => r(c)));
    await Promise.race([serverDone, sleep(5000)]);
    const after = opts.delivered ? await opts.delivered() : 0;
    const c = JSON.parse(clientOut || '{}') as IperfJson;
    if (code !== 0 || c.error) throw new Error(`iperf3 client failed (${code}): ${c.error ?? clientErr.trim()}`);
    const s = JSON.parse(serverOut || '{}') as IperfJson;
    const sent = c.end?.sum;
    const got = s.end?.sum;
    if (!sent?.packets || !sent.seconds) throw new Error('iperf3 client reported no packets');
    // The server's own count when it reported one; else the client's view of the receiver.
    const received = got?.packets !== undefined && got.lost_packets !== undefined ? got.packets - got.lost_packets : sent.packets - (sent.lost_packets ?? 0);
    const sentPps = sent.packets / sent.seconds;
    // The counter also sees the control connection's few packets: hence min(…, 1).
    const deliveredShare = opts.delivered ? Math.min(1, (after - before) / sent.packets) : 1;
    return {
      pps: opts.delivered ? (after - before) / sent.seconds : sentPps,
      sentPps,
      appPps: received / (got?.seconds ?? sent.seconds),
      deliveredShare,
      seconds: sent.seconds,
    };
  } finally {
    if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await Promise.race([serverDone, sleep(2000)]);
  }
}
