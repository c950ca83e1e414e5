/**
 * Drives the CNI plugin in-process with generated invocations (environment and stdin), from inside
 * the lab host namespace it is started in (`ip netns exec HOST node --import tsx fuzz-driver.ts`):
 * the plugin's "host" is its caller's namespace, so it must never run in the test's own.
 *   fuzz-driver.ts WORK_DIR SEED COUNT NETNS_PATH…
 * Prints one JSON object: outcomes by CNI error code, what threw, what answered INTERNAL (999) or
 * malformed output (with the input that did it), and the containers left after a final DEL of
 * every id that ADD accepted (with the environment and stdin ADD had).
 */
import { runCni } from '../../src/cni/plugin.js';
import { rng } from '../helpers/rng.js';

const [workDir, seedText, countText, ...namespaces] = process.argv.slice(2);
const next = rng(Number(seedText));
const count = Number(countText);
const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
const chance = (percent: number) => next() % 100 < percent;

const WEIRD: unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  1e300,
  2 ** 53 + 1,
  '',
  'x',
  '[',
  {},
  [],
  [1, 'a'],
  { a: { b: [null] } },
  'ports:[1-0]',
  '\u0000',
  'é'.repeat(50),
];
const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'GC', 'STATUS', 'add', '', 'ADD\u0000', 'x'.repeat(300)];
const IDS = ['c0', 'c1', 'c2', 'c3', '', 'bad id!', '../escape', 'a'.repeat(200), '-lead', 'ok.1_x'];
const IFNAMES = ['eth0', 'eth1', '', 'x'.repeat(20), 'a/b', 'lo', 'eth 0'];
const ARGS = [
  undefined,
  '',
  'PORTS=[31000-31009]',
  'PORTS=[31010-31010]',
  'PORTS=garbage',
  'K8S_POD_NAME=x;PORTS=[31020-31029]',
  'PORTS=[70000-70001]',
  ';;;',
  'IgnoreUnknown=1;FOO=bar',
  'PORTS=[32001-32002]',
];
const FOREIGN_NETNS = ['', 'relative/ns', '/proc/self/ns/net', '/proc/1/ns/net', '/proc/self/ns/uts', '/nonexistent/ns', `${workDir}/lock`, `${workDir}/netns`];
const CONF_KEYS = [
  'cniVersion',
  'name',
  'type',
  'resources',
  'ephemeral_ports_per_container',
  'lock_timeout_ms',
  'runtimeConfig',
  'prevResult',
  'capabilities',
  'egress_rate_limit_per_container',
  'dns',
  'ipam',
  'ipMasq',
  'args',
  'bogus',
];

function netconf(): Record<string, unknown> {
  const conf: Record<string, unknown> = {
    cniVersion: pick(['1.0.0', '1.0.0', '0.4.0']),
    name: 'fuzz',
    type: 'portmap-isolator',
    resources: 'ports:[31000-32000];ephemeral_ports:[30001-30999]',
    ephemeral_ports_per_container: 16,
    // Always this work_dir (or an invalid value): a fuzzed path must never land outside the lab.
    work_dir: workDir,
    lock_timeout_ms: 2000,
  };
  if (chance(30))
    conf.runtimeConfig = {
      portMappings: [{ hostPort: 31000 + (next() % 1100), containerPort: 31000 + (next() % 1100), protocol: pick(['tcp', 'udp', 'sctp', 7]) }],
    };
  for (let i = next() % 4; i > 0; i--) {
    const key = pick(CONF_KEYS);
    if (chance(20)) delete conf[key];
    else conf[key] = pick(WEIRD);
  }
  if (chance(5)) conf.work_dir = pick([1, 'relative', null, '']);
  return conf;
}

