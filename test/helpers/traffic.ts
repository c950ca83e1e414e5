/**
 * Real traffic between lab namespaces with socat: listeners that record what they receive, and
 * one-shot senders. Every process is started by us, bounded in time, and killed by PID.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';

const started = new Set<ChildProcess>();

/** Kill every listener this process started (call in afterAll/finally). */
export function stopAllTraffic(): void {
  for (const p of started) if (p.exitCode === null && p.pid) p.kill('SIGKILL');
  started.clear();
}

/** Remember a process, and end it after a minute at the latest (every traffic loop is bounded). */
function track(p: ChildProcess): void {
  started.add(p);
  const timer = setTimeout(() => p.exitCode === null && p.kill('SIGKILL'), 60_000);
  timer.unref();
  p.on('exit', () => {
    clearTimeout(timer);
    started.delete(p);
  });
}

const ns = (netns: string) => (netns.startsWith('/') ? netns : `/run/netns/${netns}`);

export interface Listener {
  received(): string;
  stop(): void;
}

/** A TCP or UDP listener inside `netns` on `port` (any address) that appends what it receives. */
export async function listen(netns: string, proto: 'tcp' | 'udp', port: number): Promise<Listener> {
  const addr = proto === 'tcp' ? `TCP-LISTEN:${port},reuseaddr,fork` : `UDP-RECV:${port},reuseaddr`;
  // nsenter execs socat: the PID we hold is socat's own, so kill() ends it (no orphan keeps the port).
  const p = spawn('nsenter', [`--net=${ns(netns)}`, 'socat', '-u', addr, 'STDOUT'], { stdio: ['ignore', 'pipe', 'ignore'] });
  track(p);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  await waitListening(netns, proto, port);
  return {
    received: () => out,
    stop: () => {
      if (p.exitCode === null) p.kill('SIGKILL');
      started.delete(p);
    },
  };
}

/** A server that answers each TCP connection or UDP datagram with the client's source port. */
export async function peerPortServer(netns: string, proto: 'tcp' | 'udp', port: number): Promise<Listener> {
  const addr = proto === 'tcp' ? `TCP-LISTEN:${port},reuseaddr,fork` : `UDP-RECVFROM:${port},reuseaddr,fork`;
  const p = spawn('nsenter', [`--net=${ns(netns)}`, 'socat', addr, 'SYSTEM:echo $SOCAT_PEERPORT'], { stdio: 'ignore' });
  track(p);
  await waitListening(netns, proto, port);
  return { received: () => '', stop: () => (p.kill('SIGKILL'), started.delete(p)) };
}

async function waitListening(netns: string, proto: 'tcp' | 'udp', port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const out = execFileSync('nsenter', [`--net=${ns(netns)}`, 'ss', '-Hln', proto === 'tcp' ? '-t' : '-u', `sport = :${port}`], { encoding: 'utf8' });
    if (out.trim()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`nothing listens on ${proto}/${port} in ${netns}`);
}

export interface SendOptions {
  sourcePort?: number;
  timeoutMs?: number;
  /** Read the answer (request/response). */
  reply?: boolean;
}

/**
 * Send `message` from `netns` to addr:port. Returns 'ok' (or the reply) on success and
 * 'fail: <reason>' when the connection is refused or times out.
 */
export function send(netns: string, proto: 'tcp' | 'udp', addr: string, port: number, message: string, opts: SendOptions = {}): string {
  const src = opts.sourcePort ? `,sourceport=${opts.sourcePort},reuseaddr` : '';
  const target = proto === 'tcp' ? `TCP:${addr}:${port},connect-timeout=1${src}` : `UDP:${addr}:${port}${src}`;
  const args = opts.reply ? ['-T', '1', 'STDIO', target] : ['-u', 'STDIN', target];
  try {
    const out = execFileSync('nsenter', [`--net=${ns(netns)}`, 'socat', ...args], {
      input: message,
      timeout: opts.timeoutMs ?? 4000,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return opts.reply ? out.trim() : 'ok';
  } catch (e) {
    const err = e as { stderr?: string; code?: string };
    return `fail: ${
      err.code === 'ETIMEDOUT'
        ? 'timeout'
        : String(err.stderr ?? '')
            .trim()
            .split('\n')
            .pop()
    }`;
  }
}

/** Run a command inside a namespace; returns its exit status (0 = success). */
export function runIn(netns: string, cmd: string[], timeoutMs = 10_000): number {
  try {
    execFileSync('nsenter', [`--net=${ns(netns)}`, ...cmd], { stdio: 'ignore', timeout: timeoutMs });
    return 0;
  } catch (e) {
    return (e as { status?: number }).status ?? 1;
  }
}
