/**
 * Real TCP/UDP traffic between lab namespaces, made by Node itself: listeners that record what
 * they receive, one-shot senders, a bulk sender. The sockets live in one agent process per
 * namespace (peer.mjs), which a worker thread (traffic-worker.mjs) owns; the calls here block on
 * that worker, so send() stays synchronous while listeners keep receiving. One long-lived agent
 * per namespace, started ahead of need, instead of one process per send: Node takes 2-5 s to start
 * under the stock-kernel stage's emulation. Every agent is bounded in time and killed by PID.
 * ICMP and ARP are in probe.ts.
 */
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';

/** Longest wait for the worker beyond an operation's own bound (an agent's start under emulation). */
const START_MARGIN_MS = 35_000;

interface Answer {
  seq: number;
  id?: number;
  ok?: boolean;
  result?: string;
  error?: string;
}

let bridge: { worker: Worker; port: MessagePort; flag: Int32Array } | undefined;
let seq = 0;

function worker(): NonNullable<typeof bridge> {
  if (bridge) return bridge;
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(new URL('./traffic-worker.mjs', import.meta.url), { workerData: { port: port2, flag }, transferList: [port2] });
  w.unref(); // a test file's process may end with the worker idle
  bridge = { worker: w, port: port1, flag };
  return bridge;
}

/** Ask the worker and block this thread until it answers (at most `timeoutMs`). */
function call(req: object, timeoutMs: number): Answer {
  const b = worker();
  const mine = ++seq;
  Atomics.store(b.flag, 0, 0);
  b.worker.postMessage({ ...req, seq: mine });
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = end - Date.now();
    if (left <= 0 || Atomics.wait(b.flag, 0, 0, left) === 'timed-out')
      throw new Error(`traffic worker: no answer to ${JSON.stringify(req)} in ${timeoutMs} ms`);
    Atomics.store(b.flag, 0, 0);
    // Answers to calls that timed out earlier are stale: skip them.
    for (let m = receiveMessageOnPort(b.port); m; m = receiveMessageOnPort(b.port)) {
      const a = m.message as Answer;
      if (a.seq === mine) return a;
    }
  }
}

/** An `ip netns` name or a namespace path, as a path. */
const path = (netns: string) => (netns.startsWith('/') ? netns : `/run/netns/${netns}`);

/** A command for the agent of `netns`; throws on the agent's errors. */
function agent(netns: string, cmd: object, timeoutMs: number): Answer {
  const a = call({ op: 'agent', netns: path(netns), cmd }, timeoutMs + START_MARGIN_MS);
  if (a.error) throw new Error(`traffic agent in ${netns}: ${a.error}`);
  return a;
}

/** Kill every agent this process started, by PID, and wait for them (call in afterAll/afterEach). */
export function stopAllTraffic(): void {
  if (bridge) call({ op: 'stopAll' }, 5000);
}

export interface Listener {
  /** Everything received so far, in arrival order (TCP chunks, UDP datagrams). */
  received(): string;
  stop(): void;
}

function open(netns: string, proto: 'tcp' | 'udp', port: number, kind: 'record' | 'port', ipv6 = false): Listener {
  const { id } = agent(netns, { op: 'listen', proto, port, kind, ipv6 }, 5000);
  let stopped = false;
  return {
    received: () => call({ op: 'received', lid: id }, 5000).result ?? '',
    stop: () => {
      if (stopped) return;
      stopped = true;
      agent(netns, { op: 'close', lid: id }, 5000);
      call({ op: 'forget', lid: id }, 5000);
    },
  };
}

/** Listener options: `ipv6` listens on '::' (IPv6 and IPv4), else on 0.0.0.0. */
export interface ListenOptions {
  ipv6?: boolean;
}

/** A TCP or UDP listener inside `netns` on `port` (any address) that appends what it receives. */
export async function listen(netns: string, proto: 'tcp' | 'udp', port: number, opts: ListenOptions = {}): Promise<Listener> {
  return open(netns, proto, port, 'record', opts.ipv6);
}

/** A server that answers each TCP connection or UDP datagram with the client's source port. */
export async function peerPortServer(netns: string, proto: 'tcp' | 'udp', port: number, opts: ListenOptions = {}): Promise<Listener> {
  return open(netns, proto, port, 'port', opts.ipv6);
}

export interface SendOptions {
  sourcePort?: number;
  timeoutMs?: number;
  /** Read the answer (request/response). */
  reply?: boolean;
}

/**
 * Send `message` from `netns` to addr:port (TCP: connect within 1 s, write, close; UDP: one
 * datagram). Returns 'ok' (or the reply, '' when a UDP answer does not come within 1 s) on
 * success, and 'fail: <reason>' ('Connection refused', 'timeout', …) otherwise.
 */
export function send(netns: string, proto: 'tcp' | 'udp', addr: string, port: number, message: string, opts: SendOptions = {}): string {
  const timeoutMs = opts.timeoutMs ?? 4000;
  const cmd = { op: 'send', proto, host: addr, port, message, sourcePort: opts.sourcePort, reply: opts.reply ?? false, timeoutMs };
  return agent(netns, cmd, timeoutMs).result!;
}

/** Send `bytes` bytes over one TCP connection from `netns` to addr:port; 'ok' once all are written. */
export function sendBytes(netns: string, addr: string, port: number, bytes: number, timeoutMs = 20_000): string {
  return agent(netns, { op: 'blast', host: addr, port, bytes, timeoutMs }, timeoutMs).result!;
}

// Start the worker, and with it the spare agents, as soon as a test file imports this module.
worker();
