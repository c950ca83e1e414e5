/**
 * The plugin's inputs: the network configuration on stdin and the CNI_* environment, validated
 * into what the engine takes. Pure: no kernel, no files (except to look at CNI_NETNS).
 *
 * Network configuration (spec 1.0.0 §1, plugin object):
 *
 *   {"cniVersion":"1.0.0","name":"pmi","type":"portmap-isolator",
 *    "resources":"ports:[31000-32000];ephemeral_ports:[32768-57343]",
 *    "ephemeral_ports_per_container":1024, "egress_rate_limit_per_container":"10MB",
 *    "work_dir":"/var/run/portmap-isolator", "capabilities":{"portMappings":true}}
 *
 * Every isolator flag is accepted under its CLI (Mesos) name, with the CLI's validation; byte
 * sizes as strings with units or as numbers of bytes, counts as numbers or digit strings, booleans
 * as booleans or "true"/"false". Plugin-only fields: `work_dir` (absolute; default the CLI's) and
 * `lock_timeout_ms` (how long to wait for the work_dir lock before answering "try again later").
 * A container's non-ephemeral ports come from the `portMappings` capability (hostPort must equal
 * containerPort: containers share the host's IP) and/or `PORTS=[…]` in CNI_ARGS.
 */
import { statSync, statfsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { Netns } from '../netlink/index.js';
import type { IsolatorFlags } from '../isolator/config.js';
import { ISOLATOR_FLAG_NAMES } from '../isolator/config.js';
import { PortSet } from '../isolator/port-set.js';
import { DEFAULT_WORK_DIR, checkContainerId } from '../isolator/state.js';
import { CNI_ERR, CniError } from './errors.js';
import type { CniDns, CniResult, CniVersion } from './result.js';
import { SUPPORTED_VERSIONS, checkResultShape } from './result.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
const COMMANDS: readonly CniCommand[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];
/** The commands about one attachment (the others are about the network). */
export type AttachmentCommand = 'ADD' | 'DEL' | 'CHECK';

/** Fields of a plugin configuration that the spec or its conventions define. */
const STANDARD_FIELDS = new Set([
  'cniVersion',
  'name',
  'type',
  'args',
  'ipMasq',
  'ipam',
  'dns',
  'capabilities',
  'runtimeConfig',
  'prevResult',
  'disableCheck',
  'disableGC',
  'cni.dev/valid-attachments', // GC's input (1.1.0); gc.ts reads it
]);
const PLUGIN_FIELDS = new Set(['work_dir', 'lock_timeout_ms']);

const BOOLEAN_FLAGS = new Set<keyof IsolatorFlags>([
  'egress_unique_flow_per_container',
  'ingress_isolate_existing_containers',
  'network_enable_socket_statistics_summary',
  'network_enable_socket_statistics_details',
  'network_enable_snmp_statistics',
]);
const STRING_FLAGS = new Set<keyof IsolatorFlags>(['resources', 'eth0_name', 'lo_name', 'egress_shaping_placement', 'ipv6', 'egress_flow_classifier_parent']);
const COUNT_FLAGS = new Set<keyof IsolatorFlags>(['ephemeral_ports_per_container']);
/** Flags that take 'auto' besides a byte size. */
const AUTO_FLAGS = new Set<keyof IsolatorFlags>(['egress_rate_per_cpu', 'ingress_rate_per_cpu']);

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

export interface PortMapping {
  hostPort: number;
  containerPort: number;
  protocol: string;
  hostIP?: string;
}

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  flags: IsolatorFlags;
  workDir: string;
  lockTimeoutMs: number;
  portMappings: PortMapping[];
  prevResult: CniResult | undefined;
  dns: CniDns | undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => JSON.stringify(v);
const invalid = (msg: string, details = '') => new CniError(CNI_ERR.INVALID_NETWORK_CONFIG, msg, details);

/** Decode stdin: JSON object (code 6 otherwise). */
export function decodeStdin(text: string): Record<string, unknown> {
  if (text.trim() === '') throw new CniError(CNI_ERR.DECODING_FAILURE, 'no network configuration on stdin');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CniError(CNI_ERR.DECODING_FAILURE, 'the network configuration on stdin is not JSON', (e as Error).message);
  }
  if (!isObject(v)) throw new CniError(CNI_ERR.DECODING_FAILURE, 'the network configuration on stdin is not a JSON object');
  return v;
}

