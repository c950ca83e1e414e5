/** Port sets, aligned blocks, the allocator, byte sizes, rates and flag validation: Mesos' worked examples. */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/isolator/errors.js';
import { PortSet } from '../../src/isolator/port-set.js';
import { blockFromBeginEnd, blockFromBeginMask, formatBlock, portSetBlocks as portBlocks } from '../../src/isolator/port-blocks.js';
import { portBlockRange } from '../../src/tc/index.js';
import { EphemeralPortsAllocator } from '../../src/isolator/allocator.js';
import { formatBytes, parseBytes } from '../../src/isolator/bytes.js';
import { htbConfig } from '../../src/isolator/rates.js';
import { parseConfig } from '../../src/isolator/config.js';
import { parseResources } from '../../src/isolator/resources.js';

const blocks = (text: string) => portBlocks(PortSet.parse(text)).map((b) => `${formatBlock(b)} ${b.mask.toString(16)}`);

describe('port blocks (Mesos §4.2)', () => {
  it.each([
    [
      '[31000-31499]',
      [
        '[31000,31007] fff8',
        '[31008,31039] ffe0',
        '[31040,31103] ffc0',
        '[31104,31231] ff80',
        '[31232,31487] ff00',
        '[31488,31495] fff8',
        '[31496,31499] fffc',
      ],
    ],
    [
      '[31500-32000]',
      [
        '[31500,31503] fffc',
        '[31504,31519] fff0',
        '[31520,31551] ffe0',
        '[31552,31615] ffc0',
        '[31616,31743] ff80',
        '[31744,31999] ff00',
        '[32000,32000] ffff',
      ],
    ],
    [
      '[31000-32000]',
      [
        '[31000,31007] fff8',
        '[31008,31039] ffe0',
        '[31040,31103] ffc0',
        '[31104,31231] ff80',
        '[31232,31743] fe00',
        '[31744,31999] ff00',
        '[32000,32000] ffff',
      ],
    ],
    ['[30016-30031]', ['[30016,30031] fff0']],
    ['[32768-33791]', ['[32768,33791] fc00']],
    ['[8080-8080]', ['[8080,8080] ffff']],
    ['[4-11]', ['[4,7] fffc', '[8,11] fffc']],
  ])('%s', (input, expected) => {
    expect(blocks(input)).toEqual(expected);
  });

  it('covers [1-1023] with 10 blocks, and reaches 65535 without overflow', () => {
    const b = blocks('[1-1023]');
    expect(b).toHaveLength(10);
    expect(b[0]).toBe('[1,1] ffff');
    expect(b[9]).toBe('[512,1023] fe00');
    expect(blocks('[65535-65535]')).toEqual(['[65535,65535] ffff']);
    expect(blocks('[32768-65535]')).toEqual(['[32768,65535] 8000']);
    expect(portBlocks(PortSet.parse('[1-65535]')).reduce((n, x) => n + portBlockRange(x).end - portBlockRange(x).begin + 1, 0)).toBe(65535);
  });

  it('computes blocks per set: adjacent ephemeral and non-ephemeral ports never share a block', () => {
    const ephemeral = PortSet.parse('[32768-32783]');
    const nonEphemeral = PortSet.parse('[32784-32799]');
    expect(portBlocks(ephemeral.union(nonEphemeral)).map(formatBlock)).toEqual(['[32768,32799]']); // Mesos' union bug
    expect([...portBlocks(ephemeral), ...portBlocks(nonEphemeral)].map(formatBlock)).toEqual(['[32768,32783]', '[32784,32799]']);
  });

  it('validates single blocks like RoutingTest.PortRange', () => {
    expect(() => blockFromBeginEnd(1, 0)).toThrow(/'begin' is larger than 'end'/);
    expect(() => blockFromBeginEnd(4, 11)).toThrow(/not size aligned/);
    expect(() => blockFromBeginEnd(4, 10)).toThrow(/The size 7 of \[4,10\] is not a power of 2/);
    expect(blockFromBeginEnd(4, 7).mask).toBe(0xfffc);
    expect(blockFromBeginEnd(10, 10).mask).toBe(0xffff);
    expect(blockFromBeginMask(20, 0xffff)).toEqual({ port: 20, mask: 0xffff });
    expect(blockFromBeginMask(1024, 0xfff8)).toEqual({ port: 1024, mask: 0xfff8 });
    expect(portBlockRange(blockFromBeginMask(1024, 0xfff8))).toEqual({ begin: 1024, end: 1031 });
    expect(blockFromBeginMask(0, 0)).toEqual({ port: 0, mask: 0 });
    expect(portBlockRange(blockFromBeginMask(0, 0))).toEqual({ begin: 0, end: 65535 });
  });
});

