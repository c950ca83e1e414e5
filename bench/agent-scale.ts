/**
 * agent: the HTTP agent (`portmap-isolator agent`, the built CLI) at 1000 containers.
 *
 * The agent runs as in production (its own process, warm pool of 4, Unix socket) on a lab host.
 * Containers are created through its socket one after another (container i holds port 31000 + i
 * and a 16-port ephemeral block) up to 1000 (quick: 100). At 0 and each level: the agent's RSS;
 * at the top level: GET /monitor/statistics and GET /metrics timed as a scraper sees them (a new
 * connection per request), with their sizes. Then the agent is stopped (SIGTERM: it removes its
 * spares) and started again with every container alive, timed until /health answers (its
 * recover() runs before it listens). Everything is removed afterwards (the engine's cleanup()).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { BENCH_FLAGS } from './container-setup.js';
import { round, summarize } from './stats.js';
import type { SuiteOptions, SuiteOutput } from './util.js';
import { guardIsolatorLab, nowMs, onInterrupt, sleep } from './util.js';
import { IsolatorLab, tmpfsDir } from '../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'app', 'main.js');
/** Node options for the agent processes only, e.g. `--cpu-prof --cpu-prof-dir=DIR` to profile them. */
/**
 * The Node flags the agent runs with: none, as `portmap-isolator agent` runs (it keeps its young
 * generation small itself, src/app/young-generation.ts), unless PMI_BENCH_AGENT_NODE_FLAGS names
 * some, e.g. `--max-semi-space-size=2` (which the agent then leaves to Node).
 */
const AGENT_NODE_FLAGS = (process.env.PMI_BENCH_AGENT_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean);
const AGENT_NODE_ARGS = [...AGENT_NODE_FLAGS, ...(process.env.PMI_BENCH_AGENT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];
const WARM_POOL = 4;
const FIRST_PORT = 31000;

interface Timing {
  median: number;
  p99: number;
  n: number;
  bytes: number;
  /** The agent's CPU time (user + system) per request: less moved by other load than wall time. */
  agent_cpu_ms: number;
}

export interface AgentScaleResult {
  containers: number;
  /** The Node flags the agent ran with (see AGENT_NODE_FLAGS). */
  node_flags: string[];
  /** Agent resident memory (VmRSS) with that many containers. */
  rss_mb: Record<string, number>;
  /** Median create (POST /containers, as the client sees it) over the last creates before each level. */
  create_ms: Record<string, number>;
  create_p99_ms: Record<string, number>;
  /** Creates that took a warm-pool spare (back to back, the pool mostly refills between them). */
  spare_taken_share: number;
  /** At the top level, a new connection per request. */
  monitor_statistics_ms: Timing;
  metrics_ms: Timing;
  /** SIGTERM to exit, the spares removed. */
  stop_ms: number;
  /** Spawn of a new agent with every container alive until /health answers 200. */
  recover_ms: number;
  /** Spawn of `node -e ''` until it exits: the part of recover_ms that is Node starting. */
  node_start_ms: number;
  fill_seconds: number;
  cleanup_seconds: number;
}

interface Reply {
  status: number;
  text: string;
  bytes: number;
}

function call(socketPath: string, method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) };
    const req = request({ socketPath, method, path, agent: false, headers, timeout: 60_000 });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer in 60 s`)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, text: b.toString('utf8'), bytes: b.length });
      });
    });
    req.end(payload);
  });
}

/** The agent process, with the tail of its log for error messages. */
class AgentProcess {
  readonly p: ChildProcess;
  private log = '';

  constructor(args: string[]) {
    this.p = spawn(process.execPath, [...AGENT_NODE_ARGS, CLI, 'agent', '--log_format=json', `--warm_pool=${WARM_POOL}`, ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.p.stderr!.on('data', (d: Buffer) => (this.log = (this.log + d.toString()).slice(-4000)));
  }

  get tail(): string {
    return this.log.trim().split('\n').slice(-5).join(' / ');
  }

  /** CPU time (user + system) the agent used so far, in ms (clock ticks of 10 ms). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.p.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime in USER_HZ (100)
  }

  rssMb(): number {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.p.pid}/status`, 'utf8'));
    return m ? round(Number(m[1]) / 1024, 1) : NaN;
  }

  exited(timeoutMs: number): Promise<number | string | null> {
    if (this.p.exitCode !== null || this.p.signalCode !== null) return Promise.resolve(this.p.exitCode ?? this.p.signalCode);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.p.kill('SIGKILL');
        resolve('timeout');
      }, timeoutMs);
      this.p.once('exit', (code, signal) => {
        clearTimeout(t);
        resolve(code ?? signal);
      });
    });
  }

  /** Poll /health (every 2 ms, bounded) until it answers 200. */
  async healthy(socket: string, timeoutMs: number): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.p.exitCode !== null) throw new Error(`the agent exited ${this.p.exitCode}: ${this.tail}`);
      const r = await call(socket, 'GET', '/health').catch(() => undefined);
      if (r?.status === 200) return;
      await sleep(2);
    }
    throw new Error(`the agent did not answer /health in ${timeoutMs} ms: ${this.tail}`);
  }
}

