/**
 * `portmap-isolator demo`: a self-contained lab, built with the SDK in fresh network namespaces
 * (a host with its own eth0 and lo, a "world" that plays the network and gateway, two containers),
 * showing with real traffic that in-range TCP/UDP passes and out-of-range does not, that
 * connections leave from each container's ephemeral block, that the egress limit holds, and the
 * live statistics. Removes everything; exits 0 only if every check passed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Isolator } from '../isolator/engine.js';
import { GATEWAY as WORLD_IP, HOST_IP, LAB_HOST_LOCAL_PORTS, Lab, sweepStaleLabs, until } from '../lab/index.js';
import { Netns } from '../netlink/index.js';
import { writeSysctl } from '../rtnl/index.js';
import type { Logger } from './log.js';

const EGRESS_BYTES_PER_SEC = 256 * 1024;
const BLAST_BYTES = 512 * 1024;

const PEER = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? './demo-peer.ts' : './demo-peer.js', import.meta.url));

interface Peer {
  lines: Array<Record<string, unknown>>;
  done: Promise<number>;
  proc: ChildProcess;
}

function peer(ns: Netns, args: string[]): Peer {
  const proc = ns.spawn(process.execPath, [...process.execArgv, PEER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  const done = new Promise<number>((resolve) => proc.on('exit', (code) => resolve(code ?? 1)));
  return { lines, done, proc };
}

export async function runDemo(opts: { log: Logger; workDir?: string }): Promise<number> {
  const t0 = Date.now();
  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'pmi-demo-'));
  const peers: Peer[] = [];
  let lab: Lab | undefined;
  let iso: Isolator | undefined;
  let passed = 0;
  let failed = 0;
  const check = (ok: boolean, what: string) => {
    if (ok) passed++;
    else failed++;
    console.log(`  ${ok ? '✓' : '✗'} ${what}`);
  };
  const step = (what: string) => console.log(`\n${what}`);
  try {
    sweepStaleLabs(); // labs left by runs that died
    lab = new Lab();
    step(`1. A lab in fresh network namespaces (${lab.host}, ${lab.world}); nothing else is touched`);
    const hNs = Netns.fromName(lab.host);
    const wNs = Netns.fromName(lab.world);
    writeSysctl(hNs, 'net.ipv4.ip_local_port_range', LAB_HOST_LOCAL_PORTS); // keep the host's own ports out of the pool
    console.log(`  host ${HOST_IP} (eth0) ⇄ world ${WORLD_IP} (gateway)`);

    step('2. The isolator on the lab host, with an egress limit of 256 KB/s per container');
    iso = await Isolator.open({
      netns: lab.path(lab.host),
      workDir,
      flags: {
        resources: 'ports:[31000-32000];ephemeral_ports:[30001-30999]',
        ephemeral_ports_per_container: 16,
        egress_rate_limit_per_container: '256KB',
        minimum_egress_rate_limit: '0B',
      },
      onWarning: (m) => console.log(`  (note: ${m})`),
    });
    const a = await iso.create({ id: 'A', ports: '[31000-31099]' });
    const b = await iso.create({ id: 'B', ports: '[31100-31199]' });
    for (const c of [a, b])
      console.log(
        `  container ${c.id}: ports ${c.ports.map(([x, y]) => `${x}-${y}`).join(',')}, ephemeral ${c.ephemeral_ports.begin}-${c.ephemeral_ports.end}, veth ${c.veth}`,
      );
    const nsA = Netns.fromPath(a.netns);
    const nsB = Netns.fromPath(b.netns);
    const serve = async (ns: Netns, proto: string, port: number) => {
      const p = peer(ns, ['serve', proto, String(port)]);
      peers.push(p);
      await until(() => p.lines.some((l) => l.event === 'listening'));
      return p;
    };
    const send = async (ns: Netns, proto: string, host: string, port: number, text: string) => {
      const p = peer(ns, ['send', proto, host, String(port), text]);
      peers.push(p);
      await p.done;
      return (p.lines[0] ?? { ok: false, error: 'no output' }) as { ok: boolean; reply?: string; error?: string };
    };
    const got = (p: Peer, text: string) => p.lines.some((l) => l.event === 'data' && String(l.text).includes(text));

    step('3. TCP: in-range ports reach their container, out-of-range ones do not');
    const a31001 = await serve(nsA, 'tcp', 31001);
    const a32500 = await serve(nsA, 'tcp', 32500);
    const b31101 = await serve(nsB, 'tcp', 31101);
    await send(wNs, 'tcp', HOST_IP, 31001, 'world-to-A');
    check(await until(() => got(a31001, 'world-to-A')), `world → ${HOST_IP}:31001 reaches A`);
    await send(wNs, 'tcp', HOST_IP, 31101, 'world-to-B');
    check(await until(() => got(b31101, 'world-to-B')), `world → ${HOST_IP}:31101 reaches B`);
    await send(nsB, 'tcp', '127.0.0.1', 31001, 'B-to-A');
    check(await until(() => got(a31001, 'B-to-A')), 'B → 127.0.0.1:31001 reaches A (container to container)');
    const refused = await send(nsB, 'tcp', HOST_IP, 32500, 'B-to-A-out-of-range');
    await new Promise((r) => setTimeout(r, 200));
    check(
      !refused.ok && !got(a32500, 'out-of-range'),
      `B → ${HOST_IP}:32500 (A listens there, but the port is not A's) never reaches A: ${refused.error ?? 'delivered!'}`,
    );

    step('4. UDP: the same steering');
    const a31002 = await serve(nsA, 'udp', 31002);
    const a32501 = await serve(nsA, 'udp', 32501);
    const udpIn = await send(wNs, 'udp', HOST_IP, 31002, 'udp-in-range');
    check(udpIn.ok && got(a31002, 'udp-in-range'), `world → ${HOST_IP}:31002/udp reaches A and A answers`);
    await send(wNs, 'udp', HOST_IP, 32501, 'udp-out-of-range');
    await new Promise((r) => setTimeout(r, 200));
    check(!got(a32501, 'udp-out-of-range'), `world → ${HOST_IP}:32501/udp never reaches A`);

    step("5. Outgoing connections leave from the container's own ephemeral block");
    await serve(wNs, 'tcp', 7000);
    for (const c of [a, b]) {
      const r = await send(c.id === 'A' ? nsA : nsB, 'tcp', WORLD_IP, 7000, 'hi');
      const port = Number(r.reply);
      check(
        r.ok && port >= c.ephemeral_ports.begin && port <= c.ephemeral_ports.end,
        `${c.id} → world:7000 from port ${r.reply ?? '?'} (block ${c.ephemeral_ports.begin}-${c.ephemeral_ports.end})`,
      );
    }

    step('6. The egress limit holds');
    await serve(wNs, 'tcp', 7001);
    const blast = peer(nsA, ['blast', WORLD_IP, '7001', String(BLAST_BYTES)]);
    peers.push(blast);
    await blast.done;
    const ms = Number(blast.lines[0]?.ms ?? 0);
    const expected = (BLAST_BYTES / EGRESS_BYTES_PER_SEC) * 1000;
    check(
      blast.lines[0]?.ok === true && ms >= expected * 0.75,
      `A sent ${BLAST_BYTES / 1024} KB in ${ms} ms at 256 KB/s (no faster than ~${Math.round(expected)} ms)`,
    );

    step('7. Live statistics (Mesos /monitor/statistics)');
    const [stats] = await iso.stats('A');
    const s = stats!.statistics as Record<string, unknown>;
    console.log(
      `  ${JSON.stringify({ container_id: stats!.container_id, net_tx_bytes: s.net_tx_bytes, net_rx_bytes: s.net_rx_bytes, net_tx_rate_limit: s.net_tx_rate_limit, net_ephemeral_ports: s.net_ephemeral_ports, net_traffic_control_statistics: s.net_traffic_control_statistics })}`,
    );
    check(Number(s.net_tx_bytes) >= BLAST_BYTES, 'A’s transmitted bytes counted on its veth');
    for (const n of [nsA, nsB, wNs, hNs]) n.close();
  } catch (e) {
    failed++;
    console.log(`  ✗ ${(e as Error).message}`);
  } finally {
    for (const p of peers) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
    step('8. Cleaning up');
    if (iso) {
      const r = await iso.cleanup().catch((e: Error) => ({ errors: [e.message], destroyed: [] as string[] }));
      await iso.close();
      check(
        r.errors.length === 0,
        `containers destroyed (${r.destroyed.join(', ') || 'none'}) and host changes undone${r.errors.length ? ': ' + r.errors.join('; ') : ''}`,
      );
    }
    lab?.destroy();
    if (!opts.workDir) rmSync(workDir, { recursive: true, force: true });
    console.log(`  lab namespaces removed`);
  }
  console.log(`\n${failed === 0 ? 'demo passed' : 'demo FAILED'}: ${passed} checks passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return failed === 0 ? 0 : 1;
}
