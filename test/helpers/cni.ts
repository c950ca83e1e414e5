/**
 * A CNI test bench inside a lab, with no CNI library: the bench is the runtime. It invokes the
 * plugins as the spec says (CNI_* variables, the configuration on stdin, the result on stdout):
 * a conflist's plugins in order for ADD, CHECK, GC and STATUS and in reverse for DEL, each plugin's
 * ADD result as the next one's prevResult, the final result cached for CHECK and DEL as libcni
 * caches it. Our plugin is `node dist/app/main.js` behind a launcher in a private CNI_PATH, next to
 * Debian's reference plugins (loopback, tuning); NETCONFPATH, cache and work_dir are private temp
 * dirs. Everything runs inside the lab's host namespace, so what the plugin does to "the host"
 * happens there. (A real libcni client is test/cni/libcni/run.sh, outside `npm test`.)
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dumpFilters } from '../../src/isolator/engine.js';
import type { ContainerRecord } from '../../src/isolator/state.js';
import { IsolatorLab } from '../../src/lab/index.js';
import type { LabOptions } from '../../src/lab/index.js';
import { Rtnl } from '../../src/rtnl/index.js';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = resolve(here, '..', '..');
export const PLUGIN_TYPE = 'portmap-isolator';
export const REFERENCE_PLUGINS = '/usr/lib/cni';
/** The executable under test (the global setup builds dist/ when it is older than src/). */
export const PLUGIN_MAIN = join(REPO, 'dist', 'app', 'main.js');

/** The executable's other name: the plugin even without CNI_COMMAND (src/app/main.ts). */
export const CNI_NAME = 'portmap-isolator-cni';

/** Throws with what to install when the reference plugins are missing. */
export function requireCniTools(): void {
  if (!existsSync(join(REFERENCE_PLUGINS, 'loopback')))
    throw new Error(`CNI tests need the reference plugins in ${REFERENCE_PLUGINS}: run apt-get install -y containernetworking-plugins`);
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A CNI error as the plugin prints it. */
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
  /** The CNI error on the failing plugin's stdout. */
  error?: CniErrorJson;
}

export interface ClientOptions {
  containerId?: string;
  ifname?: string;
  args?: string;
  /** Capability arguments, e.g. { portMappings: [...] }: given to plugins that declare the capability. */
  capArgs?: Record<string, unknown>;
  /** GC: `cni.dev/valid-attachments`. */
  valid?: Array<{ containerID: string; ifname: string }>;
}

