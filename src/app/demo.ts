/**
 * `portmap-isolator demo`: a self-contained lab, built with the SDK in fresh network namespaces
 * (a host with its own eth0 and lo, a "world" that plays the network and gateway, two containers),
 * showing with real traffic that in-range TCP/UDP passes and out-of-range does not, that
 * connections leave from each container's ephemeral block, that the egress limit holds, and the
 * live statistics. Removes everything; exits 0 only if every check passed.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContainerInfo } from '../isolator/engine.js';
import { Isolator } from '../isolator/engine.js';
import { GATEWAY as WORLD_IP, GATEWAY6 as WORLD_IP6, HOST_IP, HOST_IP6, LAB_HOST_LOCAL_PORTS, Lab, sweepStaleLabs, until } from '../lab/index.js';
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

type Sent = { ok: boolean; reply?: string; error?: string };

/** One run of the demo: its checks' tally and the peers it started (killed at the end). */
class DemoRun {
  passed = 0;
  failed = 0;
  readonly peers: Peer[] = [];

  check(ok: boolean, what: string): void {
    if (ok) this.passed++;
    else this.failed++;
    console.log(`  ${ok ? '✓' : '✗'} ${what}`);
  }

  step(what: string): void {
    console.log(`\n${what}`);
  }

  /** A peer serving proto on port inside ns, once it listens. */
  async serve(ns: Netns, proto: string, port: number): Promise<Peer> {
    const p = peer(ns, ['serve', proto, String(port)]);
    this.peers.push(p);
    await until(() => p.lines.some((l) => l.event === 'listening'));
    return p;
  }

  /** Send text from inside ns to host:port, and what the sender reported. */
  async send(ns: Netns, proto: string, host: string, port: number, text: string): Promise<Sent> {
    const p = peer(ns, ['send', proto, host, String(port), text]);
    this.peers.push(p);
    await p.done;
    return (p.lines[0] ?? { ok: false, error: 'no output' }) as Sent;
  }
}

/** Whether a serving peer received text. */
function got(p: Peer, text: string): boolean {
  return p.lines.some((l) => l.event === 'data' && String(l.text).includes(text));
}

/** The namespaces the demo's traffic runs in: the lab's host and world, and containers A and B. */
interface DemoNamespaces {
  hNs: Netns;
  wNs: Netns;
  nsA: Netns;
  nsB: Netns;
}