describe('port sets', () => {
  it('parses Mesos range syntax, rejects port 0 and ports above 65535', () => {
    expect(PortSet.parse('[31000-31009, 31020-31029]').toString()).toBe('[31000-31009,31020-31029]');
    expect(PortSet.parse('31000-31009').size).toBe(10);
    expect(PortSet.parse('[8080]').toString()).toBe('[8080-8080]');
    expect(PortSet.parse('[]').isEmpty).toBe(true);
    expect(() => PortSet.parse('[0-10]')).toThrow(/out of bounds/);
    expect(() => PortSet.parse('[65530-65536]')).toThrow(/out of bounds/);
    expect(() => PortSet.parse('[10-5]')).toThrow(/begin is larger than end/);
    expect(() => PortSet.parse('[a-b]')).toThrow(/not a port range list/);
  });
  it('does set algebra on half-open intervals and prints Mesos interval sets', () => {
    const a = PortSet.parse('[30001-30999]');
    expect(a.toIntervalString()).toBe('{[30001,31000)}');
    expect(a.subtract(PortSet.parse('[30100-30199]')).toString()).toBe('[30001-30099,30200-30999]');
    expect(a.intersects(PortSet.parse('[30999-31000]'))).toBe(true);
    expect(a.contains(PortSet.parse('[30500-30600]'))).toBe(true);
    expect(PortSet.parse('[1-5,6-10]').toString()).toBe('[1-10]');
  });
});

describe('ephemeral ports allocator (Mesos §4.3)', () => {
  it('first fit, aligned: pool [30001-30999] with 16 per container', () => {
    const a = new EphemeralPortsAllocator(PortSet.parse('[30001-30999]'), 16);
    expect(a.allocate()).toEqual({ begin: 30016, end: 30031 });
    expect(a.allocate()).toEqual({ begin: 30032, end: 30047 });
  });
  it('exhausts with 512 per container after one block (ROOT_TooManyContainers)', () => {
    const a = new EphemeralPortsAllocator(PortSet.parse('[30001-30999]'), 512);
    expect(a.allocate()).toEqual({ begin: 30208, end: 30719 });
    expect(a.allocate()).toBeUndefined();
    expect(a.freeBlocks).toBe(0);
  });
  it('releases and re-allocates; claims specific blocks for recovery without aborting', () => {
    const a = new EphemeralPortsAllocator(PortSet.parse('[32768-33791]'), 256);
    const b1 = a.allocate()!;
    expect(a.freeBlocks).toBe(3);
    expect(a.release(b1.begin, b1.end)).toBe(true);
    expect(a.release(b1.begin, b1.end)).toBe(false);
    expect(a.claim(33024, 33279)).toBe(true);
    expect(a.claim(33024, 33279)).toBe(false);
    expect(a.allocate()).toEqual({ begin: 32768, end: 33023 });
  });
});

describe('bytes', () => {
  it('parses 1024-based units and requires one', () => {
    expect(parseBytes('2000B')).toBe(2000);
    expect(parseBytes('37500KB')).toBe(37500 * 1024);
    expect(parseBytes('1mb')).toBe(1048576);
    expect(parseBytes('12500000000B')).toBe(12_500_000_000);
    expect(() => parseBytes('2000')).toThrow(/invalid bytes '2000'/);
    expect(() => parseBytes('1.5MB')).toThrow(/invalid bytes/);
    expect(formatBytes(1048576)).toBe('1MB');
    expect(formatBytes(1000)).toBe('1000B');
  });
});

describe('HTB configuration (Mesos §5.1)', () => {
  it('scales with cpus between a minimum and a maximum (ScaleEgressWithCPU)', () => {
    const flags = { perCpuBytesPerSec: 1000, minimumBytesPerSec: 2000, maximumBytesPerSec: 4000 };
    expect(htbConfig(flags, 1)?.rateBytesPerSec).toBe(2000);
    expect(htbConfig(flags, 3.1)?.rateBytesPerSec).toBe(3000);
    expect(htbConfig(flags, 5)?.rateBytesPerSec).toBe(4000);
  });
  it('handles 64-bit rates (ScaleEgressWithCPULarge)', () => {
    const flags = { perCpuBytesPerSec: 12_500_000_000 / 64, minimumBytesPerSec: 625_000_000, maximumBytesPerSec: 11_250_000_000 };
    expect(htbConfig(flags, 30)?.rateBytesPerSec).toBe(5_859_375_000);
    expect(htbConfig(flags, 1)?.rateBytesPerSec).toBe(625_000_000);
    expect(htbConfig(flags, 60)?.rateBytesPerSec).toBe(11_250_000_000);
  });
  it('applies the default minimum of 125000 B/s, ceil only above the rate, burst only with a ceil', () => {
    expect(htbConfig({ limitBytesPerSec: 1000 }, undefined)).toEqual({ rateBytesPerSec: 125_000 });
    expect(htbConfig({ limitBytesPerSec: 2000, minimumBytesPerSec: 0 }, undefined)).toEqual({ rateBytesPerSec: 2000 });
    expect(htbConfig({ limitBytesPerSec: 200_000, ceilBytesPerSec: 100_000, burstBytes: 9000 }, undefined)).toEqual({ rateBytesPerSec: 200_000 });
    expect(htbConfig({ limitBytesPerSec: 200_000, ceilBytesPerSec: 400_000, burstBytes: 9000 }, undefined)).toEqual({
      rateBytesPerSec: 200_000,
      ceilBytesPerSec: 400_000,
      burstBytes: 9000,
    });
  });
  it('treats a zero limit as no limit (Mesos clamped it instead)', () => {
    expect(htbConfig({ limitBytesPerSec: 0 }, undefined)).toBeUndefined();
    expect(htbConfig({}, 4)).toBeUndefined();
  });
});

