/**
 * A CNI test bench inside a lab: a real CNI client (the cnitool-compatible one built from
 * Debian's libcni by ../shared/tools/cniclient/build.sh), our plugin behind a launcher script in a
 * private CNI_PATH, Debian's reference plugins beside it, and private NETCONFPATH, cache and
 * work_dir. The client runs inside the lab's host namespace, so everything the plugin does to "the
 * host" happens there. Nothing is installed here: missing tools fail with the apt line to run.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IsolatorLab } from '../../src/lab/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const PLUGIN_TYPE = 'portmap-isolator';
export const REFERENCE_PLUGINS = '/usr/lib/cni';
const LIBCNI = '/usr/share/gocode/src/github.com/containernetworking/cni/libcni';
export const CNI_APT_PACKAGES = 'golang-go golang-github-appc-cni-dev containernetworking-plugins';

/** The cniclient build script, next to the repository (shared/ is a sibling of the checkout). */
function buildScript(): string {
  const candidates = [resolve(REPO, '..', 'shared', 'tools', 'cniclient', 'build.sh'), '/work/shared/tools/cniclient/build.sh'];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the CNI client build script is missing (looked in ${candidates.join(', ')})`);
  return found;
}

/** Throws with what to install when the Go toolchain, libcni or the reference plugins are missing. */
export function requireCniTools(): void {
  const missing: string[] = [];
  if (spawnSync('go', ['version'], { stdio: 'ignore' }).status !== 0) missing.push('go (golang-go)');
  if (!existsSync(LIBCNI)) missing.push(`libcni sources in ${LIBCNI} (golang-github-appc-cni-dev)`);
  if (!existsSync(join(REFERENCE_PLUGINS, 'loopback'))) missing.push(`reference plugins in ${REFERENCE_PLUGINS} (containernetworking-plugins)`);
  if (missing.length) throw new Error(`CNI tests need ${missing.join(', ')}: run apt-get install -y ${CNI_APT_PACKAGES}`);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

interface EsbuildLike {
  buildSync(options: Record<string, unknown>): unknown;
}

/**
 * The launcher libcni executes for `type: portmap-isolator`. src/cni/main.ts (the plugin alone: the
 * installed executable, src/app/main.ts, runs the same cniMain()) bundled into one file with esbuild (already in node_modules, under tsx and vite): node starts it in a fraction of the
 * time tsx needs to load the module graph, which matters with dozens of invocations. The native
 * shim is found from its source location (import.meta.url is pinned to src/netlink/shim.ts, the
 * only module that reads it). Without esbuild: node + tsx on the sources.
 */
function launcher(dir: string): string {
  const main = join(REPO, 'src', 'cni', 'main.ts');
  const require = createRequire(import.meta.url);
  let esbuild: EsbuildLike | undefined;
  try {
    esbuild = require('esbuild') as EsbuildLike;
  } catch {
    esbuild = undefined;
  }
  if (esbuild && process.env.PMI_CNI_LAUNCHER !== 'tsx') {
    const out = join(dir, 'portmap-isolator-cni.mjs');
    esbuild.buildSync({
      entryPoints: [main],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      define: { 'import.meta.url': JSON.stringify(pathToFileURL(join(REPO, 'src', 'netlink', 'shim.ts')).href) },
      logLevel: 'error',
    });
    return `#!/bin/sh\nexec ${q(process.execPath)} ${q(out)} "$@"\n`;
  }
  const tsx = pathToFileURL(require.resolve('tsx')).href;
  return `#!/bin/sh\nexec ${q(process.execPath)} --import ${q(tsx)} ${q(main)} "$@"\n`;
}

/** A CNI error as the client re-emits it (first stderr line) or as the plugin prints it. */
export interface CniErrorJson {
  code: number;
  msg: string;
  details?: string;
  cniVersion?: string;
}

export interface Run {
  status: number;
  stdout: string;
  stderr: string;
  /** Parsed stdout, when it is JSON. */
  json?: any;
  /** The CNI error: from the client's stderr (status 2) or the plugin's stdout. */
  error?: CniErrorJson;
}

export interface ClientOptions {
  containerId?: string;
  ifname?: string;
  args?: string;
  /** Capability arguments, e.g. { portMappings: [...] }. */
  capArgs?: Record<string, unknown>;
}

const parseJson = (s: string): any => {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
};