/** Wait (bounded) until the work_dir holds `n` ready spares. */
async function sparesReady(workDir: string, n: number, timeoutMs = 20_000): Promise<void> {
  const dir = join(workDir, 'spares');
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ready = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json') && readFileSync(join(dir, f), 'utf8').includes('"ready"')) : [];
    if (ready.length >= n) return;
    await sleep(20);
  }
}

/** `reps` GETs of `path`, each on a new connection. */
async function timeGets(agent: AgentProcess, socket: string, path: string, reps: number): Promise<Timing> {
  const ms: number[] = [];
  let bytes = 0;
  const cpu0 = agent.cpuMs();
  for (let i = 0; i < reps; i++) {
    const t0 = nowMs();
    const r = await call(socket, 'GET', path);
    ms.push(nowMs() - t0);
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 200)}`);
    bytes = r.bytes;
  }
  const s = summarize(ms);
  return { median: round(s.median), p99: round(s.p99), n: s.n, bytes, agent_cpu_ms: round((agent.cpuMs() - cpu0) / reps, 1) };
}

/** Wall time of `node -e ''`, the floor under any agent start. */
async function nodeStartMs(): Promise<number> {
  const ms: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = nowMs();
    await new Promise((r) => spawn(process.execPath, ['-e', ''], { stdio: 'ignore' }).once('exit', r));
    ms.push(nowMs() - t0);
  }
  return round(summarize(ms).median, 1);
}

interface Fill {
  createMs: number[];
  fromSpare: number;
  rss: Record<string, number>;
}

/** Create containers `from`..`to`-1 through the socket, one after another. */
async function fill(socket: string, from: number, to: number, out: Fill): Promise<void> {
  for (let i = from; i < to; i++) {
    const port = FIRST_PORT + i;
    const t0 = nowMs();
    const r = await call(socket, 'POST', '/containers', { id: `a${i}`, ports: `[${port}-${port}]` });
    out.createMs.push(nowMs() - t0);
    if (r.status !== 201) throw new Error(`create a${i}: ${r.status} ${r.text.slice(0, 300)}`);
    if ((JSON.parse(r.text) as { netns: string }).netns.includes('/.spare-')) out.fromSpare++;
  }
}

export async function benchAgentScale(opts: SuiteOptions): Promise<SuiteOutput<AgentScaleResult>> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const top = opts.quick ? 100 : 1000;
  const levels = opts.quick ? [10, 50, 100] : [100, 500, 1000];
  const reps = opts.quick ? 10 : 50;
  const lab = new IsolatorLab(tmpfsDir());
  const unguard = guardIsolatorLab(lab);
  const socket = join(lab.workDir, 'agent.sock');
  const flags = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`, `--resources=${BENCH_FLAGS.resources}`, '--ephemeral_ports_per_container=16'];
  let agent: AgentProcess | undefined;
  const unguardAgent = onInterrupt(() => agent?.p.kill('SIGKILL'));
  const f: Fill = { createMs: [], fromSpare: 0, rss: {} };
  try {
    agent = new AgentProcess(flags);
    await agent.healthy(socket, 30_000);
    await sparesReady(lab.workDir, WARM_POOL);
    const fillMs = await fillLevels(agent, socket, levels, f, opts.log);
    opts.log(`  agent: ${reps} GETs of /monitor/statistics and /metrics at ${top}`);
    const statistics = await timeGets(agent, socket, '/monitor/statistics', reps);
    const metrics = await timeGets(agent, socket, '/metrics', reps);
    const stopped = await stopAgent(agent);
    opts.log(`  agent: restarting with ${top} containers`);
    const t1 = nowMs();
    agent = new AgentProcess(flags);
    await agent.healthy(socket, 120_000);
    const recoverMs = nowMs() - t1;
    await stopAgent(agent);
    agent = undefined;
    const cleanupMs = await cleanupAll(lab);
    return {
      result: {
        containers: top,
        node_flags: AGENT_NODE_FLAGS,
        rss_mb: f.rss,
        ...createFigures(f.createMs, levels),
        spare_taken_share: round(f.fromSpare / top),
        monitor_statistics_ms: statistics,
        metrics_ms: metrics,
        stop_ms: round(stopped, 1),
        recover_ms: round(recoverMs, 1),
        node_start_ms: await nodeStartMs(),
        fill_seconds: round(fillMs / 1e3, 1),
        cleanup_seconds: round(cleanupMs / 1e3, 1),
      },
      samples: { create_ms: f.createMs.map((x) => round(x, 3)) },
    };
  } finally {
    if (agent) await stopAgent(agent).catch(() => undefined);
    unguardAgent();
    await lab.destroy();
    unguard();
  }
}

