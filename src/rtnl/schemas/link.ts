import {
  attrSet,
  bytes,
  nestedBytes,
  field,
  lladdr,
  messageSchema,
  nested,
  pad,
  s32,
  string,
  struct,
  subMessage,
  u32,
  u8,
  unterminatedString,
} from '../../netlink/index.js';
import type { AttrValues, DecodeOptions, MessageBody, Writer } from '../../netlink/index.js';

/** struct ifinfomsg. */
export const ifinfomsg = struct('ifinfomsg', [
  ['family', field.u8],
  pad(1),
  ['type', field.u16],
  ['index', field.s32],
  ['flags', field.u32],
  ['change', field.u32],
] as const);
export type IfInfo = ReturnType<typeof ifinfomsg.zero>;

/** struct rtnl_link_stats64: every counter a bigint. Older kernels send 192 bytes (no rx_otherhost_dropped). */
export const rtnlLinkStats64 = struct(
  'rtnl_link_stats64',
  [
    ['rxPackets', field.u64],
    ['txPackets', field.u64],
    ['rxBytes', field.u64],
    ['txBytes', field.u64],
    ['rxErrors', field.u64],
    ['txErrors', field.u64],
    ['rxDropped', field.u64],
    ['txDropped', field.u64],
    ['multicast', field.u64],
    ['collisions', field.u64],
    ['rxLengthErrors', field.u64],
    ['rxOverErrors', field.u64],
    ['rxCrcErrors', field.u64],
    ['rxFrameErrors', field.u64],
    ['rxFifoErrors', field.u64],
    ['rxMissedErrors', field.u64],
    ['txAbortedErrors', field.u64],
    ['txCarrierErrors', field.u64],
    ['txFifoErrors', field.u64],
    ['txHeartbeatErrors', field.u64],
    ['txWindowErrors', field.u64],
    ['rxCompressed', field.u64],
    ['txCompressed', field.u64],
    ['rxNohandler', field.u64],
    ['rxOtherhostDropped', field.u64],
  ] as const,
  { minSize: 184 },
);
export type LinkStats64 = ReturnType<typeof rtnlLinkStats64.zero>;

/** Link attributes (enum IFLA_*); IFLA_LINKINFO (18) is added below, as it nests this set again. */
const IFLA_DEFS = {
  address: [1, lladdr],
  broadcast: [2, lladdr],
  ifname: [3, string],
  mtu: [4, u32],
  link: [5, s32],
  qdisc: [6, string],
  stats: [7, bytes],
  cost: [8, bytes],
  priority: [9, bytes],
  master: [10, u32],
  wireless: [11, bytes],
  protinfo: [12, bytes],
  txqlen: [13, u32],
  map: [14, bytes],
  weight: [15, u32],
  operstate: [16, u8],
  linkmode: [17, u8],
  netNsPid: [19, u32],
  ifalias: [20, string],
  numVf: [21, u32],
  vfinfoList: [22, bytes],
  stats64: [23, rtnlLinkStats64],
  vfPorts: [24, bytes],
  portSelf: [25, bytes],
  afSpec: [26, bytes],
  group: [27, u32],
  netNsFd: [28, u32],
  extMask: [29, u32],
  promiscuity: [30, u32],
  numTxQueues: [31, u32],
  numRxQueues: [32, u32],
  carrier: [33, u8],
  physPortId: [34, bytes],
  carrierChanges: [35, u32],
  physSwitchId: [36, bytes],
  linkNetnsid: [37, s32],
  physPortName: [38, string],
  protoDown: [39, u8],
  gsoMaxSegs: [40, u32],
  gsoMaxSize: [41, u32],
  pad: [42, bytes],
  xdp: [43, bytes],
  event: [44, u32],
  newNetnsid: [45, s32],
  targetNetnsid: [46, s32],
  carrierUpCount: [47, u32],
  carrierDownCount: [48, u32],
  newIfindex: [49, s32],
  minMtu: [50, u32],
  maxMtu: [51, u32],
  propList: [52, bytes],
  permAddress: [54, lladdr],
  protoDownReason: [55, bytes],
  parentDevName: [56, string],
  parentDevBusName: [57, string],
  groMaxSize: [58, u32],
  tsoMaxSize: [59, u32],
  tsoMaxSegs: [60, u32],
  allmulti: [61, u32],
  devlinkPort: [62, nestedBytes],
  gsoIpv4MaxSize: [63, u32],
  groIpv4MaxSize: [64, u32],
} as const;

/** The veth peer: an ifinfomsg followed by IFLA attributes (VETH_INFO_PEER's payload). */
export interface VethPeer {
  header?: Partial<IfInfo>;
  attrs?: LinkAttrs;
}

/** Link attributes, including IFLA_LINKINFO with its kind-keyed data. */
export type LinkAttrs = AttrValues<typeof IFLA_DEFS> & { linkinfo?: LinkInfo };

/** IFLA_INFO_DATA of kind veth. */
export interface VethInfo {
  peer?: VethPeer;
  unknown?: Array<{ type: number; data: Buffer }>;
}

export interface LinkInfo {
  kind?: string;
  data?: VethInfo | Buffer;
  xstats?: Buffer;
  slaveKind?: string;
  slaveData?: Buffer;
  unknown?: Array<{ type: number; data: Buffer }>;
}

// VETH_INFO_PEER holds an ifinfomsg and the whole IFLA set again; IFLA is read lazily here.
const vethPeerCodec = {
  name: 'veth peer (ifinfomsg + IFLA)',
  encode(w: Writer, v: VethPeer) {
    ifinfomsg.encode(w, v.header ?? {});
    if (v.attrs) IFLA.encode(w, v.attrs as never);
  },
  decode(buf: Buffer, start: number, end: number, opts: DecodeOptions): VethPeer {
    const header = ifinfomsg.decode(buf, start, end);
    return { header, attrs: IFLA.decode(buf, start + ifinfomsg.size, end, opts) as LinkAttrs };
  },
  innerSet: () => undefined,
};

export const VETH_INFO = attrSet('VETH_INFO', { peer: [1, vethPeerCodec] } as const);

export const IFLA_INFO = attrSet('IFLA_INFO', {
  // iproute2 writes the kind without a terminator; the kernel accepts both and sends one back.
  kind: [1, unterminatedString],
  data: [2, subMessage('kind', { veth: nested(VETH_INFO) }, { selectorType: 1 })],
  xstats: [3, bytes],
  slaveKind: [4, string],
  slaveData: [5, bytes],
} as const);

export const IFLA = attrSet('IFLA', { ...IFLA_DEFS, linkinfo: [18, nested(IFLA_INFO)] } as const);

/** RTM_NEWLINK/DELLINK/GETLINK/SETLINK body. */
export const linkMessage = messageSchema(ifinfomsg, IFLA);
export type LinkMessage = MessageBody<IfInfo, typeof IFLA.defs>;
