/**
 * The worker thread behind test/helpers/traffic.ts: it owns the traffic agents (peer.mjs, one per
 * lab namespace) and keeps what their listeners receive, so the test's own thread may block in a
 * synchronous send() while listeners go on receiving here. Requests arrive as messages; each answer
 * is posted on `workerData.port` and signalled through `workerData.flag` (Atomics), where the
 * test's thread waits for it (see call() in traffic.ts).
 *
 *   {op:'agent', netns, cmd}  forward cmd to the agent of netns (a spare moved there on first use)
 *   {op:'received', lid}      what listener lid received so far (a string)
 *   {op:'forget', lid}        drop listener lid's buffer
 *   {op:'stopAll'}            SIGKILL every agent in a namespace (by PID), wait for them (≤ 2 s)
 *
 * SPARES agents are kept started ahead of need: Node starts in ~0.2 s natively but 2-5 s under
 * the stock-kernel stage's emulation, and most tests use fresh namespaces.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const PEER = fileURLToPath(new URL('./peer.mjs', import.meta.url));
const SPARES = 2;
const START_TIMEOUT_MS = 30_000;
const { port, flag } = workerData;
const agents = new Map(); // namespace path → Promise<agent>
const spares = []; // agents not in a namespace yet (they open no socket)
const received = new Map(); // listener id → text
let nextId = 1;

function answer(seq, value) {
  port.postMessage({ ...value, seq });
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

/** A new agent process: { proc, pending, ready } (ready resolves on its first line). */
function spawnAgent() {
  const proc = spawn(process.execPath, [PEER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const agent = { proc, pending: new Map() };
  agent.ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`traffic agent did not start in ${START_TIMEOUT_MS} ms`));
    }, START_TIMEOUT_MS);
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`traffic agent exited (${code}) before it was ready`)));
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const msg = JSON.parse(line);
      if (msg.event === 'ready') {
        clearTimeout(timer);
        resolve();
      } else if (msg.event === 'data') {
        if (received.has(msg.lid)) received.set(msg.lid, received.get(msg.lid) + msg.data);
      } else {
        agent.pending.get(msg.id)?.(msg);
        agent.pending.delete(msg.id);
      }
    });
  });
  agent.ready.catch(() => undefined); // awaited where used; a spare may die unused
  proc.on('exit', () => {
    const i = spares.indexOf(agent);
    if (i >= 0) spares.splice(i, 1);
    for (const [netns, p] of agents) if (p.agent === agent) agents.delete(netns);
    for (const resolve of agent.pending.values()) resolve({ error: 'traffic agent exited', exited: true });
  });
  proc.stdin.on('error', () => undefined);
  return agent;
}

function replenish() {
  while (spares.length < SPARES) spares.push(spawnAgent());
}

function request(agent, cmd, id = nextId++) {
  return new Promise((resolve) => {
    agent.pending.set(id, (m) => resolve({ ...m, id }));
    agent.proc.stdin.write(JSON.stringify({ ...cmd, id }) + '\n');
  });
}

/** The agent of `netns`: a spare moved into it on first use. */
function agentFor(netns) {
  if (agents.has(netns)) return agents.get(netns);
  replenish();
  const agent = spares.shift();
  replenish();
  const ready = (async () => {
    await agent.ready;
    const r = await request(agent, { op: 'enter', path: netns });
    if (r.error) {
      agent.proc.kill('SIGKILL');
      throw new Error(`traffic agent cannot enter ${netns}: ${r.error}`);
    }
    return agent;
  })();
  ready.agent = agent;
  ready.catch(() => agents.delete(netns));
  agents.set(netns, ready);
  return ready;
}

async function toAgent(netns, cmd, retry = true) {
  const agent = await agentFor(netns);
  const id = nextId++;
  if (cmd.op === 'listen') received.set(id, ''); // the listener's id is its command's
  const msg = await request(agent, cmd, id);
  // An idle agent may exit just as a command reaches it: move a new one in, once.
  if (msg.exited && retry && cmd.op !== 'close') return toAgent(netns, cmd, false);
  return msg;
}

async function stopAll() {
  const procs = [...agents.values()].map((p) => p.agent.proc);
  agents.clear();
  received.clear();
  const exits = procs.map(
    (proc) =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', resolve);
        proc.kill('SIGKILL');
      }),
  );
  await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 2000))]);
  return { ok: true };
}

parentPort.on('message', (req) => {
  const work =
    req.op === 'agent'
      ? toAgent(req.netns, req.cmd)
      : req.op === 'received'
        ? Promise.resolve({ result: received.get(req.lid) ?? '' })
        : req.op === 'forget'
          ? Promise.resolve({ ok: received.delete(req.lid) })
          : stopAll();
  work.then(
    (value) => answer(req.seq, value),
    (e) => answer(req.seq, { error: e.message }),
  );
});
replenish();