export type Verb = 'add' | 'check' | 'del' | 'gc' | 'status';

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
  readonly iso: IsolatorLab;
  readonly dir = mkdtempSync(join(tmpdir(), 'pmi-cni-'));
  readonly bin = join(this.dir, 'bin');
  readonly netconfDir = join(this.dir, 'net.d');
  readonly cacheDir = join(this.dir, 'cache');
  readonly plugin = join(this.bin, PLUGIN_TYPE);
  private runtimeCount = 0;

  /** `labOptions`: the lab's (IPv6, say). */
  constructor(labOptions: LabOptions = {}) {
    this.iso = new IsolatorLab(undefined, labOptions);
    try {
      for (const d of [this.bin, this.netconfDir, this.cacheDir]) mkdirSync(d, { recursive: true });
      writeFileSync(this.plugin, `#!/bin/sh\nexec ${q(process.execPath)} ${q(PLUGIN_MAIN)} "$@"\n`);
      chmodSync(this.plugin, 0o755);
      symlinkSync(PLUGIN_MAIN, join(this.bin, CNI_NAME)); // run by node (dist/ has no execute bits)
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

  /** One plugin's configuration as a runtime builds it from the conflist (spec §3). */
  private pluginStdin(list: { cniVersion: string; name: string }, plugin: Record<string, unknown>, opts: ClientOptions, prevResult?: unknown): string {
    const conf: Record<string, unknown> = { cniVersion: list.cniVersion, name: list.name, ...plugin };
    const caps = (plugin.capabilities ?? {}) as Record<string, boolean>;
    const runtimeConfig = Object.fromEntries(Object.entries(opts.capArgs ?? {}).filter(([k]) => caps[k]));
    if (Object.keys(runtimeConfig).length) conf.runtimeConfig = runtimeConfig;
    if (prevResult !== undefined) conf.prevResult = prevResult;
    if (opts.valid) conf['cni.dev/valid-attachments'] = opts.valid;
    return JSON.stringify(conf);
  }

  /**
   * What a runtime does for `verb` on network `net` (a conflist in NETCONFPATH): ADD caches the
   * final result, CHECK and DEL pass it as prevResult, DEL drops it. Stops at the first plugin
   * that fails and returns its run.
   */
  async cni(verb: Verb, net: string, netns?: string, opts: ClientOptions = {}): Promise<Run> {
    const list = JSON.parse(readFileSync(join(this.netconfDir, `${net}.conflist`), 'utf8')) as {
      cniVersion: string;
      name: string;
      plugins: Array<Record<string, unknown>>;
    };
    const ifname = opts.ifname ?? 'eth0';
    const id = opts.containerId ?? 'cni-bench';
    const env: Record<string, string> = { CNI_COMMAND: verb.toUpperCase(), CNI_PATH: this.bin };
    if (verb !== 'gc' && verb !== 'status') Object.assign(env, { CNI_CONTAINERID: id, CNI_IFNAME: ifname, CNI_NETNS: netns ?? '' });
    if (opts.args && verb !== 'gc' && verb !== 'status') env.CNI_ARGS = opts.args;
    const cache = this.cacheFile(net, id, ifname);
    const cached = existsSync(cache) ? (JSON.parse(readFileSync(cache, 'utf8')) as { result: unknown }).result : undefined;
    const plugins = verb === 'del' ? [...list.plugins].reverse() : list.plugins;
    let prev: unknown = verb === 'add' ? undefined : cached;
    let last: Run = { status: 0, stdout: '', stderr: '' };
    for (const plugin of plugins) {
      last = await this.exec(env, this.pluginStdin(list, plugin, opts, verb === 'gc' || verb === 'status' ? undefined : prev), String(plugin.type));
      if (last.status !== 0) return last;
      if (verb === 'add') prev = last.json;
    }
    if (verb === 'add') {
      mkdirSync(dirname(cache), { recursive: true });
      writeFileSync(cache, JSON.stringify({ kind: 'cniCacheV1', result: prev }));
    }
    if (verb === 'del') rmSync(cache, { force: true });
    return last;
  }

  /**
   * Exec a plugin (ours by default; CNI_NAME: ours as `portmap-isolator-cni`) inside the lab host
   * with exactly these CNI_* variables and stdin; `args` on its command line.
   */
  async exec(env: Record<string, string>, stdin: string, type = PLUGIN_TYPE, args: string[] = []): Promise<Run> {
    const path = process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
    const cmd = type === CNI_NAME ? [process.execPath, join(this.bin, type)] : [join(this.bin, type)];
    const r = await run('ip', ['netns', 'exec', this.lab.host, ...cmd, ...args], { PATH: path, ...env }, stdin, 60_000);
    const out: Run = { ...r, json: parseJson(r.stdout) };
    if (r.status !== 0 && out.json && typeof out.json.code === 'number') out.error = out.json;
    return out;
  }

  /** The cache file of one attachment (libcni's layout). */
  cacheFile(net: string, containerId: string, ifname = 'eth0'): string {
    return join(this.cacheDir, 'results', `${net}-${containerId}-${ifname}`);
  }

  async destroy(): Promise<void> {
    await this.iso.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The host-side traces of a container: its veth and its port filters on the host's eth0/lo. */
export async function hostTraces(hostNs: string, rec: ContainerRecord): Promise<{ veth: boolean; filters: number }> {
  const r = Rtnl.open(hostNs);
  try {
    const veth = (await r.links.find(rec.vethIndex)) !== undefined;
    let filters = 0;
    for (const dev of ['eth0', 'lo'] as const) {
      const index = (await r.links.get(dev)).index;
      const handles = new Set((await dumpFilters(r.session, index, 0xffff0000)).map((f) => f.handle));
      // Its port filters and its ICMP error filters on that device.
      filters += rec.hostFilters.filter((f) => (f.dev === dev || f.dev === `${dev}Icmp`) && handles.has(f.handle)).length;
    }
    return { veth, filters };
  } finally {
    r.close();
  }
}

/** Delete one of a container's port filters on the host's eth0 (breakage for CHECK and STATUS to find). */
export async function dropHostFilter(hostNs: string, rec: ContainerRecord): Promise<void> {
  const r = Rtnl.open(hostNs);
  try {
    const eth0 = (await r.links.get('eth0')).index;
    const handle = rec.hostFilters.find((h) => h.dev === 'eth0')!.handle;
    const victim = (await dumpFilters(r.session, eth0, 0xffff0000)).find((f) => f.handle === handle)!;
    await r.session.request(victim.deleteRequest);
  } finally {
    r.close();
  }
}
