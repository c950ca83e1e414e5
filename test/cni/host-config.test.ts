/**
 * The plugin and the work_dir's host configuration (`<work_dir>/flags.json`, shared with the CLI):
 * ADD stores its flags; an ADD with other flags is refused while containers exist (code 7 naming
 * the flag), DEL still works, and with no container left the new flags replace the stored ones.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepStaleLabs } from '../../src/lab/index.js';
import { CniBench, requireCniTools } from '../helpers/cni.js';

let b: CniBench;
const newId = () => randomBytes(16).toString('hex');
const stored = () => JSON.parse(readFileSync(join(b.workDir, 'flags.json'), 'utf8')) as Record<string, unknown>;

beforeAll(() => {
  sweepStaleLabs();
  requireCniTools();
  b = new CniBench();
  b.writeConflist('first', [b.pluginConf()]);
  b.writeConflist('other', [b.pluginConf({ ephemeral_ports_per_container: 32 })]);
  b.writeConflist('limited', [b.pluginConf({ egress_rate_limit_per_container: '1MB' })]);
}, 120_000);

afterAll(async () => {
  await b?.destroy();
});

describe('the host configuration', () => {
  it('is stored by ADD, defended while containers exist, and replaced once none is left', async () => {
    const [c1, c2, c3] = [newId(), newId(), newId()];
    const [ns1, ns2, ns3] = [b.runtimeNetns(), b.runtimeNetns(), b.runtimeNetns()];
    const first = await b.cni('add', 'first', ns1, { containerId: c1 });
    expect(first.status, first.stdout + first.stderr).toBe(0);
    expect(stored()).toMatchObject({ ephemeral_ports_per_container: 16 });

    const refused = await b.cni('add', 'other', ns2, { containerId: c2 });
    expect(refused.status).not.toBe(0);
    const err = JSON.parse(refused.stdout) as { code: number; msg: string; details: string };
    expect(err.code).toBe(7);
    expect(`${err.msg} ${err.details}`).toMatch(/ephemeral_ports_per_container/);
    expect(`${err.msg} ${err.details}`).toMatch(/flags\.json/);
    expect(stored()).toMatchObject({ ephemeral_ports_per_container: 16 });

    const del = await b.cni('del', 'first', ns1, { containerId: c1 });
    expect(del.status, del.stdout + del.stderr).toBe(0);
    const replaced = await b.cni('add', 'other', ns3, { containerId: c3 });
    expect(replaced.status, replaced.stdout + replaced.stderr).toBe(0);
    expect(stored()).toMatchObject({ ephemeral_ports_per_container: 32 });
    expect((await b.cni('del', 'other', ns3, { containerId: c3 })).status).toBe(0);
  });

  it('is a whole configuration: a flag a netconf leaves out means its default, and is compared too', async () => {
    const [c1, c2, c3] = [newId(), newId(), newId()];
    const [ns1, ns2, ns3] = [b.runtimeNetns(), b.runtimeNetns(), b.runtimeNetns()];
    const limited = await b.cni('add', 'limited', ns1, { containerId: c1 });
    expect(limited.status, limited.stdout + limited.stderr).toBe(0);
    expect(stored()).toMatchObject({ egress_rate_limit_per_container: '1MB' });
    // 'first' gives no egress limit: the containers of this work_dir have one, so it is refused.
    const refused = await b.cni('add', 'first', ns2, { containerId: c2 });
    const err = JSON.parse(refused.stdout) as { code: number; msg: string; details: string };
    expect(err.code, refused.stdout).toBe(7);
    expect(`${err.msg} ${err.details}`).toMatch(
      /"egress_rate_limit_per_container": leaving it unset .* differs .* which has '1MB'; containers use it: give the same value \(see/,
    );
    expect(stored()).toMatchObject({ egress_rate_limit_per_container: '1MB' });
    // The same configuration again is accepted, and the stored file is left as it was.
    const again = await b.cni('add', 'limited', ns3, { containerId: c3 });
    expect(again.status, again.stdout + again.stderr).toBe(0);
    expect(stored()).toMatchObject({ egress_rate_limit_per_container: '1MB' });
    for (const [id, ns] of [
      [c1, ns1],
      [c3, ns3],
    ] as const)
      expect((await b.cni('del', 'limited', ns, { containerId: id })).status).toBe(0);
  });
});
