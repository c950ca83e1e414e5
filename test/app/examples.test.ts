/**
 * The examples as a user runs them: `npm pack` (from a copy of the package's sources, so the
 * repository's dist/ that other tests spawn is left alone), `npm install` of the tarball into an
 * empty project (npm 11 runs no install script of a dependency, so the N-API prebuild must load
 * as shipped), examples/*.ts compiled there with TypeScript against the installed typings, and
 * each run with node against the installed package. The examples make their own lab namespaces
 * (`pmi-lab-<their pid>-…`) and remove them; the test checks that none is left.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NETNS_RUN_DIR, removeNetns } from '../../src/netlink/index.js';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'pmi-examples-'));
const app = join(tmp, 'app');
const installed = join(app, 'node_modules', 'portmap-isolator');
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts'));
const childPids: number[] = [];
let tarball = '';
let tarFiles: string[] = [];

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
}

/** The lab namespaces left behind by a process. */
function leftBy(pid: number): string[] {
  return readdirSync(NETNS_RUN_DIR).filter((n) => n.startsWith(`pmi-lab-${pid}-`));
}

/** Run a compiled example (or an inline module) in the test project; returns its exit status and output. */
function node(args: string[]): { status: number | null; stdout: string; stderr: string; pid: number } {
  const r = spawnSync(process.execPath, args, { cwd: app, encoding: 'utf8', timeout: 60_000 });
  childPids.push(r.pid);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, pid: r.pid };
}

beforeAll(() => {
  // The package's sources, packed as `npm pack` packs them (prepack: tsc, prebuildify).
  const pkg = join(tmp, 'pkg');
  mkdirSync(pkg);
  for (const f of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'binding.gyp', 'README.md', 'LICENSE', 'src', 'shim']) {
    cpSync(join(root, f), join(pkg, f), { recursive: true });
  }
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
  run('npm', ['pack', '--pack-destination', tmp], pkg);
  tarball = join(
    tmp,
    readdirSync(tmp).find((f) => f.endsWith('.tgz'))!,
  );
  tarFiles = run('tar', ['tzf', tarball], tmp).split('\n').filter(Boolean);

  // An empty project that installs the tarball, as a user would.
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'examples-app', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', tarball], app);

  // The examples, compiled with TypeScript against the installed package's typings.
  for (const f of examples) cpSync(join(root, 'examples', f), join(app, f));
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: false,
        types: ['node'],
        typeRoots: [join(root, 'node_modules', '@types')],
        outDir: 'out',
      },
      files: examples,
    }),
  );
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
}, 900_000);

