/**
 * Our constants against the kernel headers in /usr/include/linux: a C program prints each
 * constant's value, and the frozen objects must agree. A renumbered or invented constant fails.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NETLINK, NETLINK_OPT, NLA_F, NLMSG, NLMSGERR_ATTR, NLM_F } from '../../src/netlink/index.js';
import { IFF, RTM, RTNLGRP } from '../../src/rtnl/index.js';
import { IFA, IFLA } from '../../src/rtnl/index.js';

/** [our value, C expression] pairs. */
function pairs(): Array<[string, number, string]> {
  const out: Array<[string, number, string]> = [];
  const add = (prefix: string, obj: Record<string, number>, cPrefix = prefix) => {
    for (const [k, v] of Object.entries(obj)) out.push([`${prefix}.${k}`, v, `${cPrefix}_${k}`]);
  };
  add('NLM_F', NLM_F);
  add('NLMSG', NLMSG);
  add('NLMSGERR_ATTR', NLMSGERR_ATTR);
  add('NLA_F', NLA_F);
  add('NETLINK', NETLINK);
  add('NETLINK_OPT', NETLINK_OPT, 'NETLINK');
  add('RTM', RTM);
  add('RTNLGRP', RTNLGRP);
  add('IFF', IFF);
  // attribute tables: every type that the installed headers define
  const headerMax = { IFLA: 61, IFA: 11 } as const;
  for (const [set, max] of [
    [IFLA, headerMax.IFLA],
    [IFA, headerMax.IFA],
  ] as const) {
    for (const [key, e] of set.byKey) if (e.type <= max && !e.kernelName.endsWith('_PAD')) out.push([`${set.prefix}.${key}`, e.type, e.kernelName]);
  }
  return out;
}

const RENAMED: Record<string, string> = {
  IFLA_TARGET_NETNSID: 'IFLA_IF_NETNSID', // older headers' name of the same constant
};

describe('constants match the kernel headers', () => {
  it('every constant has the value the headers give it', () => {
    const list = pairs().filter(([name]) => !name.startsWith('IFF.') || !['IFF.LOWER_UP', 'IFF.DORMANT', 'IFF.ECHO'].includes(name));
    const dir = mkdtempSync(join(tmpdir(), 'pmi-const-'));
    try {
      const src = [
        '#include <stdio.h>',
        '#include <net/if.h>',
        '#include <linux/netlink.h>',
        '#include <linux/rtnetlink.h>',
        '#include <linux/if_link.h>',
        '#include <linux/if_addr.h>',
        'int main(void) {',
        ...list.map(([name, , c]) => `  printf("%s %lld\\n", "${name}", (long long)(${RENAMED[c] ?? c}));`),
        '  return 0;',
        '}',
      ].join('\n');
      writeFileSync(join(dir, 'c.c'), src);
      execFileSync('cc', ['-o', join(dir, 'c'), join(dir, 'c.c')], { stdio: 'pipe' });
      const fromHeaders = Object.fromEntries(
        execFileSync(join(dir, 'c'), { encoding: 'utf8' })
          .trim()
          .split('\n')
          .map((l) => l.split(' '))
          .map(([n, v]) => [n, Number(v)]),
      );
      expect(Object.fromEntries(list.map(([n, v]) => [n, v]))).toEqual(fromHeaders);
      expect(list.length).toBeGreaterThan(150);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