/** The version to answer errors in: the configuration's if it gave one, else 1.0.0. */
export function errorVersion(raw: Record<string, unknown> | undefined): string {
  const v = raw?.cniVersion;
  return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v) ? v : '1.0.0';
}

function flagValue(name: keyof IsolatorFlags, v: unknown): string | number | boolean {
  const bad = (what: string) => invalid(`invalid network configuration: "${name}": ${show(v)} is not ${what}`);
  if (BOOLEAN_FLAGS.has(name)) {
    if (typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    throw bad('a boolean');
  }
  if (STRING_FLAGS.has(name)) {
    if (typeof v !== 'string') throw bad('a string');
    return v;
  }
  if (COUNT_FLAGS.has(name)) {
    if (typeof v === 'number' && Number.isInteger(v) && v > 0) return v;
    if (typeof v === 'string') return v; // the engine's validation names the flag
    throw bad('a positive integer');
  }
  // Byte sizes: '10MB' or a number of bytes.
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw bad('a byte size');
    return `${v}B`;
  }
  if (typeof v === 'string' && (v !== '' || AUTO_FLAGS.has(name))) return v;
  throw bad(AUTO_FLAGS.has(name) ? "a byte size or 'auto'" : 'a byte size');
}

/** Validate a port mapping from the portMappings capability. */
export function parsePortMappings(v: unknown): PortMapping[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw invalid(`invalid network configuration: runtimeConfig.portMappings must be an array, got ${show(v)}`);
  return v.map((m, i) => {
    const where = `runtimeConfig.portMappings[${i}]`;
    if (!isObject(m)) throw invalid(`invalid network configuration: ${where} must be an object, got ${show(m)}`);
    const port = (k: 'hostPort' | 'containerPort') => {
      const p = m[k];
      if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > 65535)
        throw invalid(`invalid network configuration: ${where}.${k} must be a port 1-65535, got ${show(p)}`);
      return p;
    };
    const hostPort = port('hostPort');
    const containerPort = port('containerPort');
    if (hostPort !== containerPort) {
      throw invalid(
        `port mapping ${hostPort}->${containerPort} is not possible: portmap-isolator needs hostPort == containerPort`,
        `${where}: containers share the host's IP address, so a container listens on the host port itself; ask for containerPort ${hostPort} (or hostPort ${containerPort})`,
      );
    }
    const protocol = m.protocol === undefined || m.protocol === '' ? 'tcp' : m.protocol;
    if (typeof protocol !== 'string' || !/^(tcp|udp|sctp)$/i.test(protocol))
      throw invalid(`invalid network configuration: ${where}.protocol ${show(m.protocol)} is not tcp, udp or sctp`);
    const hostIP = m.hostIP;
    if (hostIP !== undefined && typeof hostIP !== 'string')
      throw invalid(`invalid network configuration: ${where}.hostIP must be a string, got ${show(hostIP)}`);
    return { hostPort, containerPort, protocol: protocol.toLowerCase(), ...(hostIP ? { hostIP } : {}) };
  });
}

/** The isolator flags of the configuration; any other field it does not know is an error, as are ipam and ipMasq. */
function pluginFlags(raw: Record<string, unknown>): IsolatorFlags {
  const flagNames = new Set<string>(ISOLATOR_FLAG_NAMES);
  const flags: IsolatorFlags = {};
  for (const [k, v] of Object.entries(raw)) {
    if (flagNames.has(k)) {
      if (v === null) continue;
      (flags as Record<string, unknown>)[k] = flagValue(k as keyof IsolatorFlags, v);
    } else if (!STANDARD_FIELDS.has(k) && !PLUGIN_FIELDS.has(k)) {
      throw new CniError(
        CNI_ERR.UNSUPPORTED_FIELD,
        `unsupported field in network configuration: "${k}": ${show(v)}`,
        `portmap-isolator takes the isolator flags (${ISOLATOR_FLAG_NAMES.join(', ')}), work_dir and lock_timeout_ms`,
      );
    }
  }
  if (raw.ipam !== undefined) {
    throw new CniError(
      CNI_ERR.UNSUPPORTED_FIELD,
      `unsupported field in network configuration: "ipam": ${show(raw.ipam)}`,
      'containers share the host IP address: portmap-isolator allocates no addresses',
    );
  }
  if (raw.ipMasq === true)
    throw new CniError(
      CNI_ERR.UNSUPPORTED_FIELD,
      'unsupported field in network configuration: "ipMasq": true',
      'containers use the host IP address: there is nothing to masquerade',
    );
  return flags;
}