/** RSS at 0 (the pool full), then create up to each level, RSS there: the ms it took. */
async function fillLevels(agent: AgentProcess, socket: string, levels: number[], f: Fill, log: (line: string) => void): Promise<number> {
  f.rss.at_0 = agent.rssMb();
  const t0 = nowMs();
  let have = 0;
  for (const level of levels) {
    log(`  agent: creating containers ${have}..${level - 1}`);
    await fill(socket, have, level, f);
    have = level;
    f.rss[`at_${level}`] = agent.rssMb();
  }
  return nowMs() - t0;
}

/** The engine's cleanup() of every container (no agent running): the ms it took. */
async function cleanupAll(lab: IsolatorLab): Promise<number> {
  const t0 = nowMs();
  const report = await (await lab.open(BENCH_FLAGS)).cleanup();
  if (report.errors.length) throw new Error(`cleanup: ${report.errors.slice(0, 3).join('; ')}`);
  return nowMs() - t0;
}

/** SIGTERM, then its exit (bounded): the ms it took. Throws unless it exited 0. */
async function stopAgent(a: AgentProcess): Promise<number> {
  const t0 = nowMs();
  a.p.kill('SIGTERM');
  const code = await a.exited(30_000);
  if (code !== 0) throw new Error(`the agent exited ${String(code)} on SIGTERM: ${a.tail}`);
  return nowMs() - t0;
}

/** Median and p99 of the last creates before each level (the last 50, or fewer at small levels). */
function createFigures(ms: number[], levels: number[]): Pick<AgentScaleResult, 'create_ms' | 'create_p99_ms'> {
  const median: Record<string, number> = {};
  const p99: Record<string, number> = {};
  for (const level of levels) {
    const window = ms.slice(Math.max(0, level - Math.min(50, Math.ceil(level / 2))), level);
    const s = summarize(window);
    median[`at_${level}`] = round(s.median);
    p99[`at_${level}`] = round(s.p99);
  }
  return { create_ms: median, create_p99_ms: p99 };
}
