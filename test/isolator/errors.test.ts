/**
 * The isolator's typed errors (issue #14 item 4): each maps, by its type, to one HTTP status
 * (DESIGN.md §5), one CLI exit status (§4) and one CNI code; messages stay word for word; no
 * application maps an error by a regex over its message. No root needed.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CNI_CODE_OF_KIND, CNI_ERR, toCniError } from '../../src/cni/errors.js';
import { HttpError, fieldOf, statusOf } from '../../src/app/http-request.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import type { ErrorKind } from '../../src/isolator/errors.js';
import * as isolator from '../../src/isolator/index.js';
import {
  ConfigError,
  ContainerExistsError,
  EphemeralPortsExhaustedError,
  InterfaceExistsError,
  InvalidContainerIdError,
  InvalidPortsError,
  IsolatorError,
  LockTimeoutError,
  NoFreeFlowError,
  PortmapError,
  PortsHeldError,
  PortsNotManagedError,
  RefusedNamespaceError,
  UnknownContainerError,
  errorReport,
} from '../../src/isolator/errors.js';
import { LockTimeoutError as LockTimeoutFromState, checkContainerId } from '../../src/isolator/state.js';
import { RefusedNamespaceError as RefusedFromTargetNetns } from '../../src/isolator/target-netns.js';
import { UnknownContainerError as UnknownFromEngine } from '../../src/isolator/engine.js';

interface Case {
  error: Error;
  message: string;
  kind: ErrorKind;
  http: number;
  exit: number;
  cni: number;
  field?: string;
  base: 'config' | 'isolator';
}

const CASES: Case[] = [
  {
    error: new ConfigError('resources', 'Ephemeral ports are not specified'),
    message: '--resources: Ephemeral ports are not specified',
    kind: 'config',
    http: 400,
    exit: 2,
    cni: CNI_ERR.INVALID_NETWORK_CONFIG,
    field: 'resources',
    base: 'config',
  },
  {
    error: new ConfigError('eth0_name', 'The public interface eth9 does not exist'),
    message: '--eth0_name: The public interface eth9 does not exist',
    kind: 'config',
    http: 400,
    exit: 2,
    cni: CNI_ERR.INVALID_NETWORK_CONFIG,
    field: 'eth0_name',
    base: 'config',
  },
  {
    error: new RefusedNamespaceError('pid', "pid 1 is in the host's network namespace"),
    message: "--pid: pid 1 is in the host's network namespace",
    kind: 'refused_namespace',
    http: 400,
    exit: 2,
    cni: CNI_ERR.INVALID_ENVIRONMENT,
    field: 'pid',
    base: 'config',
  },
  {
    error: new InvalidPortsError('c1', "cannot parse 'abc'"),
    message: "invalid ports for container c1: cannot parse 'abc'",
    kind: 'invalid_ports',
    http: 400,
    exit: 2,
    cni: CNI_ERR.INVALID_NETWORK_CONFIG,
    field: 'ports',
    base: 'isolator',
  },
  {
    error: new InvalidContainerIdError('-bad'),
    message: `invalid container id "-bad": use 1–128 letters, digits, '_', '.', '-' (not starting with a symbol)`,
    kind: 'invalid_container_id',
    http: 400,
    exit: 2,
    cni: CNI_ERR.INVALID_ENVIRONMENT,
    field: 'id',
    base: 'isolator',
  },
  {
    error: new PortsNotManagedError('[40000-40001]', '[31000-32000]'),
    message: 'Some non-ephemeral ports specified in [40000-40001] are not managed by the isolator (managed: [31000-32000])',
    kind: 'ports_not_managed',
    http: 400,
    exit: 1,
    cni: CNI_ERR.INVALID_NETWORK_CONFIG,
    base: 'isolator',
  },
  {
    error: new PortsHeldError('[31505-31506]'),
    message: 'ports [31505-31506] are already held by another container',
    kind: 'ports_held',
    http: 409,
    exit: 1,
    cni: CNI_ERR.PORTS_UNAVAILABLE,
    base: 'isolator',
  },
  {
    error: new EphemeralPortsExhaustedError(1024, '[32768-34815]', 2),
    message: 'Failed to allocate ephemeral ports: no free block of 1024 ports is left in [32768-34815] (2 containers)',
    kind: 'ephemeral_exhausted',
    http: 409,
    exit: 1,
    cni: CNI_ERR.PORTS_UNAVAILABLE,
    base: 'isolator',
  },
  {
    error: new NoFreeFlowError(2, 65535),
    message: 'no free egress flow is left (flows 2..65535 are taken)',
    kind: 'flows_exhausted',
    http: 409,
    exit: 1,
    cni: CNI_ERR.PORTS_UNAVAILABLE,
    base: 'isolator',
  },
  {
    error: new ContainerExistsError('c1'),
    message: 'container c1 already exists',
    kind: 'container_exists',
    http: 409,
    exit: 1,
    cni: CNI_ERR.ALREADY_EXISTS,
    base: 'isolator',
  },
  {
    error: new InterfaceExistsError('eth0', 'netns /run/netns/x'),
    message: "interface eth0 already exists in netns /run/netns/x: a container's interface must be new",
    kind: 'interface_exists',
    http: 409,
    exit: 1,
    cni: CNI_ERR.ALREADY_EXISTS,
    base: 'isolator',
  },
  {
    error: new UnknownContainerError('nope'),
    message: 'Unknown container nope',
    kind: 'unknown_container',
    http: 404,
    exit: 1,
    cni: CNI_ERR.UNKNOWN_CONTAINER,
    base: 'isolator',
  },
  {
    error: new LockTimeoutError('/w is locked by another portmap-isolator process (waited 100 ms)'),
    message: '/w is locked by another portmap-isolator process (waited 100 ms)',
    kind: 'lock_timeout',
    http: 503,
    exit: 1,
    cni: CNI_ERR.TRY_AGAIN_LATER,
    base: 'isolator',
  },
  {
    error: new IsolatorError('state counters need the work_dir lock'),
    message: 'state counters need the work_dir lock',
    kind: 'failed',
    http: 500,
    exit: 1,
    cni: CNI_ERR.INTERNAL,
    base: 'isolator',
  },
];

describe('typed errors: HTTP status, exit status, CNI code by type', () => {
  it.each(CASES.map((c) => [c.error.name, c] as const))('%s', (_name, c) => {
    const e = c.error;
    expect(e.message).toBe(c.message);
    expect(e).toBeInstanceOf(PortmapError);
    expect(e instanceof ConfigError).toBe(c.base === 'config');
    expect(e instanceof IsolatorError).toBe(c.base === 'isolator');
    expect(errorReport(e)).toEqual({ kind: c.kind, httpStatus: c.http, exitCode: c.exit, ...(c.field !== undefined ? { field: c.field } : {}) });
    expect(statusOf(e)).toBe(c.http);
    expect(fieldOf(e)).toBe(c.field);
    expect(toCniError(e).code).toBe(c.cni);
    expect(CNI_CODE_OF_KIND[c.kind]).toBe(c.cni);
  });

  it('covers every kind, and a 400 names a field exactly when it is an exit-2 error (what the CLI reads from an agent)', () => {
    expect(new Set(CASES.map((c) => c.kind))).toEqual(new Set(Object.keys(CNI_CODE_OF_KIND)));
    for (const c of CASES) expect([c.error.name, c.http === 400 && c.field !== undefined], c.error.name).toEqual([c.error.name, c.exit === 2]);
  });

  it('keeps the names, re-exports and messages callers know', () => {
    expect(new LockTimeoutError('x').name).toBe('LockTimeoutError');
    expect(new LockTimeoutError('x').code).toBe('EAGAIN');
    expect(new UnknownContainerError('x').name).toBe('UnknownContainerError');
    expect(new RefusedNamespaceError('pid', 'x').name).toBe('RefusedNamespaceError');
    expect(LockTimeoutFromState).toBe(LockTimeoutError);
    expect(RefusedFromTargetNetns).toBe(RefusedNamespaceError);
    expect(UnknownFromEngine).toBe(UnknownContainerError);
    for (const c of CASES) expect((isolator as Record<string, unknown>)[c.error.constructor.name], c.error.constructor.name).toBe(c.error.constructor);
    expect(() => checkContainerId('-bad')).toThrow(InvalidContainerIdError);
    expect(new InvalidContainerIdError(7).message).toBe("invalid container id 7: use 1–128 letters, digits, '_', '.', '-' (not starting with a symbol)");
  });

  it('maps by type, not by message: untyped failures are runtime failures (500, exit 1, CNI 999)', () => {
    const lookalikes = [
      new IsolatorError('ports [31000] are already held by another container'),
      new IsolatorError('Failed to allocate ephemeral ports: no free block'),
      new IsolatorError('container c1 already exists'),
      new IsolatorError('invalid ports for container c1: x'),
      new IsolatorError('Some non-ephemeral ports specified in [1] are not managed by the isolator'),
      new IsolatorError('Failed to create container x: RTM_NEWTFILTER: EEXIST: file already exists'),
    ];
    for (const e of lookalikes) {
      expect(errorReport(e), e.message).toEqual({ kind: 'failed', httpStatus: 500, exitCode: 1 });
      expect(statusOf(e)).toBe(500);
      expect(toCniError(e).code).toBe(CNI_ERR.INTERNAL);
    }
    for (const e of [new Error('container c1 already exists'), new NetlinkError(-17, { type: 44, typeName: 'RTM_NEWTFILTER', flags: 0, seq: 1 }), 'a string']) {
      expect(errorReport(e)).toEqual({ kind: 'failed', httpStatus: 500, exitCode: 1 });
      expect(statusOf(e)).toBe(500);
      expect(fieldOf(e)).toBeUndefined();
      expect(toCniError(e).code).toBe(CNI_ERR.INTERNAL);
    }
    expect(statusOf(new HttpError(413, 'too big'))).toBe(413);
    expect(fieldOf(new HttpError(400, 'bad', 'ports'))).toBe('ports');
  });

  it('keeps the CNI messages and details', () => {
    expect(toCniError(new RefusedNamespaceError('netns', "/proc/1/ns/net is in the init process's network namespace")).toJSON('1.0.0')).toEqual({
      cniVersion: '1.0.0',
      code: CNI_ERR.INVALID_ENVIRONMENT,
      msg: "CNI_NETNS: /proc/1/ns/net is in the init process's network namespace",
      details: 'the runtime must give each container a network namespace of its own',
    });
    expect(toCniError(new ConfigError('resources', 'bad')).toJSON('1.0.0')).toEqual({
      cniVersion: '1.0.0',
      code: CNI_ERR.INVALID_NETWORK_CONFIG,
      msg: 'invalid network configuration: "resources": bad',
      details: 'the "resources" field of the network configuration (the CLI\'s --resources)',
    });
    const wrapped = new IsolatorError('Failed to create container x: boom', [new Error('boom'), new Error('cleanup failed')]);
    expect(toCniError(wrapped).toJSON('1.0.0')).toEqual({
      cniVersion: '1.0.0',
      code: CNI_ERR.INTERNAL,
      msg: 'Failed to create container x: boom',
      details: 'cleanup failed',
    });
  });
});

/** Every .ts file under a directory. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('no regex over error messages', () => {
  const root = join(import.meta.dirname, '..', '..');
  /** Exceptions, by file (none left). */
  const KNOWN: Record<string, RegExp> = {};
  const PATTERNS = [
    /\.test\([^;]*\.message\b/, // /re/.test(e.message), /re/.test((e as Error).message)
    /\.test\(\s*(msg|message|text)\s*\)/, // /re/.test(msg)
    /\.message\s*\)?\s*\.(match|matchAll|search|includes|startsWith|endsWith)\(/, // e.message.includes('already')
    /\.exec\([^;]*\.message\b/,
    /\.match\([^;]*\/(already|invalid|not managed|Failed to)/, // message.match(/already/)
  ];

  it('finds none in src/ (apps, CNI plugin, isolator, SDK)', () => {
    const hits: string[] = [];
    for (const file of sources(join(root, 'src'))) {
      const rel = relative(root, file).split('\\').join('/');
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (line.trimStart().startsWith('*') || line.trimStart().startsWith('//')) return;
          if (!PATTERNS.some((p) => p.test(line))) return;
          if (KNOWN[rel]?.test(line)) return;
          hits.push(`${rel}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(hits).toEqual([]);
  });

  it('the mappers use no regex at all over what they map', () => {
    for (const f of ['src/app/http-request.ts', 'src/cni/errors.ts']) {
      const text = readFileSync(join(root, f), 'utf8');
      const body = f.endsWith('errors.ts')
        ? text.slice(text.indexOf('export function toCniError'))
        : text.slice(text.indexOf('export function statusOf'), text.indexOf('export function requestPath'));
      expect(body.length, f).toBeGreaterThan(0);
      expect(/\/[^/\n*]+\/[gimsuy]*\.(test|exec)\(/.test(body), f).toBe(false);
    }
    const cli = readFileSync(join(root, 'src/app/cli.ts'), 'utf8');
    // The exit status comes from the error's own report, never from its text.
    expect(cli).toMatch(/const report = errorReport\(e\);[\s\S]*: report\.exitCode;/);
  });
});