export async function runDemo(opts: { log: Logger; workDir?: string }): Promise<number> {
  const t0 = Date.now();
  const workDir = opts.workDir ?? mkdtempSync(join(tmpdir(), 'pmi-demo-'));
  const run = new DemoRun();
  let lab: Lab | undefined;
  let iso: Isolator | undefined;
  try {
    sweepStaleLabs(); // labs left by runs that died
    // IPv6 too, where the kernel has it (a kernel booted with ipv6.disable=1 has no /proc/sys/net/ipv6).
    const ipv6 = existsSync('/proc/sys/net/ipv6');
    lab = new Lab({ ipv6 });
    run.step(`1. A lab in fresh network namespaces (${lab.host}, ${lab.world}); nothing else is touched`);
    const hNs = Netns.fromName(lab.host);
    const wNs = Netns.fromName(lab.world);
    writeSysctl(hNs, 'net.ipv4.ip_local_port_range', LAB_HOST_LOCAL_PORTS); // keep the host's own ports out of the pool
    console.log(
      ipv6
        ? `  host ${HOST_IP} and ${HOST_IP6} (eth0) ⇄ world ${WORLD_IP} and ${WORLD_IP6} (gateway)`
        : `  host ${HOST_IP} (eth0) ⇄ world ${WORLD_IP} (gateway)`,
    );

    run.step('2. The isolator on the lab host, with an egress limit of 256 KB/s per container');
    iso = await openDemoIsolator(lab, workDir);
    const [a, b] = await createContainers(iso);
    const ns: DemoNamespaces = { hNs, wNs, nsA: Netns.fromPath(a.netns), nsB: Netns.fromPath(b.netns) };
    await showTcpSteering(run, ns);
    await showUdpSteering(run, ns);
    await showEphemeralPorts(run, ns, [a, b]);
    if (ipv6) await showIpv6(run, ns, a);
    else run.step('6. IPv6: this kernel has none (no /proc/sys/net/ipv6): left out');
    await showEgressLimit(run, ns);
    await showStatistics(run, iso);
    for (const n of [ns.nsA, ns.nsB, wNs, hNs]) n.close();
  } catch (e) {
    run.failed++;
    console.log(`  ✗ ${(e as Error).message}`);
  } finally {
    await cleanUp(run, iso, lab, opts.workDir ? undefined : workDir);
  }
  console.log(
    `\n${run.failed === 0 ? 'demo passed' : 'demo FAILED'}: ${run.passed} checks passed, ${run.failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return run.failed === 0 ? 0 : 1;
}

function openDemoIsolator(lab: Lab, workDir: string): Promise<Isolator> {
  return Isolator.open({
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
}

async function createContainers(iso: Isolator): Promise<[ContainerInfo, ContainerInfo]> {
  const a = await iso.create({ id: 'A', ports: '[31000-31099]' });
  const b = await iso.create({ id: 'B', ports: '[31100-31199]' });
  for (const c of [a, b])
    console.log(
      `  container ${c.id}: ports ${c.ports.map(([x, y]) => `${x}-${y}`).join(',')}, ephemeral ${c.ephemeral_ports.begin}-${c.ephemeral_ports.end}, veth ${c.veth}`,
    );
  return [a, b];
}

async function showTcpSteering(run: DemoRun, { wNs, nsA, nsB }: DemoNamespaces): Promise<void> {
  run.step('3. TCP: in-range ports reach their container, out-of-range ones do not');
  const a31001 = await run.serve(nsA, 'tcp', 31001);
  const a32500 = await run.serve(nsA, 'tcp', 32500);
  const b31101 = await run.serve(nsB, 'tcp', 31101);
  await run.send(wNs, 'tcp', HOST_IP, 31001, 'world-to-A');
  run.check(await until(() => got(a31001, 'world-to-A')), `world → ${HOST_IP}:31001 reaches A`);
  await run.send(wNs, 'tcp', HOST_IP, 31101, 'world-to-B');
  run.check(await until(() => got(b31101, 'world-to-B')), `world → ${HOST_IP}:31101 reaches B`);
  await run.send(nsB, 'tcp', '127.0.0.1', 31001, 'B-to-A');
  run.check(await until(() => got(a31001, 'B-to-A')), 'B → 127.0.0.1:31001 reaches A (container to container)');
  const refused = await run.send(nsB, 'tcp', HOST_IP, 32500, 'B-to-A-out-of-range');
  await new Promise((r) => setTimeout(r, 200));
  run.check(
    !refused.ok && !got(a32500, 'out-of-range'),
    `B → ${HOST_IP}:32500 (A listens there, but the port is not A's) never reaches A: ${refused.error ?? 'delivered!'}`,
  );
}

async function showUdpSteering(run: DemoRun, { wNs, nsA }: DemoNamespaces): Promise<void> {
  run.step('4. UDP: the same steering');
  const a31002 = await run.serve(nsA, 'udp', 31002);
  const a32501 = await run.serve(nsA, 'udp', 32501);
  const udpIn = await run.send(wNs, 'udp', HOST_IP, 31002, 'udp-in-range');
  run.check(udpIn.ok && got(a31002, 'udp-in-range'), `world → ${HOST_IP}:31002/udp reaches A and A answers`);
  await run.send(wNs, 'udp', HOST_IP, 32501, 'udp-out-of-range');
  await new Promise((r) => setTimeout(r, 200));
  run.check(!got(a32501, 'udp-out-of-range'), `world → ${HOST_IP}:32501/udp never reaches A`);
}

async function showEphemeralPorts(run: DemoRun, { wNs, nsA, nsB }: DemoNamespaces, containers: ContainerInfo[]): Promise<void> {
  run.step("5. Outgoing connections leave from the container's own ephemeral block");
  await run.serve(wNs, 'tcp', 7000);
  for (const c of containers) {
    const r = await run.send(c.id === 'A' ? nsA : nsB, 'tcp', WORLD_IP, 7000, 'hi');
    const port = Number(r.reply);
    run.check(
      r.ok && port >= c.ephemeral_ports.begin && port <= c.ephemeral_ports.end,
      `${c.id} → world:7000 from port ${r.reply ?? '?'} (block ${c.ephemeral_ports.begin}-${c.ephemeral_ports.end})`,
    );
  }
}

async function showIpv6(run: DemoRun, { wNs, nsA, nsB }: DemoNamespaces, a: ContainerInfo): Promise<void> {
  run.step(`6. IPv6: the containers share the host's IPv6 address (${(a.ipv6_addresses ?? ['none']).join(', ')}), steered the same way`);
  const a31003 = await run.serve(nsA, 'tcp', 31003);
  await run.send(wNs, 'tcp', HOST_IP6, 31003, 'world-to-A-over-IPv6');
  run.check(await until(() => got(a31003, 'world-to-A-over-IPv6')), `world → [${HOST_IP6}]:31003 reaches A`);
  await run.send(nsB, 'tcp', HOST_IP6, 31003, 'B-to-A-over-IPv6');
  run.check(await until(() => got(a31003, 'B-to-A-over-IPv6')), `B → [${HOST_IP6}]:31003 reaches A (container to container)`);
  await run.serve(wNs, 'tcp', 7002);
  const r = await run.send(nsA, 'tcp', WORLD_IP6, 7002, 'hi');
  const port = Number(r.reply);
  run.check(
    r.ok && port >= a.ephemeral_ports.begin && port <= a.ephemeral_ports.end,
    `A → [${WORLD_IP6}]:7002 from port ${r.reply ?? '?'} (its block ${a.ephemeral_ports.begin}-${a.ephemeral_ports.end})`,
  );
}

async function showEgressLimit(run: DemoRun, { wNs, nsA }: DemoNamespaces): Promise<void> {
  run.step('7. The egress limit holds');
  await run.serve(wNs, 'tcp', 7001);
  const blast = peer(nsA, ['blast', WORLD_IP, '7001', String(BLAST_BYTES)]);
  run.peers.push(blast);
  await blast.done;
  const ms = Number(blast.lines[0]?.ms ?? 0);
  const expected = (BLAST_BYTES / EGRESS_BYTES_PER_SEC) * 1000;
  run.check(
    blast.lines[0]?.ok === true && ms >= expected * 0.75,
    `A sent ${BLAST_BYTES / 1024} KB in ${ms} ms at 256 KB/s (no faster than ~${Math.round(expected)} ms)`,
  );
}

async function showStatistics(run: DemoRun, iso: Isolator): Promise<void> {
  run.step('8. Live statistics (Mesos /monitor/statistics)');
  const [stats] = await iso.stats('A');
  const s = stats!.statistics as Record<string, unknown>;
  console.log(
    `  ${JSON.stringify({ container_id: stats!.container_id, net_tx_bytes: s.net_tx_bytes, net_rx_bytes: s.net_rx_bytes, net_tx_rate_limit: s.net_tx_rate_limit, net_ephemeral_ports: s.net_ephemeral_ports, net_traffic_control_statistics: s.net_traffic_control_statistics })}`,
  );
  run.check(Number(s.net_tx_bytes) >= BLAST_BYTES, 'A’s transmitted bytes counted on its veth');
}

/** Kill the peers, undo the isolator's changes, remove the lab (and the work_dir, when it is ours). */
async function cleanUp(run: DemoRun, iso: Isolator | undefined, lab: Lab | undefined, ownWorkDir: string | undefined): Promise<void> {
  for (const p of run.peers) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  run.step('9. Cleaning up');
  if (iso) {
    const r = await iso.cleanup().catch((e: Error) => ({ errors: [e.message], destroyed: [] as string[] }));
    await iso.close();
    run.check(
      r.errors.length === 0,
      `containers destroyed (${r.destroyed.join(', ') || 'none'}) and host changes undone${r.errors.length ? ': ' + r.errors.join('; ') : ''}`,
    );
  }
  lab?.destroy();
  if (ownWorkDir) rmSync(ownWorkDir, { recursive: true, force: true });
  console.log(`  lab namespaces removed`);
}
