/**
 * The traffic agent: one Node process per lab namespace, so every socket it opens lives there.
 * It replaces an external relay tool in the tests: TCP/UDP listeners that report what they
 * receive, one-shot senders, a bulk TCP sender. traffic-worker.mjs starts agents ahead of need as
 * spares (Node takes seconds to start under emulation), which open no socket at all until `enter`
 * moves them into a lab namespace with setns(2) (the project's native shim).
 * One JSON line per command on stdin; one JSON line per answer or event on stdout:
 *
 *   {id, op:'enter', path}                                 → {id, ok}: into the namespace at path, once
 *   {id, op:'listen', proto, port, kind:'record'|'port'}  → {id, ok} or {id, error}
 *       record: report each chunk/datagram as {event:'data', lid:id, data}
 *       port:   answer each connection/datagram with the peer's source port and "\n"
 *   {id, op:'close', lid}                                  → {id, ok}
 *   {id, op:'send', proto, host, port, message, sourcePort?, reply?, timeoutMs} → {id, result}
 *       result: 'ok', the reply (reply: true), or 'fail: <reason>'
 *   {id, op:'blast', host, port, bytes, timeoutMs}         → {id, result}: `bytes` over one TCP connection
 *
 * Bounded: every operation has a timeout, the agent exits when its stdin closes (its parent is
 * gone), after IDLE_MS in a namespace without a command or an open listener, and after
 * LIFETIME_MS in any case.
 */
import { createSocket } from 'node:dgram';
import { closeSync, openSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

const IDLE_MS = 20_000;
const LIFETIME_MS = 15 * 60_000;
const CONNECT_TIMEOUT_MS = 1000; // a refused or dropped SYN fails fast
const REPLY_WAIT_MS = 1000; // how long a reply may take to start

const CLONE_NEWNET = 0x40000000;
const ROOT = new URL('../..', import.meta.url).pathname; // where build/ holds the native shim
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let entered = false; // a spare never opens a socket in the namespace it was started in
const listeners = new Map(); // lid → server or UDP socket
setTimeout(() => process.exit(3), LIFETIME_MS).unref();
let idle;
const touch = () => {
  clearTimeout(idle);
  idle = setTimeout(() => listeners.size === 0 && process.exit(0), IDLE_MS);
};

/** Error text as the tests match it (the C library's wording): "Connection refused", "timeout", … */
function reason(e) {
  if (e.code === 'ECONNREFUSED') return 'Connection refused';
  if (e.code === 'ETIMEDOUT' || e.message === 'timeout') return 'timeout';
  return e.message;
}

/** setns(2) this (main) thread, the one that creates every socket, into the namespace at `path`. */
function enter({ id, path }) {
  const shim = createRequire(import.meta.url)('node-gyp-build')(ROOT);
  const fd = openSync(path, 'r');
  try {
    shim.setns(fd, CLONE_NEWNET);
  } finally {
    closeSync(fd);
  }
  if (statSync('/proc/thread-self/ns/net').ino !== statSync(path).ino) throw new Error(`setns into ${path} did not take effect`);
  entered = true;
  touch();
  out({ id, ok: true });
}

function listen({ id, proto, port, kind, ipv6 }) {
  // '::' takes IPv4 too (dual stack); '0.0.0.0' where IPv6 is off.
  const any = ipv6 ? '::' : '0.0.0.0';
  const record = (data) => out({ event: 'data', lid: id, data });
  const done = () => out({ id, ok: true });
  const failed = (e) => out({ id, error: e.message });
  if (proto === 'tcp') {
    const server = createServer((sock) => {
      sock.on('error', () => undefined);
      sock.setTimeout(30_000, () => sock.destroy());
      if (kind === 'port') sock.end(`${sock.remotePort}\n`);
      else sock.on('data', (d) => record(d.toString('utf8')));
    });
    server.once('error', failed);
    server.listen(port, any, done);
    listeners.set(id, server);
  } else {
    const s = createSocket({ type: ipv6 ? 'udp6' : 'udp4', reuseAddr: true });
    s.on('message', (msg, rinfo) => (kind === 'port' ? s.send(`${rinfo.port}\n`, rinfo.port, rinfo.address) : record(msg.toString('utf8'))));
    s.once('error', failed);
    s.bind(port, any, done);
    listeners.set(id, s);
  }
}

/** One TCP connection: connect (bounded), write, half-close; 'ok' once flushed, or the reply. */
function sendTcp({ host, port, message, sourcePort, reply }, finish) {
  const sock = connect({ host, port, ...(sourcePort ? { localPort: sourcePort } : {}) });
  const connectTimer = setTimeout(() => sock.destroy(new Error('timeout')), CONNECT_TIMEOUT_MS);
  let answer = '';
  sock.on('connect', () => clearTimeout(connectTimer));
  sock.on('error', (e) => finish(`fail: ${reason(e)}`));
  sock.end(message, () => !reply && finish('ok'));
  if (reply) {
    sock.on('data', (d) => (answer += d));
    sock.on('end', () => finish(answer.trim()));
    sock.setTimeout(REPLY_WAIT_MS, () => finish(answer.trim()));
  }
  return () => (clearTimeout(connectTimer), sock.destroy());
}

/** One datagram from an ephemeral (or the given) source port; with reply, the first answer or ''. */
function sendUdp({ host, port, message, sourcePort, reply }, finish) {
  const s = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reuseAddr: true });
  s.on('error', (e) => finish(`fail: ${reason(e)}`));
  s.on('message', (msg) => finish(msg.toString('utf8').trim()));
  s.bind(sourcePort ?? 0, () =>
    s.send(message, port, host, (e) => {
      if (e) finish(`fail: ${reason(e)}`);
      else if (!reply) finish('ok');
      else setTimeout(() => finish(''), REPLY_WAIT_MS);
    }),
  );
  return () => s.close();
}

