/**
 * Regenerate the tc golden vectors (test/golden/tc/*.json): every case of test/tc/cases.ts is run
 * as `tc …` under ../shared/tools/nlcapture inside a lab namespace, recording the netlink message
 * tc sends (seq/pid zeroed) even when this kernel refuses it (fq_codel, basic); then a few kernel
 * replies (qdisc, class, filters with actions) are read with our own session. The decoded form is
 * written by our decoder (strict) and must be reviewed by eye.
 *
 *   npx tsx test/golden/capture-tc.ts                  # every vector, afresh
 *   npx tsx test/golden/capture-tc.ts filter-bpf filter-del-bpf reply-filter-bpf   # only the vectors named by these prefixes; the others stay
 *   npx tsx test/golden/capture-tc.ts filter-u32-ip6 filter-u32-offset reply-filter-u32-ip6   # the IPv6 matches and selector offsets
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { NetlinkSession, Netns, decodeBody, encodeBody } from '../../src/netlink/index.js';
import type { MessageSchema } from '../../src/netlink/index.js';
import { RTM, RTM_NAMES } from '../../src/rtnl/constants.js';
import { actionMessage, formatBytecode, tcMessage } from '../../src/tc/index.js';
import { ip, ipJson } from '../helpers/lab.js';
import { toJsonValue } from '../helpers/golden.js';
import { CASES, DROP_UDP_5000, MAC, MATCH_UDP_5001 } from '../tc/cases.js';
import type { Devices } from '../tc/cases.js';
import { Lab, sweepStaleLabs } from '../../src/lab/index.js';

const NLCAPTURE = join(import.meta.dirname, '..', '..', '..', 'shared', 'tools', 'nlcapture');
const DIR = join(import.meta.dirname, 'tc');
const SCHEMAS: Record<string, MessageSchema> = { tc: tcMessage, action: actionMessage };
const GET_TYPES = new Set([RTM.GETLINK, RTM.GETQDISC, RTM.GETTCLASS, RTM.GETTFILTER, RTM.GETACTION]);
const tcVersion = execFileSync('tc', ['-V'], { encoding: 'utf8' }).trim();
const psched = readFileSync('/proc/net/psched', 'utf8').trim();
/** Name prefixes of the vectors to capture; none means every one (and the old files go first). */
const only = process.argv.slice(2);
const wanted = (name: string) => !only.length || only.some((p) => name.startsWith(p));
/** A command line as a shell would take it back (an argument with spaces quoted, like tc's bytecode). */
const shellLine = (args: string[]) => args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');

interface Captured {
  type: number;
  flags: number;
  hex: string;
}

