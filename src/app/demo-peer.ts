/**
 * The demo's traffic peer: a tiny TCP/UDP server or client, started by the demo inside a lab
 * namespace (so every socket it opens lives there). Prints one JSON line per event on stdout.
 *
 *   serve tcp|udp PORT          receive; answer each connection/datagram with the peer's port
 *   send tcp|udp HOST PORT TEXT send TEXT, print the answer (or the error)
 *   blast HOST PORT BYTES       send BYTES over TCP, print the time it took
 */
import { createSocket } from 'node:dgram';
import { connect, createServer } from 'node:net';

const [mode, a, b, c, d] = process.argv.slice(2);
const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');
const LIMIT_MS = 15_000;
setTimeout(() => process.exit(3), LIMIT_MS).unref(); // every peer is bounded in time

if (mode === 'serve' && a === 'tcp') {
  const server = createServer((sock) => {
    sock.write(String(sock.remotePort));
    let bytes = 0;
    let text = '';
    sock.on('data', (chunk) => {
      bytes += chunk.length;
      if (text.length < 64) text += chunk.toString('utf8', 0, Math.min(chunk.length, 64));
    });
    sock.on('end', () => out({ event: 'data', bytes, text: text.slice(0, 64) }));
    sock.on('error', () => undefined);
  });
  // '::' takes IPv4 and IPv6 (dual stack); where IPv6 is off, 0.0.0.0.
  server.once('error', () => server.listen(Number(b), '0.0.0.0', () => out({ event: 'listening' })));
  server.listen(Number(b), '::', () => out({ event: 'listening' }));
} else if (mode === 'serve' && a === 'udp') {
  const serve = (type: 'udp4' | 'udp6', fallback?: () => void) => {
    const s = createSocket(type);
    s.on('message', (msg, rinfo) => {
      out({ event: 'data', bytes: msg.length, text: msg.toString('utf8', 0, 64) });
      s.send(String(rinfo.port), rinfo.port, rinfo.address);
    });
    if (fallback) s.once('error', () => (s.close(), fallback()));
    s.bind(Number(b), type === 'udp6' ? '::' : '0.0.0.0', () => out({ event: 'listening' }));
  };
  serve('udp6', () => serve('udp4'));
} else if (mode === 'send' && a === 'tcp') {
  const sock = connect({ host: b!, port: Number(c) });
  let reply = '';
  sock.setTimeout(2000, () => {
    out({ ok: false, error: 'timeout' });
    process.exit(1);
  });
  sock.on('connect', () => sock.end(d ?? ''));
  sock.on('data', (x) => (reply += x));
  sock.on('end', () => {
    out({ ok: true, reply });
    process.exit(0);
  });
  sock.on('error', (e) => {
    out({ ok: false, error: e.message });
    process.exit(1);
  });
} else if (mode === 'send' && a === 'udp') {
  const s = createSocket(b!.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (msg) => {
    out({ ok: true, reply: msg.toString() });
    process.exit(0);
  });
  s.send(d ?? '', Number(c), b!, () => undefined);
  setTimeout(() => {
    out({ ok: false, error: 'no answer' });
    process.exit(1);
  }, 1500);
} else if (mode === 'blast') {
  const total = Number(c);
  const t0 = Date.now();
  const sock = connect({ host: a!, port: Number(b) });
  sock.on('connect', () => {
    const chunk = Buffer.alloc(16 << 10, 120);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent);
        sent += n;
        if (!sock.write(chunk.subarray(0, n))) return void sock.once('drain', pump);
      }
      sock.end();
    };
    pump();
  });
  sock.on('data', () => undefined);
  sock.on('close', () => {
    out({ ok: true, ms: Date.now() - t0 });
    process.exit(0);
  });
  sock.on('error', (e) => {
    out({ ok: false, error: e.message });
    process.exit(1);
  });
} else {
  process.stderr.write('usage: demo-peer serve tcp|udp PORT | send tcp|udp HOST PORT TEXT | blast HOST PORT BYTES\n');
  process.exit(2);
}
