/** The CNI plugin's pure parts: configuration, environment, CNI_ARGS, results, error mapping. No root needed. */
import { describe, expect, it } from 'vitest';
import { CNI_ERR, CniError, toCniError } from '../../src/cni/errors.js';
import { containerPorts, decodeStdin, errorVersion, parseCniArgs, parseCommand, parseEnv, parseNetConf, parsePortMappings } from '../../src/cni/netconf.js';
import { convertResult, mergeResult } from '../../src/cni/result.js';
import { runCni } from '../../src/cni/plugin.js';
import { UnknownContainerError } from '../../src/isolator/engine.js';
import { ConfigError, EphemeralPortsExhaustedError, IsolatorError, PortsHeldError } from '../../src/isolator/errors.js';
import { LockTimeoutError } from '../../src/isolator/state.js';

const base = { cniVersion: '1.0.0', name: 'pmi', type: 'portmap-isolator' };

function code(fn: () => unknown): number {
  try {
    fn();
  } catch (e) {
    if (e instanceof CniError) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

describe('network configuration', () => {
  it('maps the CLI flag names onto IsolatorFlags, numbers and strings alike', () => {
    const c = parseNetConf({
      ...base,
      resources: 'ports:[31000-32000];ephemeral_ports:[32768-57343]',
      ephemeral_ports_per_container: 512,
      egress_rate_limit_per_container: 125000,
      ingress_rate_limit_per_container: '10MB',
      egress_unique_flow_per_container: 'true',
      work_dir: '/tmp/w',
      lock_timeout_ms: 500,
    });
    expect(c.flags).toEqual({
      resources: 'ports:[31000-32000];ephemeral_ports:[32768-57343]',
      ephemeral_ports_per_container: 512,
      egress_rate_limit_per_container: '125000B',
      ingress_rate_limit_per_container: '10MB',
      egress_unique_flow_per_container: true,
    });
    expect(c.workDir).toBe('/tmp/w');
    expect(c.lockTimeoutMs).toBe(500);
    expect(c.cniVersion).toBe('1.0.0');
  });

  it('defaults work_dir to the CLI default and accepts the standard fields', () => {
    const c = parseNetConf({ ...base, capabilities: { portMappings: true }, args: { cni: {} }, disableCheck: false, dns: { nameservers: ['198.18.0.1'] } });
    expect(c.workDir).toBe('/var/run/portmap-isolator');
    expect(c.dns).toEqual({ nameservers: ['198.18.0.1'] });
  });

  it('refuses bad configurations with the spec codes', () => {
    expect(code(() => parseNetConf({ ...base, cniVersion: '0.3.1' }))).toBe(CNI_ERR.INCOMPATIBLE_VERSION);
    expect(code(() => parseNetConf({ name: 'x', type: 'y' }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, name: '' }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, ephemeral_port_per_container: 16 }))).toBe(CNI_ERR.UNSUPPORTED_FIELD);
    expect(code(() => parseNetConf({ ...base, ipam: { type: 'host-local' } }))).toBe(CNI_ERR.UNSUPPORTED_FIELD);
    expect(code(() => parseNetConf({ ...base, ipMasq: true }))).toBe(CNI_ERR.UNSUPPORTED_FIELD);
    expect(code(() => parseNetConf({ ...base, work_dir: 'relative' }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, egress_unique_flow_per_container: 'yes' }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, egress_rate_limit_per_container: -1 }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, resources: 42 }))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parseNetConf({ ...base, prevResult: { interfaces: [{ name: 'lo' }], ips: [{ address: '1.2.3.4/8', interface: 3 }] } }))).toBe(
      CNI_ERR.INVALID_NETWORK_CONFIG,
    );
    const e = (() => {
      try {
        parseNetConf({ ...base, ephemeral_port_per_container: 16 });
      } catch (err) {
        return err as CniError;
      }
    })()!;
    expect(e.message).toContain('"ephemeral_port_per_container": 16'); // the key and the value, as the spec asks
  });

  it('decodes stdin and answers errors in the configuration version', () => {
    expect(code(() => decodeStdin(''))).toBe(CNI_ERR.DECODING_FAILURE);
    expect(code(() => decodeStdin('{'))).toBe(CNI_ERR.DECODING_FAILURE);
    expect(code(() => decodeStdin('[1]'))).toBe(CNI_ERR.DECODING_FAILURE);
    expect(errorVersion({ cniVersion: '0.4.0' })).toBe('0.4.0');
    expect(errorVersion({ cniVersion: 7 })).toBe('1.0.0');
    expect(errorVersion(undefined)).toBe('1.0.0');
  });
});

