/**
 * The agent's access and its answers to clients (DESIGN.md §5, issue #15 items 2 and 4): the Unix
 * socket (mode, group, stale and live sockets), TCP with basic auth and TLS, the CLI going through
 * the socket, every client mistake a 4xx with JSON, and a seeded fuzz of the HTTP API.
 * The built CLI is spawned as a user would, in a lab (`--netns=<lab host>`).
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type Reply, type Target, request } from '../helpers/http.js';
import { rng } from '../helpers/rng.js';
import { IsolatorLab, sweepStaleLabs, until } from '../../src/lab/index.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'app', 'main.js');
const FIXTURES = join(import.meta.dirname, 'fixtures');
const RESOURCES = '--resources=ports:[31000-32000];ephemeral_ports:[30001-30999]';
const NOBODY = 65534;
let lab: IsolatorLab;
let common: string[];
let scratch: string;
let credsFile: string;
const CREDS = { principal: 'ops', secret: 's3cr3t-Pa55' };
const basic = (p: string, s: string) => `Basic ${Buffer.from(`${p}:${s}`).toString('base64')}`;
const started: ChildProcess[] = [];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The exit code (or signal) of a child, also when it has already exited. */
function exited(p: ChildProcess): Promise<number | string | null> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve(p.exitCode ?? p.signalCode);
  return new Promise((r) => p.once('exit', (code, signal) => r(code ?? signal)));
}

interface Running {
  p: ChildProcess;
  log: () => string;
  socket: string;
  /** host:port of the TCP listener, if any. */
  address?: string;
}

async function startAgent(...extra: string[]): Promise<Running> {
  const p = spawn(process.execPath, [CLI, 'agent', '--log_format=json', '--warm_pool=0', ...extra, ...common], { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(p);
  let log = '';
  p.stderr!.on('data', (d) => (log += d));
  await until(() => log.includes('"agent listening"') || p.exitCode !== null, 20_000);
  const line = log.split('\n').find((l) => l.includes('"agent listening"'));
  if (!line) throw new Error(`the agent did not start: ${log}`);
  const j = JSON.parse(line) as { socket: string; address?: string };
  return { p, log: () => log, socket: j.socket, ...(j.address ? { address: j.address } : {}) };
}

async function stopAgent(a: Running): Promise<void> {
  if (a.p.exitCode === null && a.p.signalCode === null) a.p.kill('SIGTERM');
  expect(await exited(a.p)).toBe(0);
}

/** `agent` run to its end (a refusal at start). */
function agentRefused(...extra: string[]) {
  return cli('agent', '--warm_pool=0', ...extra, ...common);
}

/** Run node code as another user; returns its stdout. */
function asUser(uid: number, gid: number, code: string): string {
  return execFileSync('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', process.execPath, '-e', code], {
    encoding: 'utf8',
    timeout: 20_000,
  }).trim();
}
/** What connecting to a Unix socket as that user gives: 'connected' or the errno code. */
const connectAs = (uid: number, gid: number, path: string) =>
  asUser(
    uid,
    gid,
    `require('net').connect(${JSON.stringify(path)}).on('connect', function () { console.log('connected'); this.destroy(); }).on('error', (e) => console.log(e.code))`,
  );

/** Prometheus samples by name{labels}. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** A pid no process has: a child of ours that exited and was reaped. */
function deadPid(): number {
  const r = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim());
  expect(existsSync(`/proc/${pid}`)).toBe(false);
  return pid;
}

const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());

beforeAll(() => {
  sweepStaleLabs();
  lab = new IsolatorLab();
  common = [`--netns=${lab.lab.host}`, `--work_dir=${lab.workDir}`];
  scratch = mkdtempSync(join(tmpdir(), 'pmi-agent-http-'));
  credsFile = join(scratch, 'credentials.json');
  writeFileSync(credsFile, JSON.stringify({ credentials: [{ principal: 'other', secret: 'x' }, CREDS] }), { mode: 0o600 });
  // The host-level flags, remembered in the work_dir for every later command.
  const r = cli('create', 'first', RESOURCES, '--ephemeral_ports_per_container=16', ...common);
  expect(r.status, r.stderr).toBe(0);
  expect(cli('destroy', 'first', ...common).status).toBe(0);
});

afterEach(async () => {
  for (const p of started.splice(0)) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await exited(p);
    }
  }
});

