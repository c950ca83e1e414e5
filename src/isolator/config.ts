import { parseBytes } from './bytes.js';
import { ConfigError } from './errors.js';
import { PortSet } from './port-set.js';
import { DEFAULT_MINIMUM_RATE_BYTES_PER_SEC } from './rates.js';
import { parseResources } from './resources.js';

/**
 * The isolator's flags, under Mesos' names and with Mesos' meaning (DESIGN.md §4). Byte values
 * are strings with units ('125000B', '10MB'); the CLI passes them through as given.
 */
export interface IsolatorFlags {
  resources?: string;
  ephemeral_ports_per_container?: number | string;
  eth0_name?: string;
  lo_name?: string;
  egress_rate_limit_per_container?: string;
  egress_rate_per_cpu?: string;
  minimum_egress_rate_limit?: string;
  maximum_egress_rate_limit?: string;
  egress_ceil_limit?: string;
  egress_burst?: string;
  egress_shaping_placement?: string;
  ipv6?: string;
  egress_unique_flow_per_container?: boolean;
  egress_flow_classifier_parent?: string;
  ingress_rate_limit_per_container?: string;
  ingress_rate_per_cpu?: string;
  minimum_ingress_rate_limit?: string;
  maximum_ingress_rate_limit?: string;
  ingress_ceil_limit?: string;
  ingress_burst?: string;
  ingress_isolate_existing_containers?: boolean;
  network_link_speed?: string;
  network_enable_socket_statistics_summary?: boolean;
  network_enable_socket_statistics_details?: boolean;
  network_enable_snmp_statistics?: boolean;
}

/** Mesos' agent defaults, with an ephemeral pool that leaves the host 57344–60999. */
export const DEFAULT_RESOURCES = 'ports:[31000-32000];ephemeral_ports:[32768-57343]';
export const DEFAULT_EPHEMERAL_PORTS_PER_CONTAINER = 1024;
export const MIN_EPHEMERAL_PORTS_PER_CONTAINER = 16;

/** What a flag's value is: how help shows it and how host-config compares two values. */
export type FlagValueKind = 'bytes' | 'rate' | 'boolean' | 'integer' | 'string';

/** One isolator flag for help and `config`: its value, its default (undefined: none) and its meaning. */
export interface IsolatorFlagInfo {
  kind: FlagValueKind;
  /** The placeholder in help, e.g. BYTES. */
  value: string;
  /** The value in effect when the flag is not given; undefined when there is none (the feature is off). */
  default: string | number | boolean | undefined;
  /** What "none" means when there is no default (shown in help and `config`). */
  none?: string;
  help: string;
}

const bytesInfo = (none: string, help: string): IsolatorFlagInfo => ({ kind: 'bytes', value: 'BYTES', default: undefined, none, help });
const boolFlag = (dflt: boolean, help: string): IsolatorFlagInfo => ({ kind: 'boolean', value: '', default: dflt, help });
const MIN_RATE = `none: ${DEFAULT_MINIMUM_RATE_BYTES_PER_SEC}B/s (Mesos' 1 Mbit/s)`;

/**
 * Every isolator flag, in Mesos' order, with its default and meaning (reference
 * mesos-port-mapping.md §1.1). As in Mesos, where they are agent flags, they configure the host:
 * every container on it is built with the same ones (see host-config.ts). Help and `config` are
 * printed from this table only.
 */