describe('port mappings and CNI_ARGS', () => {
  it('takes mappings whose hostPort equals containerPort, any protocol, and PORTS ranges', () => {
    const m = parsePortMappings([
      { hostPort: 31005, containerPort: 31005, protocol: 'tcp' },
      { hostPort: 31005, containerPort: 31005, protocol: 'UDP' },
      { hostPort: 31007, containerPort: 31007 },
    ]);
    expect(m.map((x) => x.protocol)).toEqual(['tcp', 'udp', 'tcp']);
    const ports = containerPorts(m, parseCniArgs('K8S_POD_NAME=x;PORTS=[31010-31019,31030-31031];IgnoreUnknown=1').ports);
    expect(ports.ranges).toEqual([
      [31005, 31005],
      [31007, 31007],
      [31010, 31019],
      [31030, 31031],
    ]);
  });

  it('refuses a mapping to another port with a clear error', () => {
    try {
      parsePortMappings([{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }]);
      throw new Error('accepted');
    } catch (e) {
      expect(e).toBeInstanceOf(CniError);
      expect((e as CniError).code).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
      expect((e as CniError).message).toMatch(/8080->80 .*hostPort == containerPort/);
      expect((e as CniError).details).toMatch(/share the host's IP/);
    }
    expect(code(() => parsePortMappings([{ hostPort: 0, containerPort: 0 }]))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parsePortMappings([{ hostPort: 31000, containerPort: 31000, protocol: 'icmp' }]))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(code(() => parsePortMappings({}))).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
  });

  it('refuses malformed CNI_ARGS and unknown keys without IgnoreUnknown (code 4)', () => {
    expect(code(() => parseCniArgs('PORTS=[x]'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseCniArgs('FOO=1'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseCniArgs('novalue'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(parseCniArgs('FOO=1;IgnoreUnknown=true').ports.isEmpty).toBe(true);
    expect(parseCniArgs(undefined).ports.isEmpty).toBe(true);
  });
});

describe('environment', () => {
  const env = { CNI_CONTAINERID: 'c'.repeat(64), CNI_IFNAME: 'eth0', CNI_NETNS: '' };
  it('needs CNI_COMMAND among ADD, DEL, CHECK, GC, STATUS, VERSION', () => {
    expect(code(() => parseCommand({}))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseCommand({ CNI_COMMAND: 'INIT' }))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(parseCommand({ CNI_COMMAND: 'CHECK' })).toBe('CHECK');
    expect(parseCommand({ CNI_COMMAND: 'GC' })).toBe('GC');
    expect(parseCommand({ CNI_COMMAND: 'STATUS' })).toBe('STATUS');
  });
  it('checks the container id with the engine rule (64-hex runtime ids pass) and the interface name', () => {
    expect(parseEnv(env, 'DEL').containerId).toHaveLength(64);
    expect(code(() => parseEnv({ ...env, CNI_CONTAINERID: '-x' }, 'DEL'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_CONTAINERID: 'x'.repeat(129) }, 'DEL'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_CONTAINERID: '' }, 'DEL'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_IFNAME: 'much-too-long-name' }, 'DEL'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_IFNAME: 'a/b' }, 'DEL'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
  });
  it('DEL may come without a namespace; ADD and CHECK need a real one that is not the host', () => {
    expect(parseEnv(env, 'DEL').netns).toBe('');
    expect(code(() => parseEnv(env, 'ADD'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_NETNS: 'relative' }, 'CHECK'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_NETNS: '/nonexistent/netns' }, 'ADD'))).toBe(CNI_ERR.UNKNOWN_CONTAINER);
    expect(code(() => parseEnv({ ...env, CNI_NETNS: '/etc/hostname' }, 'ADD'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
    expect(code(() => parseEnv({ ...env, CNI_NETNS: '/proc/self/ns/net' }, 'ADD'))).toBe(CNI_ERR.INVALID_ENVIRONMENT);
  });
});

describe('results', () => {
  const a = {
    hostVeth: { name: 'pmi3', mac: '02:00:00:00:00:01' },
    sandbox: { name: 'eth0', mac: '02:00:00:00:00:01', path: '/run/netns/c' },
    address: '198.18.0.2/24',
    gateway: '198.18.0.1',
  };
  it('a 1.0.0 result without prevResult', () => {
    expect(mergeResult('1.0.0', undefined, a)).toEqual({
      cniVersion: '1.0.0',
      interfaces: [
        { name: 'pmi3', mac: '02:00:00:00:00:01' },
        { name: 'eth0', mac: '02:00:00:00:00:01', sandbox: '/run/netns/c' },
      ],
      ips: [{ address: '198.18.0.2/24', gateway: '198.18.0.1', interface: 1 }],
      routes: [{ dst: '0.0.0.0/0', gw: '198.18.0.1' }],
      dns: {},
    });
  });
  it("keeps prevResult's interfaces, ips, routes and dns, and points our IP at our interface", () => {
    const prev = {
      cniVersion: '1.0.0',
      interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', sandbox: '/run/netns/c' }],
      ips: [{ interface: 0, address: '127.0.0.1/8' }],
      routes: [{ dst: '10.0.0.0/8' }],
      dns: { nameservers: ['198.18.0.1'] },
    };
    const r = mergeResult('1.0.0', prev, a);
    expect(r.interfaces!.map((i) => i.name)).toEqual(['lo', 'pmi3', 'eth0']);
    expect(r.ips).toEqual([
      { interface: 0, address: '127.0.0.1/8' },
      { address: '198.18.0.2/24', gateway: '198.18.0.1', interface: 2 },
    ]);
    expect(r.routes).toEqual([{ dst: '10.0.0.0/8' }, { dst: '0.0.0.0/0', gw: '198.18.0.1' }]);
    expect(r.dns).toEqual({ nameservers: ['198.18.0.1'] });
    expect(prev.interfaces).toHaveLength(1); // not modified in place
  });
  it('0.4.0 results carry the ip version, 1.0.0 ones do not', () => {
    const r = mergeResult('0.4.0', { cniVersion: '0.4.0', interfaces: [{ name: 'lo' }], ips: [{ version: '6', address: '::1/128', interface: 0 }] }, a);
    expect(r.cniVersion).toBe('0.4.0');
    expect(r.ips!.map((i) => i.version)).toEqual(['6', '4']);
    expect(convertResult('1.0.0', r).ips!.every((i) => !('version' in i))).toBe(true);
  });
});

describe('errors', () => {
  it('maps engine errors to CNI codes', () => {
    expect(toCniError(new ConfigError('resources', 'bad')).code).toBe(CNI_ERR.INVALID_NETWORK_CONFIG);
    expect(toCniError(new LockTimeoutError('locked')).code).toBe(CNI_ERR.TRY_AGAIN_LATER);
    expect(toCniError(new UnknownContainerError('x')).code).toBe(CNI_ERR.UNKNOWN_CONTAINER);
    expect(toCniError(new PortsHeldError('[31000-31001]')).code).toBe(CNI_ERR.PORTS_UNAVAILABLE);
    expect(toCniError(new EphemeralPortsExhaustedError(1024, '[32768-33791]', 1)).code).toBe(CNI_ERR.PORTS_UNAVAILABLE);
    expect(toCniError(new IsolatorError('Failed to create container x: EEXIST')).code).toBe(CNI_ERR.INTERNAL);
    expect(toCniError(new Error('boom')).code).toBe(CNI_ERR.INTERNAL);
    expect(new CniError(7, 'm', 'd').toJSON('0.4.0')).toEqual({ cniVersion: '0.4.0', code: 7, msg: 'm', details: 'd' });
  });

  it('runCni answers VERSION without a configuration and errors as JSON with exit 1', async () => {
    expect(await runCni({ env: { CNI_COMMAND: 'VERSION' }, stdin: '' })).toEqual({
      stdout: '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n',
      exitCode: 0,
    });
    expect(await runCni({ env: { CNI_COMMAND: 'VERSION' }, stdin: '{"cniVersion":"0.4.0"}' })).toEqual({
      stdout: '{"cniVersion":"0.4.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}\n',
      exitCode: 0,
    });
    const bad = await runCni({ env: { CNI_COMMAND: 'ADD' }, stdin: JSON.stringify({ ...base, cniVersion: '0.4.0' }) });
    expect(bad.exitCode).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ cniVersion: '0.4.0', code: CNI_ERR.INVALID_ENVIRONMENT, msg: 'CNI_CONTAINERID is not set' });
    const nojson = await runCni({ env: { CNI_COMMAND: 'DEL' }, stdin: 'nope' });
    expect(JSON.parse(nojson.stdout).code).toBe(CNI_ERR.DECODING_FAILURE);
  });
});