function stdin(): string {
  const text = JSON.stringify(netconf());
  switch (next() % 12) {
    case 0:
      return text.slice(0, next() % text.length);
    case 1:
      return pick(['', 'null', '[]', '"str"', '{"a":', '\u0000\u0001', '{}', 'x'.repeat(100_000)]);
    case 2: {
      const b = Buffer.from(text);
      for (let i = 0; i < 3; i++) b[next() % b.length] = next() % 256;
      return b.toString('latin1');
    }
    default:
      return text;
  }
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };
  const set = (k: string, v: string | undefined, keepPercent: number) => {
    if (v !== undefined && chance(keepPercent)) e[k] = v;
  };
  set('CNI_COMMAND', pick(COMMANDS), 97);
  set('CNI_CONTAINERID', pick(IDS), 95);
  set('CNI_NETNS', chance(60) && namespaces.length ? pick(namespaces) : pick(FOREIGN_NETNS), 95);
  set('CNI_IFNAME', pick(IFNAMES), 95);
  set('CNI_ARGS', pick(ARGS), 90);
  set('CNI_PATH', '/opt/cni/bin', 80);
  return e;
}

const byCode: Record<string, number> = {};
const threw: string[] = [];
const internal: string[] = [];
const malformed: string[] = [];
const added = new Map<string, { env: NodeJS.ProcessEnv; stdin: string }>();
const sample = (e: NodeJS.ProcessEnv, s: string) => JSON.stringify({ env: e, stdin: s.slice(0, 300) });

/** A well-formed ADD, DEL or CHECK into one of the lab's namespaces: real creates and destroys between the garbage. */
function wellFormed(): { e: NodeJS.ProcessEnv; s: string } {
  const n = next() % Math.max(1, namespaces.length);
  const e: NodeJS.ProcessEnv = {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: pick(['ADD', 'ADD', 'DEL', 'CHECK']),
    CNI_CONTAINERID: `w${n}`,
    CNI_NETNS: namespaces[n] ?? '',
    CNI_IFNAME: 'eth0',
    CNI_ARGS: `PORTS=[${31100 + n * 10}-${31100 + n * 10 + 9}]`,
  };
  const conf = {
    cniVersion: '1.0.0',
    name: 'fuzz',
    type: 'portmap-isolator',
    resources: 'ports:[31000-32000];ephemeral_ports:[30001-30999]',
    ephemeral_ports_per_container: 16,
    work_dir: workDir,
    lock_timeout_ms: 2000,
  };
  return { e, s: JSON.stringify(conf) };
}

for (let i = 0; i < count; i++) {
  const { e, s } = namespaces.length && chance(10) ? wellFormed() : { e: env(), s: stdin() };
  try {
    const out = await runCni({ env: e, stdin: s });
    let parsed: { code?: number } | undefined;
    try {
      parsed = out.stdout ? (JSON.parse(out.stdout) as { code?: number }) : undefined;
    } catch {
      malformed.push(`not JSON: ${out.stdout.slice(0, 200)} for ${sample(e, s)}`);
    }
    if (out.exitCode !== 0 && out.exitCode !== 1) malformed.push(`exit ${out.exitCode} for ${sample(e, s)}`);
    if (out.exitCode === 1 && typeof parsed?.code !== 'number') malformed.push(`error without a code: ${out.stdout.slice(0, 200)}`);
    const code = out.exitCode === 0 ? 'ok' : String(parsed?.code);
    byCode[code] = (byCode[code] ?? 0) + 1;
    if (code === '999') internal.push(`${out.stdout.trim().slice(0, 400)} for ${sample(e, s)}`);
    if (out.exitCode === 0 && e.CNI_COMMAND === 'ADD') added.set(e.CNI_CONTAINERID!, { env: e, stdin: s });
  } catch (err) {
    threw.push(`${(err as Error).stack ?? String(err)} for ${sample(e, s)}`);
  }
}

// Take down what ADD made, with the invocation that made it (DEL is idempotent; a DEL in the
// stream may have named another interface, and so removed nothing).
const delErrors: string[] = [];
for (const [id, inv] of added) {
  const out = await runCni({ env: { ...inv.env, CNI_COMMAND: 'DEL' }, stdin: inv.stdin });
  if (out.exitCode !== 0) delErrors.push(`${id}: ${out.stdout.trim()}`);
}
console.log(JSON.stringify({ byCode, threw, internal, malformed, added: added.size, delErrors }));
process.exit(0);
