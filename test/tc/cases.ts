/**
 * The golden cases of the tc layer: each is a `tc` command line (run by test/golden/capture-tc.ts
 * under nlcapture in a lab namespace) and, where the SDK has a builder for it, the request our
 * builders make for the same command. The devices are eth0 (where objects go), veth1 (mirred
 * target) and lo; their ifindexes are recorded with each vector.
 */
import { NLM_F } from '../../src/netlink/index.js';
import type { Request } from '../../src/netlink/index.js';
import { RTM } from '../../src/rtnl/constants.js';
import {
  TC_ACT,
  actionGetRequest,
  actionRequest,
  assemble,
  classRequest,
  filterGetRequest,
  filterRequest,
  formatBytecode,
  jeq,
  ldAbs,
  ldInd,
  ldxMsh,
  parseBytecode,
  qdiscRequest,
  ret,
} from '../../src/tc/index.js';
import type { Psched } from '../../src/tc/index.js';

export interface Devices {
  eth0: number;
  veth1: number;
  lo: number;
}

export interface TcCase {
  name: string;
  /** Arguments after `tc`. {MAC} is replaced by MAC below. */
  args: string[];
  schema: 'tc' | 'action';
  /** Which captured message is the vector (default: the only non-GET one). */
  messageType?: number;
  /** Our builder for the same command, when there is one. */
  build?: (dev: Devices, psched: Psched) => Request;
  /** Expected NLM_F flags besides REQUEST|ACK (checked against the capture). */
  note?: string;
}

export const MAC = '02:00:00:00:00:01';
const tc = (s: string) => s.split(' ');

/** IPv4 UDP to port 5000 → TC_ACT_SHOT, else TC_ACT_UNSPEC (tc's bytecode for the da cases; IHL assumed 5). */
export const DROP_UDP_5000 = '8,40 0 0 12,21 0 5 2048,48 0 0 23,21 0 3 17,40 0 0 36,21 0 1 5000,6 0 0 2,6 0 0 4294967295';
/** The same test for UDP port 5001 with the real IP header length (ldx msh), as a match: -1 on a match, 0 otherwise. */
export const MATCH_UDP_5001 = assemble([
  ldAbs('h', 12),
  jeq(0x0800, 0, 'no'),
  ldAbs('b', 23),
  jeq(17, 0, 'no'),
  ldxMsh(14),
  ldInd('h', 16),
  jeq(5001, 0, 'no'),
  ret(-1),
  { label: 'no' },
  ret(0),
]);

