/**
 * The rtnl request builders produce exactly the bytes `ip` sends for the same command
 * (test/golden/rtnl, captured by test/golden/capture.ts), and reject bad input before sending.
 */
import { describe, expect, it } from 'vitest';
import { NLM_F, Netns, Writer, type Request } from '../../src/netlink/index.js';
import { IPPROTO } from '../../src/tc/index.js';
import { InvalidArgumentError, NUD, RT_TABLE, addressRequests, linkRequests, neighbourRequests, routeRequests, ruleRequests } from '../../src/rtnl/index.js';
import { loadGolden } from '../helpers/golden.js';

const golden = new Map([...loadGolden('rtnl'), ...loadGolden('netlink')].map((v) => [v.name, v]));

function bytes(req: Request, flags = NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0)): string {
  const w = new Writer();
  const start = w.beginMessage(req.type, flags, 0, 0);
  req.encode?.(w);
  w.endMessage(start);
  return w.toBuffer().toString('hex');
}

const cases: Array<[string, () => Request, number?]> = [
  [
    'newlink-veth-peer-in-netns',
    () => linkRequests.addVeth({ name: 'v0', address: '02:00:00:00:00:01', peer: { name: 'eth1', address: '02:00:00:00:00:02', netns: Netns.fromFd(4) } }),
  ],
  [
    'newlink-veth-queues-peer-in-netns',
    () =>
      linkRequests.addVeth({
        name: 'v8',
        address: '02:00:00:00:00:01',
        mtu: 1400,
        numTxQueues: 1,
        numRxQueues: 1,
        peer: { name: 'eth8', address: '02:00:00:00:00:02', mtu: 1400, numTxQueues: 1, numRxQueues: 1, netns: Netns.fromFd(4) },
      }),
  ],
  [
    'newlink-veth-with-macs-mtu',
    () => linkRequests.addVeth({ name: 'v0', address: '02:00:00:00:00:01', mtu: 1400, peer: { name: 'v1', address: '02:00:00:00:00:02' } }),
  ],
  ['setlink-up', () => linkRequests.set(3, { up: true })],
  ['setlink-down', () => linkRequests.set(3, { up: false })],
  ['setlink-mtu', () => linkRequests.set(3, { mtu: 1400 })],
  ['setlink-address', () => linkRequests.set(3, { address: '02:00:00:00:00:09' })],
  ['setlink-name', () => linkRequests.set(3, { name: 'v9' })],
  ['setlink-netns', () => linkRequests.set(3, { netns: Netns.fromFd(4) })],
  ['dellink-by-name', () => linkRequests.delete(5)],
  ['newaddr-ipv4', () => addressRequests.add({ ifindex: 2, address: '198.18.0.9/24' })],
  ['deladdr-ipv4', () => addressRequests.delete({ ifindex: 2, address: '198.18.0.9/24' })],
  ['newroute-default-via', () => routeRequests.add({ dst: 'default', gateway: '198.18.0.1' })],
  ['newroute-prefix-dev', () => routeRequests.add({ dst: '198.18.5.0/24', oif: 2 })],
  ['newroute-prefix-via-dev-metric', () => routeRequests.add({ dst: '198.18.6.0/24', gateway: '198.18.0.1', priority: 7, oif: 2 })],
  ['delroute-prefix-dev', () => routeRequests.delete({ dst: '198.18.5.0/24', oif: 2 })],
  // `ip route get` asks without NLM_F_ACK; we always ask for one.
  ['getroute-lookup', () => routeRequests.lookup('198.18.0.1'), NLM_F.REQUEST],
  ['newneigh-permanent', () => neighbourRequests.add({ ifindex: 2, address: '198.18.0.1', lladdr: '02:00:00:00:00:07', state: NUD.PERMANENT })],
  ['delneigh', () => neighbourRequests.delete({ ifindex: 2, address: '198.18.0.1' })],
  [
    'newrule-iif-dst-ipproto-dport',
    () => ruleRequests.add({ priority: 100, dst: '198.18.0.1', iif: 'lo', ipProto: IPPROTO.TCP, dport: { begin: 31000, end: 31009 }, table: RT_TABLE.LOCAL }),
  ],
  ['newrule-src-sport-table', () => ruleRequests.add({ priority: 120, src: '198.18.0.0/15', sport: { begin: 1000, end: 2000 }, table: 300 })],
  [
    'newrule-ipv6-dst-dport',
    () => ruleRequests.add({ priority: 100, dst: '2001:2::1', iif: 'lo', ipProto: IPPROTO.UDP, dport: { begin: 33000, end: 33015 }, table: RT_TABLE.LOCAL }),
  ],
  ['delrule-priority', () => ruleRequests.delete({ priority: 0 })],
];