afterAll(async () => {
  for (const p of started) if (p.exitCode === null) p.kill('SIGKILL');
  if (common) cli('cleanup', ...common);
  await lab?.destroy();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('the Unix socket (the default)', () => {
  it('is <work_dir>/agent.sock, mode 0600: root gets in, another user does not; removed on stop', async () => {
    chmodSync(lab.workDir, 0o711); // so that only the socket's own mode keeps others out
    try {
      const a = await startAgent();
      expect(a.socket).toBe(join(lab.workDir, 'agent.sock'));
      expect(a.address).toBeUndefined(); // no TCP unless asked
      const st = lstatSync(a.socket);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.uid).toBe(0);
      expect((await request({ socketPath: a.socket }, 'GET', '/health')).body).toEqual({ status: 'ok' });
      expect(connectAs(NOBODY, NOBODY, a.socket)).toBe('EACCES');
      expect(connectAs(0, 0, a.socket)).toBe('connected');
      await stopAgent(a);
      expect(existsSync(a.socket)).toBe(false);
    } finally {
      chmodSync(lab.workDir, 0o700);
    }
  });

  it('--socket_group makes it 0660 for that group (and the work_dir searchable by it)', async () => {
    const before = statSync(lab.workDir);
    try {
      const a = await startAgent('--socket_group=nogroup');
      const st = lstatSync(a.socket);
      expect(st.mode & 0o777).toBe(0o660);
      expect(st.gid).toBe(NOBODY);
      expect(connectAs(NOBODY, NOBODY, a.socket)).toBe('connected');
      expect(connectAs(NOBODY, NOBODY - 1, a.socket)).toBe('EACCES');
      // A member of the group speaks HTTP to it.
      const health = asUser(
        NOBODY,
        NOBODY,
        `require('http').get({ socketPath: ${JSON.stringify(a.socket)}, path: '/health' }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(r.statusCode, b)); }).on('error', (e) => console.log(e.code))`,
      );
      expect(health).toBe('200 {"status":"ok"}');
      await stopAgent(a);
      expect(agentRefused('--socket_group=no-such-group-xyz')).toMatchObject({
        status: 2,
        stderr: "portmap-isolator: --socket_group: no such group 'no-such-group-xyz'\n",
      });
    } finally {
      chownSync(lab.workDir, before.uid, before.gid);
      chmodSync(lab.workDir, before.mode & 0o7777);
    }
  });

  it("replaces a dead agent's socket, and refuses to start while a live agent answers on it", async () => {
    const a = await startAgent();
    a.p.kill('SIGKILL');
    await exited(a.p);
    expect(lstatSync(a.socket).isSocket()).toBe(true); // left behind
    const b = await startAgent();
    expect(b.log()).toContain('replaced a stale agent socket');
    expect((await request({ socketPath: b.socket }, 'GET', '/health')).status).toBe(200);
    const c = agentRefused();
    expect(c.status).toBe(1);
    expect(c.stderr).toBe(`portmap-isolator: another agent is serving on ${b.socket}\n`);
    expect((await request({ socketPath: b.socket }, 'GET', '/health')).status).toBe(200); // untouched
    await stopAgent(b);
  });
});

describe('TCP: credentials and TLS', () => {
  it.each([
    [['--listen=127.0.0.1:0'], /^portmap-isolator: --authenticate_http_readwrite: is on for --listen=127\.0\.0\.1:0: give --http_credentials=FILE/],
    [['--listen=127.0.0.1:0', '--authenticate_http_readwrite=true'], /^portmap-isolator: --authenticate_http_readwrite: is on/],
    [
      ['--listen=127.0.0.1:0', '--no-authenticate_http_readwrite', '--authenticate_http_readonly'],
      /^portmap-isolator: --authenticate_http_readonly: needs --http_credentials=FILE$/,
    ],
    [['--http_credentials=/nonexistent'], /^portmap-isolator: --http_credentials: applies to the TCP listener only/],
    [['--authenticate_http_readonly'], /^portmap-isolator: --authenticate_http_readonly: applies to the TCP listener only/],
    [['--listen=127.0.0.1:0', '--http_credentials=/nonexistent/creds.json'], /^portmap-isolator: --http_credentials: cannot read \/nonexistent\/creds\.json/],
    [['--listen=127.0.0.1:0', '--http_credentials=BAD'], /^portmap-isolator: --http_credentials: .*bad\.json: credentials\[0\] needs a non-empty "principal"/],
    [['--listen=127.0.0.1:0', '--http_credentials=CREDS', '--tls_cert=/x'], /^portmap-isolator: --tls_key: needs --tls_cert and --tls_key together$/],
    [
      ['--listen=127.0.0.1:0', '--no-authenticate_http_readwrite=true'],
      /^portmap-isolator: --authenticate_http_readwrite: '--no-authenticate_http_readwrite' takes no value/,
    ],
  ])('agent %j refuses to start: exit 2, one line naming the flag', (args, message) => {
    const bad = join(scratch, 'bad.json');
    writeFileSync(bad, JSON.stringify({ credentials: [{ principal: 'p' }] }));
    const r = agentRefused(...args.map((a) => a.replace('=BAD', `=${bad}`).replace('=CREDS', `=${credsFile}`)));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(existsSync(join(lab.workDir, 'agent.sock'))).toBe(false);
  });

  it('--no-authenticate_http_readwrite serves TCP without credentials, with a warning', async () => {
    const a = await startAgent('--listen=127.0.0.1:0', '--no-authenticate_http_readwrite');
    expect(a.log()).toMatch(/"level":"warn","msg":"--no-authenticate_http_readwrite: anyone who can reach 127\.0\.0\.1:0 can create/);
    const t = { base: `http://${a.address}` };
    expect((await request(t, 'POST', '/containers', { body: JSON.stringify({ id: 'open1' }) })).status).toBe(201);
    expect((await request(t, 'DELETE', '/containers/open1')).status).toBe(204);
    await stopAgent(a);
  });

  it('with --http_credentials: changes need basic auth (401 JSON otherwise), GETs and /health are open, the socket needs none', async () => {
    const a = await startAgent('--listen=127.0.0.1:0', `--http_credentials=${credsFile}`);
    const t = { base: `http://${a.address}` };
    const post = (headers: Record<string, string>, id = 'auth1') =>
      request(t, 'POST', '/containers', { body: JSON.stringify({ id, ports: '[31700-31701]' }), headers });
    const unauthorized = async (r: Reply, error: string) => {
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Basic realm="portmap-isolator"');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.body).toEqual({ error });
    };
    await unauthorized(await post({}), 'authentication required');
    await unauthorized(await post({ authorization: basic(CREDS.principal, 'wrong') }), 'invalid credentials');
    await unauthorized(await post({ authorization: basic('nobody', CREDS.secret) }), 'invalid credentials');
    await unauthorized(await post({ authorization: basic('other', CREDS.secret) }), 'invalid credentials'); // another principal's secret
    await unauthorized(await post({ authorization: 'Basic !!!' }), 'invalid credentials');
    await unauthorized(await post({ authorization: `Bearer ${CREDS.secret}` }), 'invalid credentials');
    await unauthorized(await request(t, 'DELETE', '/containers/nope'), 'authentication required'); // before any lookup
    expect((await request(t, 'GET', '/containers')).body).toEqual([]); // nothing was created
    const ok = await post({ authorization: basic(CREDS.principal, CREDS.secret) });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ id: 'auth1', ports: [[31700, 31701]] });
    expect((await request(t, 'GET', '/containers/auth1')).body).toEqual(ok.body);
    expect((await request(t, 'GET', '/monitor/statistics')).status).toBe(200);
    expect((await request(t, 'GET', '/metrics')).status).toBe(200);
    expect((await request(t, 'GET', '/health')).body).toEqual({ status: 'ok' });
    await unauthorized(await request(t, 'PATCH', '/containers/auth1', { body: '{"ports":"[31700-31702]"}' }), 'authentication required');
    // The socket: its mode is its access control.
    expect((await request({ socketPath: a.socket }, 'PATCH', '/containers/auth1', { body: '{"ports":"[31700-31702]"}' })).status).toBe(200);
    expect((await request(t, 'DELETE', '/containers/auth1', { headers: { authorization: basic(CREDS.principal, CREDS.secret) } })).status).toBe(204);
    await stopAgent(a);
  });

  it('--authenticate_http_readonly: the GETs need credentials too, /health never does', async () => {
    const a = await startAgent('--listen=127.0.0.1:0', `--http_credentials=${credsFile}`, '--authenticate_http_readonly');
    const t = { base: `http://${a.address}` };
    const auth = { authorization: basic(CREDS.principal, CREDS.secret) };
    for (const path of ['/containers', '/monitor/statistics', '/metrics', '/containers/x']) {
      const r = await request(t, 'GET', path);
      expect([path, r.status, r.body]).toEqual([path, 401, { error: 'authentication required' }]);
      expect((await request(t, 'HEAD', path)).status).toBe(401);
      expect((await request(t, 'GET', path, { headers: auth })).status).toBe(path === '/containers/x' ? 404 : 200);
    }
    expect((await request(t, 'GET', '/health')).status).toBe(200);
    expect((await request(t, 'HEAD', '/health')).status).toBe(200);
    await stopAgent(a);
  });

  it('--tls_cert/--tls_key: HTTPS with a self-signed certificate', async () => {
    // A P-256 certificate for 127.0.0.1 valid until 2126 and two keys, made once with openssl
    // (req -x509 -newkey ec … -addext subjectAltName=IP:127.0.0.1; genpkey) so no test needs it.
    const cert = join(FIXTURES, 'tls-cert.pem');
    const key = join(FIXTURES, 'tls-key.pem');
    const ca = readFileSync(cert);
    const a = await startAgent('--listen=127.0.0.1:0', `--http_credentials=${credsFile}`, `--tls_cert=${cert}`, `--tls_key=${key}`);
    expect(a.log()).toMatch(/"msg":"agent listening".*"tls":true/);
    const t = { base: `https://${a.address}`, ca };
    expect((await request(t, 'GET', '/health')).body).toEqual({ status: 'ok' });
    expect((await request(t, 'POST', '/containers', { body: '{"id":"tls1"}' })).status).toBe(401);
    const created = await request(t, 'POST', '/containers', { body: '{"id":"tls1"}', headers: { authorization: basic(CREDS.principal, CREDS.secret) } });
    expect(created.status).toBe(201);
    expect((await request(t, 'DELETE', '/containers/tls1', { headers: { authorization: basic(CREDS.principal, CREDS.secret) } })).status).toBe(204);
    // Without our CA the certificate is refused; plain HTTP gets no answer of ours.
    await expect(request({ base: `https://${a.address}` }, 'GET', '/health')).rejects.toThrow(/self[- ]signed/);
    const plain = await request({ base: `http://${a.address}` }, 'GET', '/health').then(
      (r) => r.status,
      () => 'no answer',
    );
    expect(plain).not.toBe(200);
    await stopAgent(a);
    // A key that does not fit the certificate: exit 2 before anything starts.
    const otherKey = join(FIXTURES, 'tls-other-key.pem');
    const r = agentRefused('--listen=127.0.0.1:0', `--http_credentials=${credsFile}`, `--tls_cert=${cert}`, `--tls_key=${otherKey}`);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^portmap-isolator: --tls_cert: cannot use .* with .*\n$/);
  });
});