function workDirField(raw: Record<string, unknown>): string {
  let workDir = DEFAULT_WORK_DIR;
  if (raw.work_dir !== undefined) {
    if (typeof raw.work_dir !== 'string' || !isAbsolute(raw.work_dir))
      throw invalid(`invalid network configuration: "work_dir" must be an absolute path, got ${show(raw.work_dir)}`);
    workDir = raw.work_dir;
  }
  return workDir;
}

function lockTimeoutField(raw: Record<string, unknown>): number {
  let lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS;
  if (raw.lock_timeout_ms !== undefined) {
    const t = raw.lock_timeout_ms;
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 600_000)
      throw invalid(`invalid network configuration: "lock_timeout_ms" must be an integer 0-600000, got ${show(t)}`);
    lockTimeoutMs = t;
  }
  return lockTimeoutMs;
}

/** Parse the plugin configuration (everything but the host-dependent checks). */
export function parseNetConf(raw: Record<string, unknown>): NetConf {
  const version = raw.cniVersion;
  if (typeof version !== 'string' || version === '') throw invalid('invalid network configuration: "cniVersion" is missing');
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(version)) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `incompatible CNI version ${version}`, `portmap-isolator supports ${SUPPORTED_VERSIONS.join(', ')}`);
  }
  if (typeof raw.name !== 'string' || raw.name === '') throw invalid('invalid network configuration: "name" is missing');
  if (typeof raw.type !== 'string' || raw.type === '') throw invalid('invalid network configuration: "type" is missing');

  const flags = pluginFlags(raw);
  const workDir = workDirField(raw);
  const lockTimeoutMs = lockTimeoutField(raw);
  if (raw.runtimeConfig !== undefined && !isObject(raw.runtimeConfig))
    throw invalid(`invalid network configuration: "runtimeConfig" must be an object, got ${show(raw.runtimeConfig)}`);
  const portMappings = parsePortMappings((raw.runtimeConfig as Record<string, unknown> | undefined)?.portMappings);

  let prevResult: CniResult | undefined;
  if (raw.prevResult !== undefined && raw.prevResult !== null) {
    try {
      prevResult = checkResultShape(raw.prevResult);
    } catch (e) {
      throw invalid(`invalid network configuration: ${(e as Error).message}`);
    }
  }
  if (raw.dns !== undefined && !isObject(raw.dns)) throw invalid(`invalid network configuration: "dns" must be an object, got ${show(raw.dns)}`);
  return {
    cniVersion: version as CniVersion,
    name: raw.name,
    type: raw.type,
    flags,
    workDir,
    lockTimeoutMs,
    portMappings,
    prevResult,
    dns: raw.dns as CniDns | undefined,
  };
}

/** CNI_ARGS: 'K=V;K2=V2'. PORTS=[…] is ours; other keys need IgnoreUnknown=1 (the convention). */
export function parseCniArgs(text: string | undefined): { ports: PortSet } {
  let ports = PortSet.EMPTY;
  if (!text) return { ports };
  const pairs: Array<[string, string]> = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `invalid CNI_ARGS: ${show(part)} is not KEY=VALUE`);
    pairs.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  const ignoreUnknown = pairs.some(([k, v]) => k === 'IgnoreUnknown' && /^(1|true)$/i.test(v));
  for (const [k, v] of pairs) {
    if (k === 'PORTS') {
      try {
        ports = ports.union(PortSet.parse(v));
      } catch (e) {
        throw new CniError(
          CNI_ERR.INVALID_ENVIRONMENT,
          `invalid CNI_ARGS: PORTS=${v}: ${(e as Error).message}`,
          'PORTS takes ranges like [31000-31009,31020-31029]',
        );
      }
    } else if (k !== 'IgnoreUnknown' && !ignoreUnknown) {
      throw new CniError(
        CNI_ERR.INVALID_ENVIRONMENT,
        `invalid CNI_ARGS: unknown argument ${show(k)}`,
        'portmap-isolator knows PORTS; add IgnoreUnknown=1 to pass others',
      );
    }
  }
  return { ports };
}