/** Run a command, asynchronously (so independent runs overlap), capturing everything. */
function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input: string,
  timeoutMs: number,
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const p = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ status: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    p.stdin.end(input);
  });
}

export class CniBench {
  readonly iso = new IsolatorLab();
  readonly dir = mkdtempSync(join(tmpdir(), 'pmi-cni-'));
  readonly bin = join(this.dir, 'bin');
  readonly netconfDir = join(this.dir, 'net.d');
  readonly cacheDir = join(this.dir, 'cache');
  readonly client = join(this.bin, 'cniclient');
  readonly plugin = join(this.bin, PLUGIN_TYPE);
  private runtimeCount = 0;

  constructor() {
    try {
      for (const d of [this.bin, this.netconfDir, this.cacheDir]) mkdirSync(d, { recursive: true });
      execFileSync('bash', [buildScript(), this.client], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 120_000 });
      writeFileSync(this.plugin, launcher(this.dir));
      chmodSync(this.plugin, 0o755);
      for (const p of readdirSync(REFERENCE_PLUGINS)) symlinkSync(join(REFERENCE_PLUGINS, p), join(this.bin, p));
    } catch (e) {
      void this.destroy();
      throw e;
    }
  }

  get lab() {
    return this.iso.lab;
  }
  get workDir(): string {
    return this.iso.workDir;
  }

  /** A runtime-style namespace (`ip netns add`, lab-prefixed so it is swept); returns its path. */
  runtimeNetns(): string {
    return this.lab.path(this.lab.addNamespace(`rt${++this.runtimeCount}`));
  }

  /** Write NETCONFPATH/<name>.conflist with these plugin objects. */
  writeConflist(name: string, plugins: Array<Record<string, unknown>>, cniVersion = '1.0.0'): void {
    writeFileSync(join(this.netconfDir, `${name}.conflist`), JSON.stringify({ cniVersion, name, plugins }, null, 2));
  }

  /** Our plugin object with the lab's work_dir and the Mesos test fixture's flags, plus `extra`. */
  pluginConf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: PLUGIN_TYPE,
      resources: 'cpus:2;mem:1024;ports:[31000-32000];ephemeral_ports:[30001-30999]',
      ephemeral_ports_per_container: 16,
      work_dir: this.workDir,
      capabilities: { portMappings: true },
      ...extra,
    };
  }

  private baseEnv(): NodeJS.ProcessEnv {
    return { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', CNI_PATH: this.bin, NETCONFPATH: this.netconfDir, CNI_CACHEDIR: this.cacheDir };
  }

  /** `cniclient add|check|del NET NETNS` (or `version TYPE`, `validate NET`) inside the lab host. */
  async cni(verb: 'add' | 'check' | 'del' | 'version' | 'validate', net: string, netns?: string, opts: ClientOptions = {}): Promise<Run> {
    const env: NodeJS.ProcessEnv = { ...this.baseEnv() };
    if (opts.containerId) env.CNI_CONTAINERID = opts.containerId;
    if (opts.ifname) env.CNI_IFNAME = opts.ifname;
    if (opts.args) env.CNI_ARGS = opts.args;
    if (opts.capArgs) env.CAP_ARGS = JSON.stringify(opts.capArgs);
    const r = await run('ip', ['netns', 'exec', this.lab.host, this.client, verb, net, ...(netns ? [netns] : [])], env, '', 60_000);
    const out: Run = { ...r, json: parseJson(r.stdout) };
    if (r.status === 2) out.error = parseJson(r.stderr.split('\n')[0] ?? '');
    return out;
  }

  /** Exec the plugin directly (inside the lab host) with exactly these CNI_* variables and stdin. */
  async exec(env: Record<string, string>, stdin: string): Promise<Run> {
    const r = await run('ip', ['netns', 'exec', this.lab.host, this.plugin], { PATH: this.baseEnv().PATH, ...env }, stdin, 60_000);
    const out: Run = { ...r, json: parseJson(r.stdout) };
    if (r.status !== 0 && out.json && typeof out.json.code === 'number') out.error = out.json;
    return out;
  }

  /** The libcni cache file of one attachment. */
  cacheFile(net: string, containerId: string, ifname = 'eth0'): string {
    return join(this.cacheDir, 'results', `${net}-${containerId}-${ifname}`);
  }

  async destroy(): Promise<void> {
    await this.iso.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