export const ISOLATOR_FLAGS: Readonly<Record<keyof IsolatorFlags, IsolatorFlagInfo>> = {
  resources: {
    kind: 'string',
    value: 'RESOURCES',
    default: DEFAULT_RESOURCES,
    help: "Mesos' --resources: 'ports' are the non-ephemeral ports containers may be given, 'ephemeral_ports' the pool cut into per-container blocks (disjoint from ports, none below 1024, clear of the host's ip_local_port_range), 'cpus' the host's CPUs for the 'auto' per-CPU rates",
  },
  ephemeral_ports_per_container: {
    kind: 'integer',
    value: 'N',
    default: DEFAULT_EPHEMERAL_PORTS_PER_CONTAINER,
    help: `size of each container's ephemeral port block: a power of 2, at least ${MIN_EPHEMERAL_PORTS_PER_CONTAINER}`,
  },
  eth0_name: { kind: 'string', value: 'NAME', default: undefined, none: 'the link of the default route', help: "the host's public interface" },
  lo_name: { kind: 'string', value: 'NAME', default: undefined, none: 'the first loopback link', help: "the host's loopback interface" },
  egress_rate_limit_per_container: bytesInfo(
    'no fixed rate',
    'a fixed egress rate (bytes/s) for every container, clamped to the minimum and maximum; 0B: no limit (Mesos: the minimum)',
  ),
  egress_rate_per_cpu: {
    kind: 'rate',
    value: 'BYTES|auto',
    default: undefined,
    none: 'no per-CPU rate',
    help: "egress rate per CPU of the container (--cpus); 'auto': the link speed divided by the host's cpus from --resources",
  },
  minimum_egress_rate_limit: bytesInfo(MIN_RATE, 'lower bound of the egress rate (bytes/s)'),
  maximum_egress_rate_limit: bytesInfo('no upper bound', 'upper bound of the egress rate (bytes/s)'),
  egress_ceil_limit: bytesInfo('no ceil', 'HTB ceil for egress (bytes/s), used when above the rate'),
  egress_burst: bytesInfo('HTB default', 'HTB burst for egress (bytes), used only with a ceil'),
  egress_shaping_placement: {
    kind: 'string',
    value: 'host|container',
    default: 'host',
    help: "where a container's egress limit is enforced: 'host', on the host's side of its veth, out of the container's reach; 'container', on its own eth0 as Mesos did (root in the container can remove it)",
  },
  ipv6: {
    kind: 'string',
    value: 'auto|on|off',
    default: 'auto',
    help: "containers share the host's IPv6 address too: 'auto' when the public interface has a global IPv6 address, 'on' (an error without one), 'off' (IPv6 off in containers, as Mesos)",
  },
  egress_unique_flow_per_container: boolFlag(false, "fq_codel on the public interface's egress, each container its own flow (needs fq_codel)"),
  egress_flow_classifier_parent: {
    kind: 'string',
    value: 'root|X:Y',
    default: 'root',
    help: 'where that fq_codel is attached: root or a qdisc handle in hex',
  },
  ingress_rate_limit_per_container: bytesInfo(
    'no fixed rate',
    'a fixed rate (bytes/s) for traffic toward each container, as --egress_rate_limit_per_container',
  ),
  ingress_rate_per_cpu: {
    kind: 'rate',
    value: 'BYTES|auto',
    default: undefined,
    none: 'no per-CPU rate',
    help: 'ingress rate per CPU of the container, as --egress_rate_per_cpu',
  },
  minimum_ingress_rate_limit: bytesInfo(MIN_RATE, 'lower bound of the ingress rate (bytes/s)'),
  maximum_ingress_rate_limit: bytesInfo('no upper bound', 'upper bound of the ingress rate (bytes/s)'),
  ingress_ceil_limit: bytesInfo('no ceil', 'HTB ceil for ingress (bytes/s), used when above the rate'),
  ingress_burst: bytesInfo('HTB default', 'HTB burst for ingress (bytes), used only with a ceil'),
  ingress_isolate_existing_containers: boolFlag(true, 'may an update add ingress shaping to a running container that has none'),
  network_link_speed: bytesInfo('read from /sys/class/net', "the public link's speed (bytes/s), for the 'auto' per-CPU rates only"),
  network_enable_socket_statistics_summary: boolFlag(false, 'statistics: count TCP connections (active, time-wait)'),
  network_enable_socket_statistics_details: boolFlag(false, 'statistics: TCP round-trip time percentiles'),
  network_enable_snmp_statistics: boolFlag(false, "statistics: the container's /proc/net/snmp counters"),
};

/** The names of every flag above, in the table's order (the CLI's "unknown flag" check, help, `config`). */
export const ISOLATOR_FLAG_NAMES = Object.keys(ISOLATOR_FLAGS) as ReadonlyArray<keyof IsolatorFlags>;

/** Shaping flags of one direction, parsed. `perCpu: 'auto'` is resolved against the link speed. */
export interface DirectionConfig {
  limitBytesPerSec?: number;
  perCpu?: number | 'auto';
  minimumBytesPerSec?: number;
  maximumBytesPerSec?: number;
  ceilBytesPerSec?: number;
  burstBytes?: number;
}

