/**
 * Regenerate the RTM_GETSTATS golden vectors (test/golden/rtnl/stats/*.json): the two requests
 * `ip stats show … group link` sends, recorded under ../shared/tools/nlcapture inside a lab
 * namespace (seq/pid zeroed), and two kernel replies read with our own session: lo in a fresh
 * namespace (every counter zero) and the lab host's eth0 after a few pings (counters that are not).
 * The decoded form is written by our decoder (strict) and must be reviewed by eye.
 *
 *   npx tsx test/golden/capture-stats.ts
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { NetlinkSession, Netns, decodeBody } from '../../src/netlink/index.js';
import { RTM, RTM_NAMES, statsMessage, statsRequests } from '../../src/rtnl/index.js';
import { toJsonValue } from '../helpers/golden.js';
import { ipJson } from '../helpers/lab.js';
import { icmpEcho } from '../helpers/probe.js';
import { Lab, sweepStaleLabs } from '../../src/lab/index.js';

const NLCAPTURE = join(import.meta.dirname, '..', '..', '..', 'shared', 'tools', 'nlcapture');
const DIR = join(import.meta.dirname, 'rtnl', 'stats');
const ipVersion = execFileSync('ip', ['-V'], { encoding: 'utf8' }).trim();

function write(name: string, v: object): void {
  mkdirSync(DIR, { recursive: true });
  writeFileSync(join(DIR, `${name}.json`), JSON.stringify(v, null, 2) + '\n');
  console.log(`wrote rtnl/stats/${name}.json`);
}

/** The one RTM_GETSTATS message `cmd` sends (its RTM_GETLINK name lookups are left out). */
function recordRequest(name: string, ns: string, cmd: string[]): void {
  const out = execFileSync(NLCAPTURE, ['--netns', ns, '--', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const msgs = out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: number; flags: number; hex: string })
    .filter((m) => m.type === RTM.GETSTATS);
  if (msgs.length !== 1) throw new Error(`${name}: expected one RTM_GETSTATS from ${cmd.join(' ')}, got ${msgs.length}`);
  const m = msgs[0]!;
  const decoded = decodeBody(statsMessage, Buffer.from(m.hex, 'hex').subarray(16), { strict: true });
  const provenance = { command: cmd.join(' '), tool: ipVersion, kernel: release(), method: 'nlcapture (strace sendmsg), seq/pid zeroed' };
  write(name, { provenance, direction: 'request', schema: 'stats', type: m.type, flags: m.flags, hex: m.hex, decoded: toJsonValue(decoded) });
}

/** The kernel's RTM_NEWSTATS for `ifindex` in `ns`, as our session receives it. */
async function recordReply(name: string, ns: string, ifindex: number, what: string): Promise<void> {
  const s = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  try {
    const r = await s.request(statsRequests.get(ifindex));
    const raw = Buffer.from(r.replies[0]!.raw);
    raw.writeUInt32LE(0, 8);
    raw.writeUInt32LE(0, 12);
    write(name, {
      provenance: {
        command: `RTM_GETSTATS ifindex=${ifindex} filter_mask=IFLA_STATS_LINK_64: ${what}`,
        kernel: release(),
        method: 'kernel reply read by NetlinkSession, seq/pid zeroed',
      },
      direction: 'reply',
      schema: 'stats',
      type: r.replies[0]!.type,
      flags: r.replies[0]!.flags,
      hex: raw.toString('hex'),
      decoded: toJsonValue(decodeBody(statsMessage, raw.subarray(16), { strict: true })),
    });
  } finally {
    s.close();
  }
}

async function main(): Promise<void> {
  const lab = new Lab();
  try {
    const h = lab.host;
    recordRequest('getstats-dev-group-link', h, ['ip', 'stats', 'show', 'dev', 'eth0', 'group', 'link']);
    recordRequest('getstats-dump-group-link', h, ['ip', 'stats', 'show', 'group', 'link']);
    const fresh = lab.addNamespace('fresh');
    await recordReply('reply-newstats-lo-fresh-netns', fresh, 1, 'lo in a new netns');
    icmpEcho(h, '198.18.0.1', { count: 3, intervalMs: 50, waitMs: 1000 });
    const eth0 = ipJson<Array<{ ifindex: number }>>(h, 'link', 'show', 'eth0')[0]!.ifindex;
    await recordReply('reply-newstats-eth0-after-pings', h, eth0, 'the lab host eth0 after 3 pings');
  } finally {
    lab.destroy();
  }
}

sweepStaleLabs();
await main();
