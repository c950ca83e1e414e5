/**
 * Regenerate golden vectors: runs the reference tools under ../shared/tools/nlcapture inside a lab
 * namespace and records the netlink messages they send (seq/pid zeroed), plus a few kernel replies
 * read with our own session. The decoded form is written by our decoder and must be reviewed by
 * eye; the tests then hold both directions to these bytes.
 *
 *   npx tsx test/golden/capture.ts [netlink]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { NetlinkSession, Netns, decodeBody, encodeBody } from '../../src/netlink/index.js';
import { RTM } from '../../src/rtnl/index.js';
import { ip } from '../helpers/lab.js';
import { toJsonValue } from '../helpers/golden.js';
import { SCHEMAS } from './schemas.js';
import { Lab, sweepStaleLabs } from '../../src/lab/index.js';

const NLCAPTURE = join(import.meta.dirname, '..', '..', '..', 'shared', 'tools', 'nlcapture');
const toolVersion = (tool: string) => execFileSync(tool, ['-V'], { encoding: 'utf8' }).trim();

interface Captured {
  type: number;
  flags: number;
  hex: string;
}

function capture(ns: string, cmd: string[], all = false): Captured[] {
  const out = execFileSync(NLCAPTURE, ['--netns', ns, ...(all ? ['--all'] : []), '--', ...cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Captured)
    .filter((m) => !(m.type === RTM.NEWLINK && /^0+$/.test(m.hex.slice(32)))); // iproute2's empty probe
}

function write(area: string, name: string, v: object): void {
  const dir = join(import.meta.dirname, area);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(v, null, 2) + '\n');
  console.log(`wrote ${area}/${name}.json`);
}

function recordRequest(
  area: string,
  name: string,
  ns: string,
  schema: keyof typeof SCHEMAS,
  cmd: string[],
  opts: { all?: boolean; pick?: (m: Captured) => boolean; note?: string } = {},
): void {
  const msgs = capture(ns, cmd, opts.all).filter(opts.pick ?? (() => true));
  if (msgs.length !== 1) throw new Error(`${name}: expected one message from ${cmd.join(' ')}, got ${msgs.length}`);
  const m = msgs[0]!;
  const bytes = Buffer.from(m.hex, 'hex');
  const decoded = decodeBody(SCHEMAS[schema], bytes.subarray(16), { strict: true });
  write(area, name, {
    provenance: {
      command: cmd.join(' '),
      tool: toolVersion(cmd[0]!),
      kernel: release(),
      method: 'nlcapture (strace sendmsg), seq/pid zeroed',
      ...(opts.note ? { note: opts.note } : {}),
    },
    direction: 'request',
    schema,
    type: m.type,
    flags: m.flags,
    hex: m.hex,
    decoded: toJsonValue(decoded),
  });
}

async function captureNetlink(): Promise<void> {
  const lab = new Lab();
  try {
    const h = lab.host;
    recordRequest('netlink', 'getlink-dump-ip-link-show', h, 'link', ['ip', 'link', 'show'], { all: true, pick: (m) => m.type === RTM.GETLINK });
    recordRequest('netlink', 'newlink-veth-with-macs-mtu', h, 'link', [
      'ip',
      'link',
      'add',
      'v0',
      'address',
      '02:00:00:00:00:01',
      'mtu',
      '1400',
      'type',
      'veth',
      'peer',
      'name',
      'v1',
      'address',
      '02:00:00:00:00:02',
    ]);
    recordRequest('netlink', 'newaddr-ipv4', h, 'address', ['ip', 'addr', 'add', '198.18.0.9/24', 'dev', 'eth0']);
    recordRequest('netlink', 'deladdr-ipv4', h, 'address', ['ip', 'addr', 'del', '198.18.0.9/24', 'dev', 'eth0']);
    // A kernel reply: lo in a fresh namespace (down, zero counters), read with our own session.
    const fresh = lab.addNamespace('fresh');
    const s = NetlinkSession.open({ netns: Netns.fromName(fresh) });
    const r = await s.request({ type: RTM.GETLINK, encode: (w) => encodeBody(w, SCHEMAS.link, { attrs: { ifname: 'lo' } }) });
    s.close();
    const reply = r.replies[0]!;
    const raw = Buffer.from(reply.raw);
    raw.writeUInt32LE(0, 8);
    raw.writeUInt32LE(0, 12);
    write('netlink', 'reply-newlink-lo-fresh-netns', {
      provenance: { command: 'RTM_GETLINK ifname=lo in a new netns', kernel: release(), method: 'kernel reply read by NetlinkSession, seq/pid zeroed' },
      direction: 'reply',
      schema: 'link',
      type: reply.type,
      flags: reply.flags,
      hex: raw.toString('hex'),
      decoded: toJsonValue(decodeBody(SCHEMAS.link, raw.subarray(16))),
    });
  } finally {
    lab.destroy();
  }
}

async function captureRtnl(): Promise<void> {
  const lab = new Lab();
  try {
    const h = lab.host;
    const other = lab.addNamespace('peer');
    const rec = (name: string, schema: keyof typeof SCHEMAS, cmd: string, opts: { all?: boolean; pick?: (m: Captured) => boolean } = {}) =>
      recordRequest('rtnl', name, h, schema, cmd.split(' '), opts);
    rec('newlink-veth-peer-in-netns', 'link', `ip link add v0 address 02:00:00:00:00:01 type veth peer name eth1 address 02:00:00:00:00:02 netns ${other}`);
    rec('setlink-up', 'link', 'ip link set v0 up');
    rec('setlink-down', 'link', 'ip link set v0 down');
    rec('setlink-mtu', 'link', 'ip link set v0 mtu 1400');
    rec('setlink-address', 'link', 'ip link set v0 address 02:00:00:00:00:09');
    rec('setlink-name', 'link', 'ip link set v0 name v9');
    rec('setlink-netns', 'link', `ip link set v9 netns ${other}`);
    ip(other, 'link', 'del', 'v9');
    ip(h, 'link', 'add', 'v0', 'type', 'veth', 'peer', 'name', 'v1');
    rec('dellink-by-name', 'link', 'ip link del v0');
    ip(h, 'route', 'del', 'default');
    rec('newroute-default-via', 'route', 'ip route add default via 198.18.0.1');
    rec('newroute-prefix-dev', 'route', 'ip route add 198.18.5.0/24 dev eth0');
    rec('newroute-prefix-via-dev-metric', 'route', 'ip route add 198.18.6.0/24 via 198.18.0.1 dev eth0 metric 7');
    rec('delroute-prefix-dev', 'route', 'ip route del 198.18.5.0/24 dev eth0');
    rec('getroute-lookup', 'route', 'ip route get 198.18.0.1', { all: true, pick: (m) => m.type === 26 });
    rec('newneigh-permanent', 'neigh', 'ip neigh add 198.18.0.1 lladdr 02:00:00:00:00:07 dev eth0 nud permanent');
    rec('delneigh', 'neigh', 'ip neigh del 198.18.0.1 dev eth0');
    rec('newrule-iif-dst-ipproto-dport', 'rule', 'ip rule add pref 100 to 198.18.0.1 iif lo ipproto tcp dport 31000-31009 lookup local');
    rec('newrule-src-sport-table', 'rule', 'ip rule add pref 120 from 198.18.0.0/15 sport 1000-2000 lookup 300');
    rec('newrule-ipv6-dst-dport', 'rule', 'ip -6 rule add pref 100 to 2001:2::1 iif lo ipproto udp dport 33000-33015 lookup local');
    rec('delrule-priority', 'rule', 'ip rule del pref 0');
    rec(
      'newlink-veth-queues-peer-in-netns',
      'link',
      `ip link add v8 address 02:00:00:00:00:01 mtu 1400 numtxqueues 1 numrxqueues 1 type veth peer name eth8 address 02:00:00:00:00:02 mtu 1400 numtxqueues 1 numrxqueues 1 netns ${other}`,
    );
  } finally {
    lab.destroy();
  }
}

sweepStaleLabs();
const areas = process.argv.slice(2);
if (!areas.length || areas.includes('netlink')) await captureNetlink();
if (!areas.length || areas.includes('rtnl')) await captureRtnl();