export interface IsolatorConfig {
  /** Managed non-ephemeral ports: containers may only be given ports from here. */
  ports: PortSet;
  /** The pool ephemeral blocks are cut from. */
  ephemeralPorts: PortSet;
  ephemeralPortsPerContainer: number;
  /** The agent's cpus from --resources (for 'auto' per-CPU rates). */
  agentCpus: number | undefined;
  eth0Name: string | undefined;
  loName: string | undefined;
  egress: DirectionConfig;
  ingress: DirectionConfig;
  /** Where egress limits are enforced: on the host (default) or in the container (Mesos). */
  egressShapingPlacement: 'host' | 'container';
  /** IPv6 in containers: 'auto' (when eth0 has a global IPv6 address), 'on' or 'off'. */
  ipv6: Ipv6Mode;
  egressUniqueFlowPerContainer: boolean;
  egressFlowClassifierParent: string;
  ingressIsolateExistingContainers: boolean;
  linkSpeedBytesPerSec: number | undefined;
  socketStatisticsSummary: boolean;
  socketStatisticsDetails: boolean;
  snmpStatistics: boolean;
}

const WELL_KNOWN_PORTS = PortSet.ofRanges([[1, 1023]]);

function bytesFlag(flags: IsolatorFlags, name: keyof IsolatorFlags): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  try {
    return parseBytes(String(v));
  } catch (e) {
    throw new ConfigError(name, (e as Error).message);
  }
}

function direction(flags: IsolatorFlags, dir: 'egress' | 'ingress'): DirectionConfig {
  const fixedName = `${dir}_rate_limit_per_container` as const;
  const perCpuName = `${dir}_rate_per_cpu` as const;
  const cfg: DirectionConfig = {};
  const fixed = bytesFlag(flags, fixedName);
  if (fixed !== undefined) cfg.limitBytesPerSec = fixed;
  const perCpu = flags[perCpuName];
  if (perCpu !== undefined) {
    if (fixed !== undefined) throw new ConfigError(perCpuName, `Cannot specify both ${fixedName} and ${perCpuName}`);
    cfg.perCpu = perCpu === 'auto' ? 'auto' : bytesFlag(flags, perCpuName)!;
  }
  const min = bytesFlag(flags, `minimum_${dir}_rate_limit`);
  const max = bytesFlag(flags, `maximum_${dir}_rate_limit`);
  if (min !== undefined) cfg.minimumBytesPerSec = min;
  if (max !== undefined) cfg.maximumBytesPerSec = max;
  if (min !== undefined && max !== undefined && min > max) {
    throw new ConfigError(`minimum_${dir}_rate_limit`, `Minimum ${dir} rate limit cannot be greater than maximum ${dir} rate`);
  }
  const ceil = bytesFlag(flags, `${dir}_ceil_limit`);
  const burst = bytesFlag(flags, `${dir}_burst`);
  if (ceil !== undefined) cfg.ceilBytesPerSec = ceil;
  if (burst !== undefined) {
    if (burst > 0xffffffff) throw new ConfigError(`${dir}_burst`, 'burst must be below 4GB');
    cfg.burstBytes = burst;
  }
  return cfg;
}

/** --resources: the ports and ephemeral ports (disjoint, none well known) and the CPUs. */
function resourcesFlag(flags: IsolatorFlags): ReturnType<typeof parseResources> {
  let res;
  try {
    res = parseResources(flags.resources ?? DEFAULT_RESOURCES);
  } catch (e) {
    throw new ConfigError('resources', `Failed to parse --resources: ${(e as Error).message}`);
  }
  const { ports, ephemeralPorts } = res;
  if (ephemeralPorts.isEmpty) throw new ConfigError('resources', 'Ephemeral ports are not specified');
  if (ephemeralPorts.intersects(ports)) {
    throw new ConfigError(
      'resources',
      `The specified ephemeral ports ${ephemeralPorts.toIntervalString()} intersect with the specified non-ephemeral ports ${ports.toIntervalString()}`,
    );
  }
  if (ephemeralPorts.intersects(WELL_KNOWN_PORTS)) {
    throw new ConfigError('resources', `The specified ephemeral ports ${ephemeralPorts.toIntervalString()} intersect with well known ports [0,1024)`);
  }
  return res;
}

/** --ephemeral_ports_per_container: a power of 2 no smaller than the minimum that fits the ephemeral ports. */
function ephemeralPortsPerContainer(flags: IsolatorFlags, ephemeralPorts: ReturnType<typeof parseResources>['ephemeralPorts']): number {
  const rawN = flags.ephemeral_ports_per_container ?? DEFAULT_EPHEMERAL_PORTS_PER_CONTAINER;
  const n = typeof rawN === 'number' ? rawN : /^\d+$/.test(rawN) ? Number(rawN) : NaN;
  if (!Number.isInteger(n) || n <= 0 || n > 65536) throw new ConfigError('ephemeral_ports_per_container', `'${rawN}' is not a positive integer`);
  if ((n & (n - 1)) !== 0)
    throw new ConfigError('ephemeral_ports_per_container', `The number of ephemeral ports for each container (${n}) is not a power of 2`);
  if (ephemeralPorts.size < n) {
    throw new ConfigError(
      'ephemeral_ports_per_container',
      `Network Isolator is given ephemeral ports of size: ${ephemeralPorts.size}, but asked to allocate ${n} ephemeral ports for a container`,
    );
  }
  if (n < MIN_EPHEMERAL_PORTS_PER_CONTAINER) {
    throw new ConfigError(
      'ephemeral_ports_per_container',
      `Each container has only ${n} ephemeral ports. The minimum required is: ${MIN_EPHEMERAL_PORTS_PER_CONTAINER}`,
    );
  }
  return n;
}