export const CASES: TcCase[] = [
  {
    name: 'qdisc-add-ingress',
    args: tc('qdisc add dev eth0 ingress'),
    schema: 'tc',
    build: (d) => qdiscRequest('add', { kind: 'ingress', ifindex: d.eth0 }),
  },
  {
    name: 'qdisc-add-clsact',
    args: tc('qdisc add dev veth1 clsact'),
    schema: 'tc',
    build: (d) => qdiscRequest('add', { kind: 'clsact', ifindex: d.veth1 }),
  },
  {
    name: 'qdisc-add-htb-default',
    args: tc('qdisc add dev eth0 root handle 1: htb default 1'),
    schema: 'tc',
    build: (d) => qdiscRequest('add', { kind: 'htb', ifindex: d.eth0, handle: '1:', defaultClass: 1 }),
  },
  {
    name: 'qdisc-replace-htb-r2q-direct-qlen',
    args: tc('qdisc replace dev eth0 root handle 1: htb default 10 r2q 5 direct_qlen 100'),
    schema: 'tc',
    build: (d) => qdiscRequest('replace', { kind: 'htb', ifindex: d.eth0, handle: '1:', defaultClass: 0x10, r2q: 5, directQlen: 100 }),
    note: 'tc reads `default` as hex: 10 is class 0x10',
  },
  {
    name: 'class-add-htb-rate',
    args: tc('class add dev eth0 parent 1: classid 1:1 htb rate 1mbit'),
    schema: 'tc',
    build: (d, p) => classRequest('add', { kind: 'htb', ifindex: d.eth0, parent: '1:', classid: '1:1', rateBytesPerSec: 125_000 }, { psched: p }),
  },
  {
    name: 'class-add-htb-ceil-burst-quantum-prio',
    args: tc('class add dev eth0 parent 1: classid 1:2 htb rate 10mbit ceil 20mbit burst 15k cburst 30k quantum 1500 prio 3'),
    schema: 'tc',
    build: (d, p) =>
      classRequest(
        'add',
        {
          kind: 'htb',
          ifindex: d.eth0,
          parent: '1:',
          classid: '1:2',
          rateBytesPerSec: 1_250_000,
          ceilBytesPerSec: 2_500_000,
          burstBytes: 15 * 1024,
          cburstBytes: 30 * 1024,
          quantumBytes: 1500,
          prio: 3,
        },
        { psched: p },
      ),
  },
  {
    name: 'class-add-htb-rate64',
    args: tc('class add dev eth0 parent 1: classid 1:3 htb rate 40gbit ceil 50gbit burst 10mb cburst 20mb mtu 65536'),
    schema: 'tc',
    build: (d, p) =>
      classRequest(
        'add',
        {
          kind: 'htb',
          ifindex: d.eth0,
          parent: '1:',
          classid: '1:3',
          rateBytesPerSec: 5_000_000_000,
          ceilBytesPerSec: 6_250_000_000,
          burstBytes: 10 << 20,
          cburstBytes: 20 << 20,
          mtuBytes: 65536,
        },
        { psched: p },
      ),
    note: 'rates at or above 2^32 B/s: ratespec rate 0xffffffff plus TCA_HTB_RATE64/CEIL64',
  },
  {
    name: 'class-change-htb',
    args: tc('class change dev eth0 parent 1: classid 1:1 htb rate 2mbit ceil 4mbit'),
    schema: 'tc',
    build: (d, p) =>
      classRequest('change', { kind: 'htb', ifindex: d.eth0, parent: '1:', classid: '1:1', rateBytesPerSec: 250_000, ceilBytesPerSec: 500_000 }, { psched: p }),
  },
  {
    name: 'class-del',
    args: tc('class del dev eth0 classid 1:2'),
    schema: 'tc',
    build: (d) => classRequest('delete', { ifindex: d.eth0, classid: '1:2' }),
  },
  {
    name: 'qdisc-add-fq-codel-all-params',
    args: tc(
      'qdisc add dev eth0 parent 1:1 handle 10: fq_codel limit 1000 flows 512 quantum 1514 target 5ms interval 100ms ecn ce_threshold 2ms memory_limit 32mb drop_batch 32',
    ),
    schema: 'tc',
    build: (d) =>
      qdiscRequest('add', {
        kind: 'fq_codel',
        ifindex: d.eth0,
        parent: '1:1',
        handle: '10:',
        limitPackets: 1000,
        flows: 512,
        quantumBytes: 1514,
        intervalUs: 100_000,
        targetUs: 5000,
        ecn: true,
        ceThresholdUs: 2000,
        memoryLimitBytes: 32 << 20,
        dropBatch: 32,
      }),
    note: 'fq_codel is absent from the capture kernel: the bytes are what tc sent, the kernel refused them',
  },
  {
    name: 'qdisc-add-fq-codel-defaults-noecn',
    args: tc('qdisc add dev eth0 parent 1:1 fq_codel noecn'),
    schema: 'tc',
    build: (d) => qdiscRequest('add', { kind: 'fq_codel', ifindex: d.eth0, parent: '1:1', ecn: false }),
  },
  {
    name: 'qdisc-add-tbf',
    args: tc('qdisc add dev veth1 root handle 6: tbf rate 1mbit burst 10kb latency 50ms'),
    schema: 'tc',
    build: (d, p) =>
      qdiscRequest('add', { kind: 'tbf', ifindex: d.veth1, handle: '6:', rateBytesPerSec: 125_000, burstBytes: 10240, latencyUs: 50_000 }, { psched: p }),
  },
  {
    name: 'qdisc-replace-pfifo',
    args: tc('qdisc replace dev veth1 root pfifo limit 100'),
    schema: 'tc',
    build: (d) => qdiscRequest('replace', { kind: 'pfifo', ifindex: d.veth1, limitPackets: 100 }),
  },
  {
    name: 'qdisc-replace-bfifo',
    args: tc('qdisc replace dev veth1 root bfifo limit 10000'),
    schema: 'tc',
    build: (d) => qdiscRequest('replace', { kind: 'bfifo', ifindex: d.veth1, limitBytes: 10000 }),
  },
  {
    name: 'qdisc-del-root',
    args: tc('qdisc del dev veth1 root'),
    schema: 'tc',
    build: (d) => qdiscRequest('delete', { ifindex: d.veth1 }),
  },
  {
    name: 'qdisc-del-ingress',
    args: tc('qdisc del dev eth0 ingress'),
    schema: 'tc',
    build: (d) => qdiscRequest('delete', { ifindex: d.eth0, kind: 'ingress' }),
  },
  {
    name: 'filter-u32-ip-dst-dport-redirect',
    args: tc(
      'filter add dev eth0 parent ffff: protocol ip prio 1 u32 match ip dst 198.18.0.2/32 match ip dport 80 0xffff action mirred egress redirect dev veth1',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 1,
        protocol: 'ip',
        matches: [
          { type: 'ipDst', address: '198.18.0.2' },
          { type: 'dstPort', port: 80 },
        ],
        actions: [{ kind: 'mirred', direction: 'egress', action: 'redirect', ifindex: d.veth1 }],
      }),
  },
  {
    name: 'filter-u32-every-match-kind',
    args: tc(
      `filter add dev eth0 parent ffff: protocol ip prio 2 u32 match ip src 198.18.0.0/15 match ip protocol 6 0xff match ip sport 1024 0xfffc match ip dport 2000 0xffff match u8 5 0x0f at 0 match ether dst {MAC} match u16 0x1234 0xffff at 4 match u16 0x4000 0x4000 at 6 match u32 0x00000040 0x000000ff at 8 flowid 1:1`,
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 2,
        protocol: 'ip',
        classid: '1:1',
        matches: [
          { type: 'ipSrc', address: '198.18.0.0/15' },
          { type: 'ipProto', protocol: 'tcp' },
          { type: 'srcPort', port: 1024, mask: 0xfffc },
          { type: 'dstPort', port: 2000 },
          { type: 'ipHeaderLength', words: 5 },
          { type: 'ethDst', mac: MAC },
          { type: 'u16', value: 0x1234, mask: 0xffff, at: 4 },
          { type: 'u16', value: 0x4000, mask: 0x4000, at: 6 },
          { type: 'u32', value: 0x40, mask: 0xff, at: 8 },
        ],
      }),
    note: 'sport and dport share the word at 20; the two u16 matches at 4 and 6 share the word at 4; protocol and TTL share the word at 8',
  },
  {
    name: 'filter-u32-mesos-ip-classifier',
    args: tc(
      `filter add dev eth0 parent ffff: protocol ip prio 770 u32 match u8 5 0x0f at 0 match ether dst {MAC} match ip dst 198.18.0.2/32 match ip dport 31232 0xff00 action mirred egress redirect dev veth1`,
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 770,
        protocol: 'ip',
        matches: [
          { type: 'ipHeaderLength', words: 5 },
          { type: 'ethDst', mac: MAC },
          { type: 'ipDst', address: '198.18.0.2' },
          { type: 'dstPort', port: 31232, mask: 0xff00 },
        ],
        actions: [{ kind: 'mirred', action: 'redirect', ifindex: d.veth1 }],
      }),
  },
  {
    name: 'filter-u32-icmp-terminal-flowid',
    args: tc('filter add dev eth0 parent ffff: protocol ip prio 514 u32 match ip protocol 1 0xff match ip dst 198.18.0.2/32 flowid ffff:0'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 514,
        protocol: 'ip',
        classid: 'ffff:',
        matches: [
          { type: 'ipProto', protocol: 'icmp' },
          { type: 'ipDst', address: '198.18.0.2' },
        ],
      }),
  },
  {
    name: 'filter-u32-arp-two-mirrors',
    args: tc(
      'filter add dev eth0 parent ffff: protocol arp prio 258 u32 match u32 0 0 at 0 action mirred egress mirror dev veth1 action mirred egress mirror dev lo',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 258,
        protocol: 'arp',
        matches: [{ type: 'u32', value: 0, mask: 0, at: 0 }],
        actions: [
          { kind: 'mirred', action: 'mirror', ifindex: d.veth1 },
          { kind: 'mirred', action: 'mirror', ifindex: d.lo },
        ],
      }),
  },
  {
    name: 'filter-u32-all-ingress-redirect',
    args: tc('filter add dev eth0 parent ffff: protocol all prio 20 u32 match u32 0 0 at 0 action mirred ingress redirect dev veth1'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 20,
        protocol: 'all',
        matches: [{ type: 'u32', value: 0, mask: 0, at: 0 }],
        actions: [{ kind: 'mirred', direction: 'ingress', action: 'redirect', ifindex: d.veth1 }],
      }),
  },
  {
    name: 'filter-u32-ingress-mirror-and-egress-redirect',
    args: tc(
      'filter add dev eth0 parent ffff: protocol ip prio 21 u32 match ip dport 53 0xffff action mirred ingress mirror dev veth1 action mirred egress redirect dev lo',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 21,
        matches: [{ type: 'dstPort', port: 53 }],
        actions: [
          { kind: 'mirred', direction: 'ingress', action: 'mirror', ifindex: d.veth1 },
          { kind: 'mirred', direction: 'egress', action: 'redirect', ifindex: d.lo },
        ],
      }),
  },
  {
    name: 'filter-u32-bind-action-by-index',
    args: tc('filter add dev eth0 parent ffff: protocol 0x86dd prio 22 u32 match u16 0x1234 0xffff at 4 action mirred index 100'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 22,
        protocol: 0x86dd,
        matches: [{ type: 'u16', value: 0x1234, mask: 0xffff, at: 4 }],
        actions: [{ kind: 'mirred', bindIndex: 100 }],
      }),
  },
  {
    name: 'filter-u32-hash-table-create',
    args: tc('filter add dev eth0 parent ffff: protocol ip prio 10 handle 2: u32 divisor 256'),
    schema: 'tc',
    build: (d) => filterRequest('add', { kind: 'u32', ifindex: d.eth0, parent: 'ffff:', priority: 10, handle: '2:', divisor: 256 }),
  },
  {
    name: 'filter-u32-hash-table-link-hashkey',
    args: tc('filter add dev eth0 parent ffff: protocol ip prio 10 u32 link 2: hashkey mask 0x0000ff00 at 20 match u8 5 0x0f at 0'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 10,
        link: '2:',
        hashkey: { mask: 0x0000ff00, at: 20 },
        matches: [{ type: 'ipHeaderLength', words: 5 }],
      }),
  },
  {
    name: 'filter-u32-ip6-dst-next-header-dport-redirect',
    args: tc(
      'filter add dev eth0 parent ffff: protocol ipv6 prio 40 u32 match ip6 dst 2001:db8::1/128 match ip6 protocol 6 0xff match ip6 dport 80 0xffff action mirred egress redirect dev veth1',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 40,
        protocol: 'ipv6',
        matches: [
          { type: 'ip6Dst', address: '2001:db8::1' },
          { type: 'ip6NextHeader', protocol: 'tcp' },
          { type: 'ip6DstPort', port: 80 },
        ],
        actions: [{ kind: 'mirred', action: 'redirect', ifindex: d.veth1 }],
      }),
    note: 'a /128 is four full words at 24..36; the next header is byte 6 (the word at 4); dport at 42 is the low half of the word at 40',
  },
  {
    name: 'filter-u32-ip6-src-64-sport-block-flowid',
    args: tc('filter add dev eth0 parent ffff: protocol ipv6 prio 41 u32 match ip6 src 2001:db8:0:1::/64 match ip6 sport 40000 0xfff0 flowid 1:1'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 41,
        protocol: 'ipv6',
        classid: '1:1',
        matches: [
          { type: 'ip6Src', address: '2001:db8:0:1::/64' },
          { type: 'ip6SrcPort', port: 40000, mask: 0xfff0 },
        ],
      }),
    note: 'a /64 is two full words at 8 and 12, none for the words the prefix leaves out',
  },
  {
    name: 'filter-u32-ip6-src-52-dst-31-host-bits',
    args: tc(
      'filter add dev eth0 parent ffff: protocol ipv6 prio 42 u32 match ip6 src 2001:db8:abc:d123::/52 match ip6 dst 2001:db8::/31 match ip6 protocol 17 0xff',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 42,
        protocol: 'ipv6',
        matches: [
          { type: 'ip6Src', address: '2001:db8:abc:d123::/52' },
          { type: 'ip6Dst', address: '2001:db8::/31' },
          { type: 'ip6NextHeader', protocol: 'udp' },
        ],
      }),
    note: 'partial words: /52 is 8 full, 12 under 0xfffff000 (the host bits d123 → d000 dropped, as pack_key does); /31 is one word under 0xfffffffe',
  },
  {
    name: 'filter-u32-ip6-icmp-type',
    args: tc('filter add dev eth0 parent ffff: protocol ipv6 prio 43 u32 match ip6 protocol 58 0xff match ip6 icmp_type 128 0xff classid 1:2'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 43,
        protocol: 'ipv6',
        classid: '1:2',
        matches: [
          { type: 'ip6NextHeader', protocol: 'icmpv6' },
          { type: 'icmp6Type', icmpType: 128 },
        ],
      }),
    note: 'icmp_type is the byte at 40 (the high byte of the ports word), no nexthdr+',
  },
  {
    name: 'filter-u32-ip6-link-hashkey-offset-eat',
    args: tc('filter add dev eth0 parent ffff: protocol ipv6 prio 44 u32 link 100: hashkey mask 0x0000ff00 at 40 offset plus 20 eat match ip6 protocol 6 0xff'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 44,
        protocol: 'ipv6',
        link: '100:',
        hashkey: { mask: 0x0000ff00, at: 40 },
        offset: { plus: 20, eat: true },
        matches: [{ type: 'ip6NextHeader', protocol: 'tcp' }],
      }),
    note: 'sel.flags TC_U32_OFFSET|TC_U32_EAT, sel.off 20; the hash key is read at 40 before the eat',
  },
  {
    name: 'filter-u32-offset-variable-ihl-eat',
    args: tc('filter add dev eth0 parent ffff: protocol ip prio 45 u32 link 100: offset at 0 mask 0x0f00 shift 6 eat match ip protocol 6 0xff'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 45,
        link: '100:',
        offset: { at: 0, mask: 0x0f00, shift: 6, eat: true },
        matches: [{ type: 'ipProto', protocol: 'tcp' }],
      }),
    note: 'sel.flags TC_U32_VAROFFSET|TC_U32_EAT, offmask 0x0f00 (be16), offshift 6: the IPv4 header length in bytes',
  },
  {
    name: 'filter-u32-in-bucket-with-handle',
    args: tc(
      'filter add dev eth0 parent ffff: protocol ip prio 10 handle 2:7a:801 u32 ht 2:7a: match ip dport 31232 0xff00 action mirred egress redirect dev veth1',
    ),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 10,
        handle: { htid: 2, hash: 0x7a, node: 0x801 },
        ht: '2:7a:',
        matches: [{ type: 'dstPort', port: 31232, mask: 0xff00 }],
        actions: [{ kind: 'mirred', action: 'redirect', ifindex: d.veth1 }],
      }),
  },
  {
    name: 'filter-u32-chain-classid',
    args: tc('filter add dev eth0 parent ffff: protocol ip prio 30 chain 0 u32 match u32 0 0 at 0 classid 1:2'),
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 30,
        chain: 0,
        classid: '1:2',
        matches: [{ type: 'u32', value: 0, mask: 0, at: 0 }],
      }),
  },
  {
    name: 'filter-replace-u32-mirror-list',
    args: tc('filter replace dev eth0 parent ffff: protocol arp prio 258 handle 800::800 u32 match u32 0 0 at 0 action mirred egress mirror dev lo'),
    schema: 'tc',
    build: (d) =>
      filterRequest('replace', {
        kind: 'u32',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 258,
        protocol: 'arp',
        handle: '800::800',
        matches: [{ type: 'u32', value: 0, mask: 0, at: 0 }],
        actions: [{ kind: 'mirred', action: 'mirror', ifindex: d.lo }],
      }),
  },
  {
    name: 'filter-del-one-node',
    args: tc('filter del dev eth0 parent ffff: protocol ip prio 1 handle 800::800 u32'),
    schema: 'tc',
    build: (d) => filterRequest('delete', { kind: 'u32', ifindex: d.eth0, parent: 'ffff:', priority: 1, protocol: 'ip', handle: '800::800' }),
  },
  {
    name: 'filter-del-priority',
    args: tc('filter del dev eth0 parent ffff: prio 20'),
    schema: 'tc',
    build: (d) => filterRequest('delete', { ifindex: d.eth0, parent: 'ffff:', priority: 20, protocol: 0 }),
  },
  {
    name: 'filter-get-one-node',
    args: tc('filter get dev eth0 parent ffff: protocol ip prio 2 handle 800::800 u32'),
    schema: 'tc',
    messageType: RTM.GETTFILTER,
    build: (d) => filterGetRequest({ ifindex: d.eth0, parent: 'ffff:', priority: 2, protocol: 'ip', handle: '800::800', kind: 'u32' }),
  },
  {
    name: 'filter-bpf-da-ingress',
    args: [...tc('filter add dev eth0 parent ffff: protocol ip prio 5 handle 1 bpf bytecode'), DROP_UDP_5000, 'da'],
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'bpf',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 5,
        handle: 1,
        program: parseBytecode(DROP_UDP_5000),
        directAction: true,
      }),
    note: 'TCA_OPTIONS: TCA_BPF_OPS_LEN (u16), TCA_BPF_OPS, TCA_BPF_FLAGS (ACT_DIRECT)',
  },
  {
    name: 'filter-bpf-classid',
    args: [...tc('filter add dev eth0 parent ffff: protocol ip prio 6 handle 2 bpf bytecode'), formatBytecode(MATCH_UDP_5001), ...tc('classid 1:1')],
    schema: 'tc',
    build: (d) => filterRequest('add', { kind: 'bpf', ifindex: d.eth0, parent: 'ffff:', priority: 6, handle: 2, program: MATCH_UDP_5001, classid: '1:1' }),
    note: 'tc writes TCA_BPF_CLASSID where it reads it on its command line, the program after every option',
  },
  {
    name: 'filter-bpf-mirred-redirect',
    args: [
      ...tc('filter add dev eth0 parent ffff: protocol all prio 7 handle 0x10 bpf bytecode'),
      formatBytecode(MATCH_UDP_5001),
      ...tc('action mirred egress redirect dev veth1'),
    ],
    schema: 'tc',
    build: (d) =>
      filterRequest('add', {
        kind: 'bpf',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 7,
        protocol: 'all',
        handle: '0x10',
        program: MATCH_UDP_5001,
        actions: [{ kind: 'mirred', direction: 'egress', action: 'redirect', ifindex: d.veth1 }],
      }),
  },
  {
    name: 'filter-bpf-replace-classid-mirror',
    args: [
      ...tc('filter replace dev eth0 parent ffff: protocol ip prio 6 handle 2 bpf bytecode'),
      '1,6 0 0 4294967295',
      ...tc('classid 1:2 action mirred egress mirror dev lo'),
    ],
    schema: 'tc',
    build: (d) =>
      filterRequest('replace', {
        kind: 'bpf',
        ifindex: d.eth0,
        parent: 'ffff:',
        priority: 6,
        handle: 2,
        program: [ret(TC_ACT.UNSPEC)],
        classid: '1:2',
        actions: [{ kind: 'mirred', action: 'mirror', ifindex: d.lo }],
      }),
  },
  {
    name: 'filter-del-bpf',
    args: tc('filter del dev eth0 parent ffff: protocol ip prio 5 handle 1 bpf'),
    schema: 'tc',
    build: (d) => filterRequest('delete', { kind: 'bpf', ifindex: d.eth0, parent: 'ffff:', priority: 5, protocol: 'ip', handle: 1 }),
  },
  {
    name: 'filter-get-bpf',
    args: tc('filter get dev eth0 parent ffff: protocol ip prio 6 handle 2 bpf'),
    schema: 'tc',
    messageType: RTM.GETTFILTER,
    build: (d) => filterGetRequest({ kind: 'bpf', ifindex: d.eth0, parent: 'ffff:', priority: 6, protocol: 'ip', handle: 2 }),
  },
  {
    name: 'filter-basic-arp-mirror',
    args: tc('filter add dev eth0 parent ffff: protocol arp prio 259 basic action mirred egress mirror dev veth1'),
    schema: 'tc',
    note: 'basic is absent from the capture kernel; decode and encode only (the SDK builds u32 filters)',
  },
  {
    name: 'action-add-mirred-index',
    args: tc('actions add action mirred egress redirect dev veth1 index 100'),
    schema: 'action',
    build: (d) => actionRequest('add', { kind: 'mirred', action: 'redirect', ifindex: d.veth1, index: 100 }),
  },
  {
    name: 'action-get-mirred-index',
    args: tc('actions get action mirred index 100'),
    schema: 'action',
    messageType: RTM.GETACTION,
    build: () => actionGetRequest('mirred', 100),
  },
  {
    name: 'action-delete-mirred-index',
    args: tc('actions delete action mirred index 100'),
    schema: 'action',
    build: () => actionRequest('delete', { kind: 'mirred', index: 100 }),
  },
];

/** NLM_F_REQUEST | NLM_F_ACK plus the verb's flags, as a check of the builders' flags. */
export const requestFlags = (r: Request) => NLM_F.REQUEST | NLM_F.ACK | (r.flags ?? 0);