describe('flag validation (Mesos §1.3)', () => {
  const base = { resources: 'ports:[31000-32000];ephemeral_ports:[30001-30999]', ephemeral_ports_per_container: 16 };
  const fails = (flags: object, flag: string, message: RegExp) => {
    let err: unknown;
    try {
      parseConfig({ ...base, ...flags });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).flag).toBe(flag);
    expect((err as ConfigError).message).toMatch(message);
    expect((err as ConfigError).message).toMatch(new RegExp(`^--${flag}: `));
  };
  it('accepts the Mesos test fixture', () => {
    const c = parseConfig({ ...base, resources: `cpus:2;mem:1024;disk:1024;${base.resources}` });
    expect(c.ports.toString()).toBe('[31000-32000]');
    expect(c.ephemeralPorts.toString()).toBe('[30001-30999]');
    expect(c.agentCpus).toBe(2);
  });
  it.each([
    [{ resources: 'ports:[31000-32000]' }, 'resources', /Ephemeral ports are not specified/],
    [
      { resources: 'ports:[30000-31000];ephemeral_ports:[30001-30999]' },
      'resources',
      /ephemeral ports \{\[30001,31000\)\} intersect with the specified non-ephemeral ports \{\[30000,31001\)\}/,
    ],
    [{ resources: 'ephemeral_ports:[512-2047]' }, 'resources', /intersect with well known ports \[0,1024\)/],
    [{ resources: 'ephemeral_ports:[0-2047]' }, 'resources', /out of bounds/],
    [{ resources: 'ephemeral_ports:[30000-70000]' }, 'resources', /out of bounds/],
    [{ resources: 'ports;oops' }, 'resources', /Failed to parse --resources/],
    [{ ephemeral_ports_per_container: 24 }, 'ephemeral_ports_per_container', /\(24\) is not a power of 2/],
    [{ ephemeral_ports_per_container: 8 }, 'ephemeral_ports_per_container', /only 8 ephemeral ports\. The minimum required is: 16/],
    [{ ephemeral_ports_per_container: 2048 }, 'ephemeral_ports_per_container', /given ephemeral ports of size: 999, but asked to allocate 2048/],
    [{ ephemeral_ports_per_container: 'lots' }, 'ephemeral_ports_per_container', /is not a positive integer/],
    [
      { egress_rate_limit_per_container: '1000B', egress_rate_per_cpu: '10B' },
      'egress_rate_per_cpu',
      /Cannot specify both egress_rate_limit_per_container and egress_rate_per_cpu/,
    ],
    [
      { minimum_ingress_rate_limit: '2KB', maximum_ingress_rate_limit: '1KB' },
      'minimum_ingress_rate_limit',
      /Minimum ingress rate limit cannot be greater than maximum ingress rate/,
    ],
    [{ egress_rate_limit_per_container: '1000' }, 'egress_rate_limit_per_container', /invalid bytes '1000'/],
    [{ egress_rate_per_cpu: 'auto' }, 'egress_rate_per_cpu', /CPUs resource has to be specified/],
    [{ egress_flow_classifier_parent: 'banana' }, 'egress_flow_classifier_parent', /Failed to parse egress_flow_classifier_parent/],
    [{ eth0_name: 'a/b' }, 'eth0_name', /not a valid interface name/],
  ])('%j → --%s', (flags, flag, message) => fails(flags, flag, message));
  it('parses resources with roles and ignores other resources', () => {
    const r = parseResources('cpus(*):4;ports(*):[31000-31009];ephemeral_ports:[32768-33791];gpus:0');
    expect([r.cpus, r.ports.toString(), r.ephemeralPorts.toString()]).toEqual([4, '[31000-31009]', '[32768-33791]']);
  });
});