export type Ipv6Mode = 'auto' | 'on' | 'off';

/** --ipv6: 'auto', 'on' or 'off'. */
function ipv6Mode(flags: IsolatorFlags): Ipv6Mode {
  const v = flags.ipv6 ?? 'auto';
  if (v !== 'auto' && v !== 'on' && v !== 'off') throw new ConfigError('ipv6', `'${v}' is none of 'auto', 'on', 'off'`);
  return v;
}

/** --egress_shaping_placement: 'host' or 'container'. */
function shapingPlacement(flags: IsolatorFlags): 'host' | 'container' {
  const v = flags.egress_shaping_placement ?? 'host';
  if (v !== 'host' && v !== 'container') throw new ConfigError('egress_shaping_placement', `'${v}' is neither 'host' nor 'container'`);
  return v;
}

/** --egress_flow_classifier_parent: 'root' or a handle like 1:0. */
function flowClassifierParent(flags: IsolatorFlags): string {
  const parent = flags.egress_flow_classifier_parent ?? 'root';
  if (parent !== 'root' && !/^[0-9a-f]{1,4}:[0-9a-f]{0,4}$/i.test(parent)) {
    throw new ConfigError(
      'egress_flow_classifier_parent',
      `Failed to parse egress_flow_classifier_parent: '${parent}' is neither 'root' nor a handle like 1:0`,
    );
  }
  return parent;
}

/** --eth0_name and --lo_name, when given, are names the kernel accepts. */
function checkInterfaceNames(flags: IsolatorFlags): void {
  for (const name of ['eth0_name', 'lo_name'] as const) {
    const v = flags[name];
    if (v !== undefined && (v === '' || Buffer.byteLength(v) > 15 || /[/:\s]/.test(v))) throw new ConfigError(name, `'${v}' is not a valid interface name`);
  }
}

/**
 * Parse and validate the flags that do not depend on the host (Mesos §1.3 steps 5–8, 10–12, 14,
 * 15's syntax). Host checks (the host's ip_local_port_range, interfaces, link speed) are done by
 * the engine when it opens the host. Throws ConfigError naming the flag.
 */
export function parseConfig(flags: IsolatorFlags): IsolatorConfig {
  const res = resourcesFlag(flags);
  const { ports, ephemeralPorts } = res;
  const n = ephemeralPortsPerContainer(flags, ephemeralPorts);

  const egress = direction(flags, 'egress');
  const ingress = direction(flags, 'ingress');
  for (const [dir, cfg] of [
    ['egress', egress],
    ['ingress', ingress],
  ] as const) {
    if (cfg.perCpu === 'auto' && !res.cpus) {
      throw new ConfigError(`${dir}_rate_per_cpu`, `CPUs resource has to be specified to determine per CPU ${dir} rate limit`);
    }
  }
  const parent = flowClassifierParent(flags);
  checkInterfaceNames(flags);
  return {
    ports,
    ephemeralPorts,
    ephemeralPortsPerContainer: n,
    agentCpus: res.cpus,
    eth0Name: flags.eth0_name,
    loName: flags.lo_name,
    egress,
    ingress,
    egressShapingPlacement: shapingPlacement(flags),
    ipv6: ipv6Mode(flags),
    egressUniqueFlowPerContainer: flags.egress_unique_flow_per_container ?? false,
    egressFlowClassifierParent: parent,
    ingressIsolateExistingContainers: flags.ingress_isolate_existing_containers ?? true,
    linkSpeedBytesPerSec: bytesFlag(flags, 'network_link_speed'),
    socketStatisticsSummary: flags.network_enable_socket_statistics_summary ?? false,
    socketStatisticsDetails: flags.network_enable_socket_statistics_details ?? false,
    snmpStatistics: flags.network_enable_snmp_statistics ?? false,
  };
}