/** The container's non-ephemeral ports: the port mappings' host ports and CNI_ARGS PORTS. */
export function containerPorts(mappings: PortMapping[], argPorts: PortSet): PortSet {
  return argPorts.union(PortSet.ofRanges(mappings.map((m) => [m.hostPort, m.hostPort] as [number, number])));
}

export interface CniEnv {
  command: AttachmentCommand;
  containerId: string;
  /** Empty on a DEL without a namespace. */
  netns: string;
  ifname: string;
  args: string | undefined;
  path: string[];
}

const NSFS_MAGIC = 0x6e736673;

/** CNI_COMMAND alone (first: VERSION needs nothing else). */
export function parseCommand(env: NodeJS.ProcessEnv): CniCommand {
  const c = env.CNI_COMMAND;
  if (!c) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, 'CNI_COMMAND is not set', `one of ${COMMANDS.join(', ')}`);
  if (!(COMMANDS as readonly string[]).includes(c))
    throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `CNI_COMMAND ${show(c)} is not supported`, `one of ${COMMANDS.join(', ')}`);
  return c as CniCommand;
}

/**
 * The CNI_* variables of ADD, DEL and CHECK (spec §2). CNI_NETNS must be a network namespace
 * other than the plugin's own (the host); on DEL it may be empty or gone.
 */
export function parseEnv(env: NodeJS.ProcessEnv, command: AttachmentCommand, ownNetns = '/proc/self/ns/net'): CniEnv {
  const bad = (msg: string, details = '') => new CniError(CNI_ERR.INVALID_ENVIRONMENT, msg, details);
  const id = env.CNI_CONTAINERID;
  if (!id) throw bad('CNI_CONTAINERID is not set');
  try {
    checkContainerId(id);
  } catch (e) {
    throw bad(`CNI_CONTAINERID is invalid: ${(e as Error).message}`);
  }
  const ifname = env.CNI_IFNAME;
  if (!ifname) throw bad('CNI_IFNAME is not set');
  if (Buffer.byteLength(ifname) > 15 || ifname === '.' || ifname === '..' || /[/:\s]/.test(ifname)) {
    throw bad(`CNI_IFNAME ${show(ifname)} is not a valid interface name`, 'at most 15 bytes, no "/", ":" or spaces');
  }
  const netns = env.CNI_NETNS ?? '';
  if (command !== 'DEL') {
    if (!netns) throw bad('CNI_NETNS is not set', `${command} needs the container's network namespace`);
    checkNetns(netns, ownNetns);
  } else if (netns && !isAbsolute(netns)) {
    throw bad(`CNI_NETNS ${show(netns)} is not an absolute path`);
  }
  return { command, containerId: id, netns, ifname, args: env.CNI_ARGS, path: (env.CNI_PATH ?? '').split(':').filter(Boolean) };
}

/** CNI_NETNS must name an existing network namespace that is not the host's (ours). */
export function checkNetns(netns: string, ownNetns = '/proc/self/ns/net'): void {
  if (!isAbsolute(netns)) throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `CNI_NETNS ${show(netns)} is not an absolute path`);
  let st;
  try {
    st = statSync(netns);
  } catch (e) {
    throw new CniError(CNI_ERR.UNKNOWN_CONTAINER, `CNI_NETNS ${netns} does not exist`, (e as Error).message);
  }
  let magic: number;
  try {
    magic = statfsSync(netns).type;
  } catch (e) {
    throw new CniError(CNI_ERR.INVALID_ENVIRONMENT, `CNI_NETNS ${netns} cannot be inspected`, (e as Error).message);
  }
  const notNet = () =>
    new CniError(
      CNI_ERR.INVALID_ENVIRONMENT,
      `CNI_NETNS ${netns} is not a network namespace`,
      'expected a pinned namespace (e.g. /run/netns/NAME) or /proc/PID/ns/net',
    );
  if (magic !== NSFS_MAGIC) throw notNet();
  // Other namespaces (uts, mnt, …) live on nsfs too: setns(2) tells a network one apart.
  const ns = Netns.fromPath(netns);
  try {
    ns.run(() => undefined);
  } catch {
    throw notNet();
  } finally {
    ns.close();
  }
  const own = statSync(ownNetns);
  if (own.ino === st.ino && own.dev === st.dev) {
    throw new CniError(
      CNI_ERR.INVALID_ENVIRONMENT,
      `CNI_NETNS ${netns} is the host's own network namespace`,
      'portmap-isolator isolates a container in its own namespace; it never configures the host namespace as a container',
    );
  }
}