function capture(ns: string, args: string[]): Captured[] {
  let out = '';
  try {
    out = execFileSync(NLCAPTURE, ['--netns', ns, '--all', '--', 'tc', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch (e) {
    out = String((e as { stdout?: string }).stdout ?? '');
  }
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Captured);
}

function write(name: string, v: object): void {
  writeFileSync(join(DIR, `${name}.json`), JSON.stringify(v, null, 2) + '\n');
  console.log(`wrote tc/${name}.json`);
}

function devices(ns: string): Devices {
  const idx = (name: string) => ipJson<Array<{ ifindex: number }>>(ns, 'link', 'show', name)[0]!.ifindex;
  return { eth0: idx('eth0'), veth1: idx('veth1'), lo: idx('lo') };
}

async function main(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  if (!only.length) for (const f of readdirSync(DIR)) if (f.endsWith('.json')) unlinkSync(join(DIR, f));
  const lab = new Lab();
  try {
    const h = lab.host;
    ip(h, 'link', 'add', 'veth1', 'type', 'veth', 'peer', 'name', 'veth1p');
    ip(h, 'link', 'set', 'veth1', 'up');
    ip(h, 'link', 'set', 'veth1p', 'up');
    const dev = devices(h);
    for (const c of CASES) {
      if (!wanted(c.name)) continue;
      const args = c.args.map((a) => a.replace('{MAC}', MAC));
      const msgs = capture(h, args).filter((m) => (c.messageType !== undefined ? m.type === c.messageType : !GET_TYPES.has(m.type as never)));
      if (msgs.length !== 1) throw new Error(`${c.name}: expected one message from tc ${args.join(' ')}, got ${msgs.length}`);
      const m = msgs[0]!;
      const decoded = decodeBody(SCHEMAS[c.schema]!, Buffer.from(m.hex, 'hex').subarray(16), { strict: true });
      write(c.name, {
        provenance: {
          command: `tc ${shellLine(args)}`,
          tool: tcVersion,
          kernel: release(),
          method: 'nlcapture (strace sendmsg), seq/pid zeroed',
          psched,
          devices: dev,
          ...(c.note ? { note: c.note } : {}),
        },
        direction: 'request',
        schema: c.schema,
        type: m.type,
        flags: m.flags,
        hex: m.hex,
        decoded: toJsonValue(decoded),
      });
    }
    await captureReplies(lab);
  } finally {
    lab.destroy();
  }
}

const IP6_LINK_OFFSET =
  'filter add dev eth0 parent ffff: protocol ipv6 prio 771 u32 link 100: hashkey mask 0x0000ff00 at 40 offset plus 20 eat match ip6 dst 2001:db8::2/128 match ip6 protocol 6 0xff';

/** Kernel replies: dumps read with our session in a fresh namespace, seq/pid zeroed. */
async function captureReplies(lab: Lab): Promise<void> {
  const ns = lab.addNamespace('replies');
  ip(ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'veth1');
  const dev = devices(ns);
  const tc = (s: string, ...more: string[]) => execFileSync('tc', ['-n', ns, ...s.split(' '), ...more]);
  tc('qdisc add dev eth0 root handle 1: htb default 1');
  tc('class add dev eth0 parent 1: classid 1:1 htb rate 1mbit ceil 2mbit');
  tc('qdisc add dev eth0 ingress');
  tc(
    `filter add dev eth0 parent ffff: protocol ip prio 770 u32 match u8 5 0x0f at 0 match ip dst 198.18.0.2/32 match ip dport 31232 0xff00 action mirred egress redirect dev veth1`,
  );
  // An IPv6 link into a table of its own, with a hash key at 40 and an offset that eats 20 bytes.
  tc('filter add dev eth0 parent ffff: protocol ipv6 prio 771 handle 100: u32 divisor 256');
  tc(IP6_LINK_OFFSET);
  // bpf filters on veth1's ingress: a direct-action program, and a match with a classid and a mirred action.
  tc('qdisc add dev veth1 ingress');
  tc('filter add dev veth1 parent ffff: protocol ip prio 5 handle 1 bpf bytecode', DROP_UDP_5000, 'da');
  tc(
    'filter add dev veth1 parent ffff: protocol ip prio 6 handle 2 bpf bytecode',
    formatBytecode(MATCH_UDP_5001),
    ...'classid 1:1 action mirred egress redirect dev eth0'.split(' '),
  );
  const s = NetlinkSession.open({ netns: Netns.fromName(ns), typeNames: RTM_NAMES });
  try {
    const grab = (type: number, header: object) =>
      s.dump(
        { type, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, { header }) },
        { decode: (m) => ({ type: m.type, flags: m.flags, raw: Buffer.from(m.raw) }) },
      );
    const qdiscs = (await grab(RTM.GETQDISC, {})).filter((m) => m.raw.readInt32LE(20) === dev.eth0);
    const classes = await grab(RTM.GETTCLASS, { ifindex: dev.eth0 });
    // Nodes only (tables have node id 0), in priority order (tcm_info's high half): 770, then 771.
    const filters = (await grab(RTM.GETTFILTER, { ifindex: dev.eth0, parent: 0xffff0000 })).filter((m) => (m.raw.readUInt32LE(24) & 0xfff) !== 0);
    const prio = (p: number) => filters.find((m) => m.raw.readUInt32LE(32) >>> 16 === p)!;
    const bpf = (await grab(RTM.GETTFILTER, { ifindex: dev.veth1, parent: 0xffff0000 })).filter((m) => m.raw.readUInt32LE(24) !== 0);
    const pick = (list: typeof qdiscs, kind: string) => list.find((m) => decodeBody(tcMessage, m.raw.subarray(16)).attrs.kind === kind)!;
    const replies: Array<[string, string, (typeof qdiscs)[number]]> = [
      ['reply-qdisc-htb', 'RTM_GETQDISC dump: tc qdisc add dev eth0 root handle 1: htb default 1', pick(qdiscs, 'htb')],
      ['reply-qdisc-ingress', 'RTM_GETQDISC dump: tc qdisc add dev eth0 ingress', pick(qdiscs, 'ingress')],
      ['reply-class-htb', 'RTM_GETTCLASS dump: tc class add dev eth0 parent 1: classid 1:1 htb rate 1mbit ceil 2mbit', classes[0]!],
      ['reply-filter-u32-mirred', 'RTM_GETTFILTER dump: the prio 770 u32 filter with a mirred redirect', prio(770)],
      ['reply-filter-u32-ip6-link-offset', `RTM_GETTFILTER dump: tc ${IP6_LINK_OFFSET}`, prio(771)],
      [
        'reply-filter-bpf-da',
        `RTM_GETTFILTER dump: tc filter add dev veth1 parent ffff: protocol ip prio 5 handle 1 bpf bytecode '${DROP_UDP_5000}' da`,
        bpf[0]!,
      ],
      [
        'reply-filter-bpf-classid-mirred',
        `RTM_GETTFILTER dump: tc filter add dev veth1 parent ffff: protocol ip prio 6 handle 2 bpf bytecode '${formatBytecode(MATCH_UDP_5001)}' classid 1:1 action mirred egress redirect dev eth0`,
        bpf[1]!,
      ],
    ];
    for (const [name, command, m] of replies) {
      if (!wanted(name)) continue;
      const raw = Buffer.from(m.raw);
      raw.writeUInt32LE(0, 8);
      raw.writeUInt32LE(0, 12);
      write(name, {
        provenance: { command, kernel: release(), method: 'kernel reply read by NetlinkSession, seq/pid zeroed', psched, devices: dev },
        direction: 'reply',
        schema: 'tc',
        type: m.type,
        flags: m.flags,
        hex: raw.toString('hex'),
        decoded: toJsonValue(decodeBody(tcMessage, raw.subarray(16), { strict: true })),
      });
    }
  } finally {
    s.close();
  }
}

sweepStaleLabs();
await main();