describe('the CLI while an agent runs', () => {
  it('create, update, list, stats and destroy go through the socket (the agent counts them)', async () => {
    const a = await startAgent();
    const t: Target = { socketPath: a.socket };
    const metric = async (name: string) => samples((await request(t, 'GET', '/metrics')).text).get(name) ?? 0;
    const creates = 'portmap_isolator_operation_duration_seconds_count{op="create"}';
    const n0 = await metric(creates);
    const c = cli('create', 'viacli', '--ports=[31600-31609]', ...common);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    const info = JSON.parse(c.stdout);
    expect(Object.keys(info)).toEqual(['id', 'netns', 'veth', 'ephemeral_ports', 'ports']);
    expect(await metric(creates)).toBe(n0 + 1);
    expect((await request(t, 'GET', '/containers/viacli')).body).toEqual(info);
    const u = cli('update', 'viacli', '--ports=[31600-31619]', ...common);
    expect(JSON.parse(u.stdout).ports).toEqual([[31600, 31619]]);
    expect(await metric('portmap_isolator_operation_duration_seconds_count{op="update"}')).toBe(1);
    expect(JSON.parse(cli('list', '--json', ...common).stdout)).toEqual((await request(t, 'GET', '/containers')).body);
    const statsBefore = await metric('portmap_isolator_operation_duration_seconds_count{op="stats"}');
    const s = JSON.parse(cli('stats', 'viacli', ...common).stdout);
    expect(s).toHaveLength(1);
    expect(s[0]).toMatchObject({ executor_id: 'viacli', container_id: 'viacli', statistics: { net_ephemeral_ports: info.ephemeral_ports } });
    expect(await metric('portmap_isolator_operation_duration_seconds_count{op="stats"}')).toBe(statsBefore + 1);
    expect(cli('destroy', 'viacli', ...common)).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(await metric('portmap_isolator_operation_duration_seconds_count{op="destroy"}')).toBe(1);
    expect(cli('destroy', 'viacli', ...common)).toMatchObject({ status: 0, stdout: '', stderr: '' }); // 404: a no-op
    // A command giving isolator flags acts directly (the agent would apply its own): not counted.
    const n1 = await metric(creates);
    expect(cli('create', 'direct', '--ports=[31620-31629]', '--ephemeral_ports_per_container=16', ...common)).toMatchObject({ status: 0, stderr: '' });
    expect(await metric(creates)).toBe(n1);
    expect((await request(t, 'GET', '/containers/direct')).status).toBe(200); // the agent sees it all the same
    expect(cli('destroy', 'direct', ...common).status).toBe(0);
    await stopAgent(a);
  });

  it('prints the same output and exits with the same status with or without the agent', async () => {
    const dead = deadPid();
    const holder = cli('create', 'holder', '--ports=[31500-31509]', ...common);
    expect(holder.status).toBe(0);
    const cases: string[][] = [
      ['list', '--json'],
      ['list'],
      ['stats', 'nope'],
      ['update', 'nope', '--ports=[31900-31901]'],
      ['update', 'holder', '--ports=[40000-40001]'],
      ['update', 'holder', '--ports=[31500-'],
      ['destroy', 'nope'],
      ['destroy', 'a/b'],
      ['create', 'holder'],
      ['create', 'x1', '--ports=[40000-40001]'],
      ['create', 'x1', '--ports=[31505-31506]'],
      ['create', 'x1', '--ports=abc'],
      ['create', 'bad!id'],
      ['create', '-bad'],
      ['create', 'x1', '--pid=4194000'],
      ['create', 'x1', `--pid=${pidMax}`],
      ['create', 'x1', `--pid=${dead}`],
      ['create', 'x1', '--cpus=1e400'],
    ];
    const runAll = () => cases.map((c) => ({ args: c.join(' '), ...cli(...c, ...common) }));
    const direct = runAll();
    const a = await startAgent();
    const errorsBefore =
      samples((await request({ socketPath: a.socket }, 'GET', '/metrics')).text).get('portmap_isolator_operation_errors_total{op="create"}') ?? 0;
    const viaAgent = runAll();
    // The refusals the engine makes (not the CLI's own checks) were the agent's: it counted them.
    const errorsAfter =
      samples((await request({ socketPath: a.socket }, 'GET', '/metrics')).text).get('portmap_isolator_operation_errors_total{op="create"}') ?? 0;
    expect(errorsAfter - errorsBefore).toBe(3);
    await stopAgent(a);
    expect(viaAgent).toEqual(direct);
    const byArgs = new Map(direct.map((r) => [r.args, r]));
    expect(byArgs.get('stats nope')).toMatchObject({ status: 1, stderr: 'portmap-isolator: Unknown container nope\n' });
    expect(byArgs.get('destroy nope')).toMatchObject({ status: 0, stdout: '', stderr: '' });
    expect(byArgs.get('create x1 --ports=[40000-40001]')!.status).toBe(1);
    expect(byArgs.get('create x1 --ports=[31505-31506]')).toMatchObject({
      status: 1,
      stderr: 'portmap-isolator: ports [31505-31506] are already held by another container\n',
    });
    expect(byArgs.get('create x1 --ports=abc')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^portmap-isolator: --ports: invalid ports/) });
    expect(byArgs.get('create bad!id')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^portmap-isolator: ID: invalid container id/) });
    expect(byArgs.get('create -bad')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^portmap-isolator: -bad: unknown flag/) });
    expect(byArgs.get('create x1 --pid=4194000')).toMatchObject({
      status: 2,
      stderr: `portmap-isolator: --pid: must be an integer in 1..${pidMax - 1} (pid_max is ${pidMax}), got 4194000\n`,
    });
    expect(byArgs.get(`create x1 --pid=${dead}`)).toMatchObject({ status: 2, stderr: `portmap-isolator: --pid: no process ${dead}\n` });
    for (const r of direct) expect(r.stderr.split('\n').filter(Boolean).length, r.args).toBeLessThanOrEqual(1);
    expect(cli('destroy', 'holder', ...common).status).toBe(0);
  });
});

