/** The stored host configuration (src/isolator/host-config.ts) on its own: comparing, replacing, storing, forgetting. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/isolator/errors.js';
import {
  containersInWorkDir,
  firstDifference,
  forgetHostConfig,
  hostConfigPath,
  readHostConfig,
  resolveHostConfig,
  writeHostConfig,
} from '../../src/isolator/host-config.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pmi-hostcfg-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('firstDifference', () => {
  it('compares bytes by their count, numbers with their text, and an absent flag by its default', () => {
    expect(firstDifference({ egress_rate_limit_per_container: '1MB' }, { egress_rate_limit_per_container: '1024KB' })).toBeUndefined();
    expect(firstDifference({ ephemeral_ports_per_container: '16' }, { ephemeral_ports_per_container: 16 })).toBeUndefined();
    expect(firstDifference({ ephemeral_ports_per_container: '1024', egress_unique_flow_per_container: false }, {})).toBeUndefined();
    expect(firstDifference({ egress_rate_per_cpu: 'auto' }, { egress_rate_per_cpu: 'auto' })).toBeUndefined();
    expect(firstDifference({ lo_name: 'lo', ephemeral_ports_per_container: '32' }, { ephemeral_ports_per_container: 16 })).toEqual({
      flag: 'ephemeral_ports_per_container',
      given: '32',
      stored: 16,
    });
    expect(firstDifference({ eth0_name: 'eth1' }, {})).toEqual({ flag: 'eth0_name', given: 'eth1', stored: undefined });
  });
});

describe('stored configuration', () => {
  it('is written atomically, read back with its time, left alone when unchanged, and forgotten', () => {
    expect(readHostConfig(dir)).toBeUndefined();
    writeHostConfig(dir, { resources: 'ports:[31000-31010];ephemeral_ports:[40000-40999]' });
    const s = readHostConfig(dir)!;
    expect(s).toMatchObject({ path: hostConfigPath(dir), flags: { resources: 'ports:[31000-31010];ephemeral_ports:[40000-40999]' } });
    expect(s.storedAt.getTime()).toBeGreaterThan(Date.now() - 60_000);
    writeFileSync(hostConfigPath(dir), JSON.stringify({ ...s.flags, unknown_key: 1 }));
    expect(readHostConfig(dir)!.flags).toEqual(s.flags);
    forgetHostConfig(dir);
    expect(readHostConfig(dir)).toBeUndefined();
    forgetHostConfig(dir); // twice: a no-op
  });

  it('counts containers and spares by their records', () => {
    mkdirSync(join(dir, 'containers'));
    writeFileSync(join(dir, 'containers', 'a.json'), '{}');
    writeFileSync(join(dir, 'containers', 'a.json.tmp-1'), '{}');
    expect(containersInWorkDir(dir)).toEqual({ containers: 1, spares: 0 });
  });
});

describe('resolveHostConfig', () => {
  const stored = { resources: 'ports:[31000-31010];ephemeral_ports:[40000-40999]', ephemeral_ports_per_container: 16 };
  beforeEach(() => writeHostConfig(dir, stored));

  it('gives the stored flags to a command that gives none or the same ones', async () => {
    expect(await resolveHostConfig(dir, {}, () => true)).toMatchObject({ flags: stored, replaces: false });
    expect(await resolveHostConfig(dir, { ephemeral_ports_per_container: '16' }, () => true)).toMatchObject({
      flags: { ...stored, ephemeral_ports_per_container: '16' },
      replaces: false,
    });
  });

  it('lets different flags replace the stored ones only when nothing uses them', async () => {
    expect(await resolveHostConfig(dir, { ephemeral_ports_per_container: '32' }, async () => false)).toMatchObject({
      flags: { ephemeral_ports_per_container: '32' },
      replaces: true,
    });
    const e = await resolveHostConfig(dir, { ephemeral_ports_per_container: '32' }, () => true).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).flag).toBe('ephemeral_ports_per_container');
    expect((e as Error).message).toMatch(/^--ephemeral_ports_per_container: '32' differs from the host configuration in .*flags\.json, which has '16'/);
    expect(readFileSync(hostConfigPath(dir), 'utf8')).toBe(JSON.stringify(stored, null, 2) + '\n');
  });

  it('reports a bad given value as such, before the difference', async () => {
    const e = await resolveHostConfig(dir, { ephemeral_ports_per_container: '24' }, () => true).catch((x: unknown) => x);
    expect((e as Error).message).toMatch(/^--ephemeral_ports_per_container: .*not a power of 2$/);
  });
});

describe('resolveHostConfig racing a first create', () => {
  it('finds the flags a concurrent first create stored between its read and the containers it counted', async () => {
    const flags = { resources: 'ports:[31000-31010];ephemeral_ports:[40000-40999]', ephemeral_ports_per_container: 16 };
    // Nothing stored at the first read; by the time the containers are counted, the other create
    // has stored its flags (it stores before it builds) and built one.
    const inUse = () => {
      writeHostConfig(dir, flags);
      return true;
    };
    expect(await resolveHostConfig(dir, flags, inUse)).toMatchObject({ flags, replaces: false });
    forgetHostConfig(dir);
    const other = () => {
      writeHostConfig(dir, flags);
      return true;
    };
    await expect(resolveHostConfig(dir, { ...flags, ephemeral_ports_per_container: 32 }, other)).rejects.toThrow(
      /ephemeral_ports_per_container: '32' differs from the host configuration/,
    );
  });
});