afterAll(() => {
  for (const pid of childPids) for (const ns of leftBy(pid)) removeNetns(ns);
  rmSync(tmp, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships the compiled entry points, the linux-x64 prebuild, the licence and the shim sources; no build/', () => {
    for (const f of [
      'dist/index.js',
      'dist/index.d.ts',
      'dist/isolator/index.js',
      'dist/cni/index.js',
      'dist/app/main.js',
      'prebuilds/linux-x64/portmap-isolator.node',
      'LICENSE',
      'README.md',
      'package.json',
      'shim/netlink_shim.cc',
      'binding.gyp',
    ]) {
      expect(tarFiles, f).toContain(`package/${f}`);
    }
    expect(tarFiles.filter((f) => f.startsWith('package/build/') || f.startsWith('package/src/') || f.startsWith('package/test/'))).toEqual([]);
    expect(readFileSync(join(installed, 'LICENSE'), 'utf8')).toMatch(
      /Apache License\s+Version 2\.0, January 2004[\s\S]*END OF TERMS AND CONDITIONS[\s\S]*APPENDIX/,
    );
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { os: string[]; cpu: string[]; license: string };
    expect(manifest).toMatchObject({ os: ['linux'], cpu: ['x64'], license: 'Apache-2.0' });
  });

  it('ships no source map, and no compiled file points at one (the .ts sources are not shipped)', () => {
    expect(tarFiles.filter((f) => f.endsWith('.map'))).toEqual([]);
    const js = tarFiles.filter((f) => f.endsWith('.js'));
    expect(js.length).toBeGreaterThan(50);
    for (const f of js) expect(readFileSync(join(installed, f.slice('package/'.length)), 'utf8'), f).not.toContain('sourceMappingURL');
  });

  it('loads its prebuild as installed: npm ran no install script and nothing was compiled', () => {
    expect(existsSync(join(installed, 'build'))).toBe(false);
    const gypBuild = createRequire(join(installed, 'package.json'))('node-gyp-build') as { path(dir: string): string };
    expect(gypBuild.path(installed)).toBe(join(installed, 'prebuilds', 'linux-x64', 'portmap-isolator.node'));
    const r = node(['--input-type=module', '-e', "import { nativeShim } from 'portmap-isolator'; console.log(typeof nativeShim().socket);"]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('function\n');
  });

  it('runs its bins as a shell runs them, through a shebang every env(1) understands', () => {
    const version = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')).version as string;
    const bin = (name: string, args: string[]) => {
      const r = spawnSync(join(app, 'node_modules', '.bin', name), args, { cwd: app, encoding: 'utf8', timeout: 60_000 });
      childPids.push(r.pid);
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    expect(readFileSync(join(installed, 'dist', 'app', 'main.js'), 'utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    expect(bin('portmap-isolator', ['--version'])).toEqual({ status: 0, stdout: `portmap-isolator ${version}\n`, stderr: '' });
    const cni = bin('portmap-isolator-cni', ['--help']);
    expect(cni.stderr).toBe('');
    expect(cni).toMatchObject({ status: 0, stdout: expect.stringContaining('CNI') });
  });

  it('names the path when asked for a namespace that does not exist', () => {
    const code = "import { Rtnl } from 'portmap-isolator'; try { Rtnl.open('pmi-lab-' + process.pid + '-missing'); } catch (e) { console.log(String(e)); }";
    const r = node(['--input-type=module', '-e', code]);
    expect(r.stdout).toBe(`NetnsError: /run/netns/pmi-lab-${r.pid}-missing: no such network namespace (ENOENT)\n`);
  });
});

describe('the examples, run against the installed package', () => {
  it('examples/sdk.ts (the README example) builds its namespaces, a veth pair and an ingress qdisc, and removes them', () => {
    const r = node([join('out', 'sdk.js')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('1: lo mtu 65536 00:00:00:00:00:00 rx 0 bytes');
    expect(lines[1]).toMatch(/^2: v0 mtu 1400 [0-9a-f]{2}(:[0-9a-f]{2}){5} rx 0 bytes$/);
    expect(lines[2]).toBe('qdiscs on v0: noqueue, ingress');
    expect(leftBy(r.pid)).toEqual([]);
  });

  it('examples/netlink-demo.ts decodes the links as `ip` sees them, reports a refusal, and removes its namespace', () => {
    const r = node([join('out', 'netlink-demo.js')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const ns = `pmi-lab-${r.pid}-demo`;
    expect(r.stdout).toContain(`lab namespace ${ns} created`);
    expect(r.stdout).toMatch(/^ {2}1: lo mtu 65536 00:00:00:00:00:00 $/m);
    expect(r.stdout).toMatch(/^ {2}\d+: demo0 mtu 1400 02:00:00:00:00:01 veth$/m);
    expect(r.stdout).toMatch(/^ {2}\d+: demo1 mtu 1500 02:00:00:00:00:02 veth$/m);
    expect(r.stdout).toContain('`ip -j link` agrees: yes');
    expect(r.stdout).toMatch(/^a refused request: RTM_NEWLINK: EOPNOTSUPP: /m);
    expect(r.stdout).toContain(`lab namespace ${ns} removed`);
    expect(r.stdout.trimEnd().endsWith('demo passed')).toBe(true);
    expect(leftBy(r.pid)).toEqual([]);
  });

  it('every example is covered above', () => {
    expect(examples.sort()).toEqual(['netlink-demo.ts', 'sdk.ts']);
  });
});