describe('client errors: a 4xx with JSON, never a 5xx', () => {
  let a: Running;
  let t: Target;
  const error = async (method: string, path: string, body: string | undefined, status: number, match: RegExp, field?: string) => {
    const r = await request(t, method, path, body !== undefined ? { body } : {});
    expect([method, path, body, r.status]).toEqual([method, path, body, status]);
    expect(r.headers['content-type']).toBe('application/json');
    expect(r.body.error).toMatch(match);
    if (field !== undefined) expect(r.body.field).toBe(field);
    return r;
  };

  it('answers malformed paths, bad pids, unknown fields, oversize bodies, HEAD and 405 as it should', async () => {
    a = await startAgent();
    t = { socketPath: a.socket };
    // Malformed percent-encodings (decodeURIComponent throws on them).
    for (const method of ['GET', 'PATCH', 'DELETE']) {
      for (const seg of ['%ZZ', '%', '%E0%A4%A', '%C3%28'])
        await error(method, `/containers/${seg}`, method === 'PATCH' ? '{"ports":"[31000]"}' : undefined, 400, /malformed percent-encoding/);
    }
    await error('GET', '/containers/a%2Fb', undefined, 404, /Unknown container a\/b/);
    await error('DELETE', '/containers/a%2Fb', undefined, 400, /invalid container id/);
    // Absurd, fractional, non-numeric and missing pids: 400 naming pid, before anything is built.
    const range = new RegExp(`^body\\.pid must be an integer in 1\\.\\.${pidMax - 1}`);
    for (const pid of ['4194000', '1e300', '9007199254740993', '0', '-1', '1.5', '"12"', 'null', '[]', String(pidMax)]) {
      await error('POST', '/containers', `{"id":"p1","pid":${pid}}`, 400, range, 'pid');
    }
    const dead = deadPid();
    await error('POST', '/containers', JSON.stringify({ id: 'p1', pid: dead }), 400, new RegExp(`^body\\.pid no process ${dead}$`), 'pid');
    // Unknown and mistyped fields.
    await error('POST', '/containers', '{"id":"u1","port":"[31000]"}', 400, /^unknown field "port" in the body/, 'port');
    await error('POST', '/containers', '{"id":"u1","__proto__":{"x":1}}', 400, /^unknown field "__proto__"/, '__proto__');
    await error('PATCH', '/containers/u1', '{"ports":"[31000]","id":"u2"}', 400, /^unknown field "id"/, 'id');
    await error('POST', '/containers', '{"id":7}', 400, /^body\.id must be a string/, 'id');
    await error('POST', '/containers', '{"id":"u1","ports":[31000,31001]}', 400, /^body\.ports must be a string/, 'ports');
    await error('POST', '/containers', '{"id":"u1","cpus":1e999}', 400, /^body\.cpus must be a number/, 'cpus');
    await error('POST', '/containers', '{"id":"u1"', 400, /^malformed JSON/);
    // An oversize body: read to its end, then a 413 that reaches the client, connection closed.
    for (const chunked of [false, true]) {
      const r = await request(t, 'POST', '/containers', { body: JSON.stringify({ id: 'big', ports: ' '.repeat(200_000) }), chunked });
      expect(r.status).toBe(413);
      expect(r.headers.connection).toBe('close');
      expect(r.body).toEqual({ error: 'request body over 65536 bytes' });
    }
    // HEAD on every GET route; 405 with Allow.
    for (const path of ['/health', '/containers', '/monitor/statistics', '/metrics']) {
      const r = await request(t, 'HEAD', path);
      expect([path, r.status, r.text]).toEqual([path, 200, '']);
      expect(Number(r.headers['content-length'])).toBeGreaterThan(0);
    }
    expect((await request(t, 'HEAD', '/containers/nope')).status).toBe(404);
    // HEAD on a container: GET's status and length, no body.
    expect((await request(t, 'POST', '/containers', { body: '{"id":"h1"}' })).status).toBe(201);
    const [get, head] = [await request(t, 'GET', '/containers/h1'), await request(t, 'HEAD', '/containers/h1')];
    expect([head.status, head.text, head.headers['content-length']]).toEqual([200, '', String(Buffer.byteLength(get.text))]);
    expect((await request(t, 'DELETE', '/containers/h1')).status).toBe(204);
    const allow: Array<[string, string, string]> = [
      ['PUT', '/containers', 'GET, HEAD, POST'],
      ['DELETE', '/health', 'GET, HEAD'],
      ['POST', '/metrics', 'GET, HEAD'],
      ['PATCH', '/monitor/statistics', 'GET, HEAD'],
      ['POST', '/containers/x', 'GET, HEAD, PATCH, DELETE'],
      ['OPTIONS', '/containers/x', 'GET, HEAD, PATCH, DELETE'],
    ];
    for (const [method, path, header] of allow) {
      const r = await error(method, path, undefined, 405, /is not allowed on/);
      expect(r.headers.allow).toBe(header);
    }
    await error('GET', '/nowhere', undefined, 404, /^no such endpoint/);
    // What the HTTP parser itself rejects is answered in JSON too.
    const raw = (data: string) =>
      new Promise<string>((resolve) => {
        let out = '';
        const s = connect(a.socket);
        s.on('data', (d) => (out += d));
        s.on('close', () => resolve(out));
        s.on('error', () => resolve(out));
        s.end(data);
      });
    expect(await raw('BREW /health HTTP/1.1\r\n\r\n')).toMatch(
      /^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n\{"error":"malformed request \(HPE_INVALID_METHOD\)"\}$/,
    );
    // A body declared far over the limit is refused before it is read: 413 JSON, connection closed.
    expect(await raw('POST /containers HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: 20000000\r\n\r\n{')).toMatch(
      /^HTTP\/1\.1 413 [^]*connection: close[^]*\r\n\r\n\{"error":"request body over 65536 bytes"\}$/i,
    );
    expect(await raw(`GET /health HTTP/1.1\r\nx: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(
      /^HTTP\/1\.1 431 [^]*\{"error":"malformed request \(HPE_HEADER_OVERFLOW\)"\}$/,
    );
    expect((await request(t, 'GET', '/health')).body).toEqual({ status: 'ok' });
    expect(a.log()).not.toContain('"level":"error"');
    await stopAgent(a);
  });
});

describe('fuzz: 10^4 generated requests', () => {
  it('never a 5xx, never a crash, JSON errors, /health answers throughout, state as the answers say', async () => {
    const SEED = 0x15c0ffee;
    const next = rng(SEED);
    const int = (n: number) => next() % n;
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const chance = (p: number) => next() / 2 ** 32 < p;
    const a = await startAgent('--listen=127.0.0.1:0', `--http_credentials=${credsFile}`);
    const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    const viaSocket: Target = { socketPath: a.socket, agent: keepAlive };
    const viaTcp: Target = { base: `http://${a.address}`, agent: new HttpAgent({ keepAlive: true, maxSockets: 1 }) };
    const POOL = ['fz0', 'fz1', 'fz2', 'fz3', 'fz4'];
    const live = new Set<string>();
    let createBudget = 150; // containers really created, at most

    const segChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@";
    const encodings = ['%ZZ', '%', '%2', '%2F', '%00', '%C3%28', '%E2%82%AC', '%25', '%FF', '%0A', '%20', '%E0%A4%A', '%2e%2e'];
    const segment = (): string => {
      switch (int(4)) {
        case 0:
          return pick(POOL);
        case 1:
          return Array.from({ length: 1 + int(12) }, () => (chance(0.3) ? pick(encodings) : segChars[int(segChars.length)])).join('');
        case 2:
          return pick(encodings) + pick(POOL);
        default:
          return 'x'.repeat(1 + int(400));
      }
    };
    const path = (): string => {
      const base = pick([
        '/containers',
        '/containers/SEG',
        '/containers/SEG',
        '/monitor/statistics',
        '/metrics',
        '/health',
        '/',
        '/nowhere',
        '/containers/SEG/more',
        '//containers',
        '/containers/',
        '/monitor',
        '/SEG',
        '/health/',
      ]);
      let p = base.replace('SEG', segment());
      if (chance(0.1)) p += pick(['?x=1', '?%ZZ', '?a=b&c', '#frag', '?', '?id=fz0']);
      return p;
    };
    // pids that no process can have: out of range, or not integers (never a plausible live pid).
    const badPids = [
      '0',
      '-1',
      '1.5',
      '4194000',
      '4194304',
      '1e300',
      '-1e300',
      '9007199254740993',
      String(2 ** 53 + 1),
      String(pidMax),
      String(pidMax + 1),
      '"12"',
      'null',
      '[]',
      '{}',
      'true',
      '1e999',
    ];
    const value = (): string =>
      pick(['7', '-0', '1e999', '"x"', '""', 'null', 'true', '[]', '{}', '[1,2]', '{"a":{"b":[]}}', `"${'y'.repeat(int(3000))}"`, '"\\u0000"', '"\\ud800"']);
    const ports = (): string => {
      if (chance(0.6)) {
        const b = 31000 + int(990);
        return JSON.stringify(`[${b}-${b + int(8)}]`);
      }
      return pick([
        '"abc"',
        '"[31000-"',
        '"[2-1]"',
        '"[0-5]"',
        '"[65536]"',
        '"[99999999999999999999]"',
        '"[40000-40001]"',
        '"[]"',
        '"31000-31001"',
        '"[31000-31001,31001-31002]"',
        '31000',
        value(),
      ]);
    };
    const body = (): string => {
      switch (int(10)) {
        case 0:
          return pick([
            '{',
            '{"id":',
            'nul',
            '[1,2',
            '"str"',
            '42',
            'null',
            '[]',
            '{}',
            '',
            ' ',
            '{"id":"fz0",}',
            "{'id':'fz0'}",
            '['.repeat(int(20_000)),
            '\u0000\u00ff',
          ]);
        case 1:
          return Buffer.from(Array.from({ length: int(200) }, () => int(256))).toString('latin1');
        default: {
          const fields: string[] = [];
          // Pool ids only while the budget of real creates lasts (at most 5 live at a time).
          if (chance(0.85))
            fields.push(
              `"id":${chance(0.7) && createBudget > 0 ? JSON.stringify(pick(POOL)) : pick(['"x/../y"', '""', '".a"', `"${'a'.repeat(200)}"`, '"\\u0000"', '7', 'null', 'true', '[]', '{}', '{"a":{"b":[]}}', '1e999'])}`,
            );
          if (chance(0.7)) fields.push(`"ports":${ports()}`);
          if (chance(0.15)) fields.push(`"pid":${pick(badPids)}`);
          if (chance(0.1)) fields.push(`"cpus":${pick(['1', '0.5', '-1', '"x"', '1e309', 'null'])}`);
          if (chance(0.1)) fields.push(`${JSON.stringify(pick(['__proto__', 'constructor', 'x', 'ID', 'port', '']))}:${value()}`);
          return `{${fields.join(',')}}`;
        }
      }
    };
    const authorization = (): string | undefined =>
      pick([
        undefined,
        basic(CREDS.principal, CREDS.secret),
        basic(CREDS.principal, 'nope'),
        basic('', ''),
        'Basic',
        'Basic =',
        `Basic ${'A'.repeat(int(5000))}`,
        'Bearer x',
        basic('other', 'x'),
        'basic ' + Buffer.from('ops:s3cr3t-Pa55').toString('base64'),
      ]);

    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const check = (what: string, r: Reply, method: string) => {
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status >= 500 || r.status < 200) failures.push(`${what} → ${r.status} ${r.text.slice(0, 200)}`);
      if (r.status >= 400 && method !== 'HEAD' && (r.headers['content-type'] !== 'application/json' || typeof r.body?.error !== 'string'))
        failures.push(`${what} → ${r.status} without a JSON error: ${r.text.slice(0, 200)}`);
      if (r.status === 401 && r.headers['www-authenticate'] !== 'Basic realm="portmap-isolator"') failures.push(`${what} → 401 without WWW-Authenticate`);
      if (r.status === 405 && !r.headers.allow) failures.push(`${what} → 405 without Allow`);
    };

    let prev = '';
    const N = 10_000;
    for (let i = 0; i < N && failures.length < 20; i++) {
      // Every 250th input: /health answers, on a fresh connection.
      if (i % 250 === 0) {
        const h = await request({ socketPath: a.socket }, 'GET', '/health');
        if (h.status !== 200 || h.body?.status !== 'ok') failures.push(`#${i}: /health → ${h.status}`);
      }
      const tcp = i % 6 === 5; // a sixth over TCP, where changes need credentials
      const method = pick(['GET', 'GET', 'HEAD', 'POST', 'POST', 'POST', 'PATCH', 'PATCH', 'DELETE', 'DELETE', 'PUT', 'OPTIONS', 'TRACE', 'BREW', 'get']);
      // Mostly a route that takes the method (so bodies reach validation), else anywhere.
      let p = chance(0.6)
        ? method === 'POST'
          ? '/containers'
          : ['PATCH', 'DELETE', 'GET', 'HEAD'].includes(method)
            ? `/containers/${segment()}`
            : path()
        : path();
      let b: string | undefined = ['POST', 'PATCH', 'PUT'].includes(method) || chance(0.05) ? body() : undefined;
      if (chance(0.015)) b = JSON.stringify({ id: pick(POOL), ports: ' '.repeat(65_537 + int(200_000)) }); // oversize
      // A method the parser rejects ends the connection at once: no body to write into it.
      if (method === 'BREW') b = undefined;
      // A valid create of a pool container now and then (most inputs never reach the kernel).
      if (method === 'POST' && chance(0.08) && createBudget > 0) {
        p = '/containers';
        const lo = 31000 + int(990);
        b = JSON.stringify({ id: pick(POOL), ports: `[${lo}-${lo + int(8)}]` });
      }
      const headers: Record<string, string> = {};
      if (tcp) {
        const auth = authorization();
        if (auth !== undefined) headers.authorization = auth;
      }
      if (chance(0.05)) headers['content-type'] = pick(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']);
      const what = `#${i} ${tcp ? 'tcp' : 'unix'} ${method} ${p.slice(0, 80)} ${b === undefined ? '' : b.slice(0, 80)}`;
      let r: Reply;
      try {
        r = await request(tcp ? viaTcp : viaSocket, method, p, { ...(b !== undefined ? { body: b, chunked: chance(0.2) } : {}), headers });
      } catch (e) {
        failures.push(`${what} → no answer: ${(e as Error).message} AFTER ${prev}`);
        continue;
      }
      check(what, r, method);
      prev = `${what} → ${r.status} ${r.headers.connection}`;
      // The model of which pool containers exist, from the answers alone.
      const id = (() => {
        try {
          return method === 'POST' ? (JSON.parse(b ?? '') as { id?: unknown }).id : decodeURIComponent(p.replace(/[?#].*$/, '').replace(/^\/containers\//, ''));
        } catch {
          return undefined;
        }
      })();
      if (method === 'POST' && r.status === 201 && typeof id === 'string') {
        createBudget--;
        live.add(id);
      }
      if (method === 'DELETE' && r.status === 204 && typeof id === 'string') live.delete(id);
    }
    expect(failures).toEqual([]);
    // Still alive and serving; what exists is what the answers said.
    expect(a.p.exitCode).toBeNull();
    expect((await request({ socketPath: a.socket }, 'GET', '/health')).body).toEqual({ status: 'ok' });
    const listed = (await request({ socketPath: a.socket }, 'GET', '/containers')).body as Array<{ id: string }>;
    expect(listed.map((c) => c.id).sort()).toEqual([...live].sort());
    // The inputs did reach every part: validation, auth, the engine, the parser.
    for (const s of [200, 201, 204, 400, 401, 404, 405, 409, 413]) expect(statuses.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
    expect(a.log()).not.toContain('"level":"error"');
    keepAlive.destroy();
    viaTcp.agent!.destroy();
    for (const id of live) expect((await request({ socketPath: a.socket }, 'DELETE', `/containers/${id}`)).status).toBe(204);
    await stopAgent(a);
  });
});