describe('rtnl builders encode exactly as iproute2', () => {
  it.each(cases)('%s', (name, build, flags) => {
    const v = golden.get(name);
    expect(v, `golden vector ${name}`).toBeDefined();
    const req = build();
    expect(bytes(req, flags ?? NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0))).toBe(v!.hex);
  });
});

describe('bad input is rejected before anything is sent', () => {
  it.each([
    ['an empty name', () => linkRequests.addVeth({ name: '', peer: { name: 'p' } }), /veth name must be a non-empty string/],
    ['a 16-byte name', () => linkRequests.addVeth({ name: 'x'.repeat(16), peer: { name: 'p' } }), /longer than 15 bytes/],
    ['a name with a slash', () => linkRequests.set('a/b', { up: true }), /not a valid interface name/],
    ['a malformed MAC', () => linkRequests.set(3, { address: '02:00:00:00:00' }), /is not six hex octets/],
    ['a non-hex MAC', () => linkRequests.addVeth({ name: 'a', peer: { name: 'b', address: 'zz:00:00:00:00:01' } }), /veth peer MAC address/],
    ['an MTU below 68', () => linkRequests.set(3, { mtu: 10 }), /MTU must be an integer of at least 68/],
    ['0 transmit queues', () => linkRequests.addVeth({ name: 'a', numTxQueues: 0, peer: { name: 'b' } }), /veth numTxQueues must be an integer 1\.\.4096/],
    ['4097 receive queues on the peer', () => linkRequests.addVeth({ name: 'a', peer: { name: 'b', numRxQueues: 4097 } }), /veth peer numRxQueues must be/],
    ['index 0', () => linkRequests.delete(0), /interface index must be a positive integer/],
    ['a bad address', () => addressRequests.add({ ifindex: 1, address: '198.18.0.300/24' }), /is not an IP address or prefix/],
    ['a bad prefix length', () => addressRequests.add({ ifindex: 1, address: '198.18.0.3/33' }), /prefix length must be 0\.\.32/],
    ['a route with neither gateway nor device', () => routeRequests.add({ dst: '198.18.7.0/24' }), /needs a gateway or an output interface/],
    ['mixed families', () => routeRequests.add({ dst: '2001:db8::/32', gateway: '198.18.0.1' }), /different address families/],
    ['identical veth names', () => linkRequests.addVeth({ name: 'same', peer: { name: 'same' } }), /different names/],
    ['renaming by name', () => linkRequests.set('eth0', { name: 'x' }), /renaming needs the link by index/],
    ['a rule to add without a priority', () => ruleRequests.add({ dst: '198.18.0.1', table: 100 }), /a rule to add needs a priority/],
    ['a rule port range upside down', () => ruleRequests.add({ priority: 1, dport: { begin: 9, end: 8 } }), /rule dport must be ports/],
    ['a rule of mixed families', () => ruleRequests.add({ priority: 1, src: '198.18.0.0/15', dst: '2001:2::1' }), /of the rule family/],
    ['a rule ipproto 256', () => ruleRequests.add({ priority: 1, ipProto: 256 }), /invalid rule ipproto 256/],
  ])('%s', (_what, build, message) => {
    expect(build).toThrow(InvalidArgumentError);
    expect(build).toThrow(message);
  });
});