/** `bytes` bytes of 'x' over one TCP connection, written as fast as the socket takes them. */
function blast({ host, port, bytes }, finish) {
  const sock = connect({ host, port });
  const chunk = Buffer.alloc(64 << 10, 'x');
  let sent = 0;
  const pump = () => {
    while (sent < bytes) {
      const n = Math.min(chunk.length, bytes - sent);
      sent += n;
      if (!sock.write(chunk.subarray(0, n))) return void sock.once('drain', pump);
    }
    sock.end(() => finish('ok'));
  };
  sock.on('connect', pump);
  sock.on('error', (e) => finish(`fail: ${reason(e)}`));
  return () => sock.destroy();
}

/** Run a sender with an overall time bound; answer exactly once. */
function run(cmd, sender) {
  let answered = false;
  let cleanup = () => undefined;
  const finish = (result) => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    setImmediate(() => cleanup());
    out({ id: cmd.id, result });
  };
  const timer = setTimeout(() => finish('fail: timeout'), cmd.timeoutMs);
  cleanup = sender(cmd, finish);
}

function handle(cmd) {
  if (cmd.op === 'enter' && !entered) return enter(cmd);
  if (!entered) return out({ id: cmd.id, error: `${cmd.op} before enter` });
  touch();
  if (cmd.op === 'listen') listen(cmd);
  else if (cmd.op === 'close') {
    listeners.get(cmd.lid)?.close();
    listeners.delete(cmd.lid);
    out({ id: cmd.id, ok: true });
  } else if (cmd.op === 'send') run(cmd, cmd.proto === 'tcp' ? sendTcp : sendUdp);
  else if (cmd.op === 'blast') run(cmd, blast);
  else out({ id: cmd.id, error: `unknown op ${cmd.op}` });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const cmd = JSON.parse(line);
  try {
    handle(cmd);
  } catch (e) {
    out({ id: cmd.id, error: e.message });
  }
});
process.stdin.on('end', () => process.exit(0));
out({ event: 'ready' });
