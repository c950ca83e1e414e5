import type { Netns, NetlinkSession, Request } from '../netlink/index.js';
import { NLA_F, NLM_F, NetlinkError, NetlinkSubscription, Writer, decodeBody, encodeBody } from '../netlink/index.js';
import { AF, IFF, IFLA_INET, IF_OPER, RTM, RTNLGRP } from './constants.js';
import type { LinkAttrs, LinkMessage, LinkStats64 } from './schemas/link.js';
import { linkMessage } from './schemas/link.js';
import { InvalidArgumentError, checkIfIndex, checkIfName, checkMac, checkMtu } from './validate.js';

/** A network interface as the kernel describes it. */
export interface Link {
  index: number;
  name: string;
  /** IFF_* bits. */
  flags: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Operational state as `ip` prints it: 'UP', 'DOWN', 'UNKNOWN', 'LOWERLAYERDOWN', … */
  operstate: string;
  mtu: number;
  /** ARPHRD_* link type. */
  type: number;
  address: string | undefined;
  broadcast: string | undefined;
  /** IFLA_INFO_KIND: 'veth', 'ifb', … (undefined for physical devices and lo). */
  kind: string | undefined;
  master: number | undefined;
  /** IFLA_LINK: the peer or lower device's index (in the namespace `linkNetnsid` names, if set). */
  linkIndex: number | undefined;
  linkNetnsid: number | undefined;
  txqlen: number | undefined;
  /** IFLA_STATS64: every counter a bigint. */
  stats: LinkStats64 | undefined;
  /** Every attribute as decoded. */
  attrs: LinkAttrs;
}

/** The Link view of a decoded RTM_NEWLINK body (the few fields callers use, plus every attribute). */
export function toLink(m: LinkMessage): Link {
  const a = m.attrs as LinkAttrs;
  return {
    index: m.header.index,
    name: a.ifname ?? '',
    flags: m.header.flags,
    up: (m.header.flags & IFF.UP) !== 0,
    operstate: IF_OPER[a.operstate ?? 0] ?? String(a.operstate),
    mtu: a.mtu ?? 0,
    type: m.header.type,
    address: a.address,
    broadcast: a.broadcast,
    kind: a.linkinfo?.kind,
    master: a.master,
    linkIndex: a.link,
    linkNetnsid: a.linkNetnsid,
    txqlen: a.txqlen,
    stats: a.stats64,
    attrs: a,
  };
}

/** A link by index or by name. */
export type LinkRef = number | string;

/** Where to put a device: a namespace handle (by fd) or a process (by pid). */
export type NetnsTarget = Netns | { pid: number };

function netnsAttrs(target: NetnsTarget | undefined): Pick<LinkAttrs, 'netNsFd' | 'netNsPid'> {
  if (!target) return {};
  if ('pid' in target && typeof target.pid === 'number') {
    if (!Number.isInteger(target.pid) || target.pid <= 0) throw new InvalidArgumentError(`invalid pid ${String(target.pid)}`);
    return { netNsPid: target.pid };
  }
  return { netNsFd: (target as Netns).fd };
}

function refHeader(ref: LinkRef): { header: { index: number }; attrs: LinkAttrs } {
  if (typeof ref === 'number') return { header: { index: checkIfIndex(ref) }, attrs: {} };
  return { header: { index: 0 }, attrs: { ifname: checkIfName(ref) } };
}

/** One end of a veth pair to create. */
export interface VethEnd {
  name: string;
  /** Interface index to create it with (the kernel picks one when omitted). */
  index?: number;
  /** MAC address, set in the creating message. */
  address?: string;
  mtu?: number;
  /**
   * Transmit and receive queues to create it with (ip's numtxqueues / numrxqueues). A veth made
   * without them gets one queue pair per possible CPU and is cut down to one in use right away,
   * which makes the kernel wait for an RCU grace period, per end, while it holds the rtnl lock.
   */
  numTxQueues?: number;
  numRxQueues?: number;
}

/** A veth pair to create: this end and its peer. */
export interface VethSpec extends VethEnd {
  /** The other end: created directly in `netns` when given (no move afterwards). */
  peer: VethEnd & { netns?: NetnsTarget };
  /** Create the near end in another namespace too. */
  netns?: NetnsTarget;
}

/** What `ip link set` changes; fields left out stay as they are. */
export interface LinkChange {
  up?: boolean;
  /**
   * Per-device IPv4 settings (IPV4_DEVCONF id → value), the netlink way to set
   * net.ipv4.conf.<dev>.* (accept_local, route_localnet, rp_filter, …) in the same message.
   */
  ipv4Devconf?: Record<number, number>;
  mtu?: number;
  address?: string;
  /** Rename (needs the link by index, or resolves it first). */
  name?: string;
  txqlen?: number;
  /** Move to another namespace. */
  netns?: NetnsTarget;
}

function endAttrs(end: VethEnd, what: string): LinkAttrs {
  const attrs: LinkAttrs = {};
  if (end.address !== undefined) attrs.address = checkMac(end.address, `${what} MAC address`);
  if (end.mtu !== undefined) attrs.mtu = checkMtu(end.mtu);
  if (end.numTxQueues !== undefined) attrs.numTxQueues = checkQueues(end.numTxQueues, `${what} numTxQueues`);
  if (end.numRxQueues !== undefined) attrs.numRxQueues = checkQueues(end.numRxQueues, `${what} numRxQueues`);
  attrs.ifname = checkIfName(end.name, `${what} name`);
  return attrs;
}

/** 1..4096 queues (the kernel's limit for a software device). */
function checkQueues(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError(`${what} must be an integer 1..4096, got ${String(n)}`);
  return n;
}

/** The queue counts of an end's attributes, in ip's order (tx, then rx). */
const queueAttrs = (a: LinkAttrs): LinkAttrs => ({
  ...(a.numTxQueues !== undefined ? { numTxQueues: a.numTxQueues } : {}),
  ...(a.numRxQueues !== undefined ? { numRxQueues: a.numRxQueues } : {}),
});

/**
 * IFLA_AF_SPEC { AF_INET { IFLA_INET_CONF { id: value … } } }. The kernel takes the settings as
 * nested attributes (and reports them as a flat array in dumps), so this payload is written here.
 */
export function ipv4DevconfSpec(conf: Record<number, number>): Buffer {
  const w = new Writer(64);
  const inet = w.beginAttr(AF.INET | NLA_F.NESTED);
  const nest = w.beginAttr(IFLA_INET.CONF | NLA_F.NESTED);
  for (const [id, value] of Object.entries(conf)) {
    const n = Number(id);
    if (!Number.isInteger(n) || n <= 0 || n > 0xff) throw new InvalidArgumentError(`IPV4_DEVCONF id must be 1..255, got ${id}`);
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new InvalidArgumentError(`IPV4_DEVCONF value must be a u32, got ${String(value)}`);
    const a = w.beginAttr(n);
    w.u32(value);
    w.endAttr(a);
  }
  w.endAttr(nest);
  w.endAttr(inet);
  return w.toBuffer();
}

/** Request builders: pure, validated before anything is sent, usable in a batch. */
export const linkRequests = {
  /** RTM_NEWLINK creating a veth pair, encoded the way `ip link add … type veth peer …` does. */
  addVeth(spec: VethSpec): Request {
    const attrs: LinkAttrs = { ...endAttrs(spec, 'veth'), ...netnsAttrs(spec.netns) };
    const peer: LinkAttrs = endAttrs(spec.peer, 'veth peer');
    const peerAttrs: LinkAttrs = {
      ...(peer.address ? { address: peer.address } : {}),
      ...(peer.mtu ? { mtu: peer.mtu } : {}),
      ...queueAttrs(peer),
      ...netnsAttrs(spec.peer.netns),
      ifname: peer.ifname!,
    };
    if (attrs.ifname === peerAttrs.ifname && !spec.peer.netns && !spec.netns)
      throw new InvalidArgumentError(`veth ends must have different names in one namespace (${attrs.ifname})`);
    const ordered: LinkAttrs = {
      ...(attrs.address ? { address: attrs.address } : {}),
      ...(attrs.mtu ? { mtu: attrs.mtu } : {}),
      ...queueAttrs(attrs),
      ...netnsAttrs(spec.netns),
      ifname: attrs.ifname!,
    };
    ordered.linkinfo = { kind: 'veth', data: { peer: { header: spec.peer.index ? { index: checkIfIndex(spec.peer.index) } : {}, attrs: peerAttrs } } };
    const header = spec.index ? { index: checkIfIndex(spec.index) } : {};
    return { type: RTM.NEWLINK, flags: NLM_F.CREATE | NLM_F.EXCL, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, { header, attrs: ordered }) };
  },

  /** RTM_NEWLINK changing an existing link, as `ip link set` does (up/down via ifi_change). */
  set(ref: LinkRef, change: LinkChange): Request {
    const { header, attrs } = refHeader(ref);
    const h = { ...header, flags: 0, change: 0 };
    if (change.up !== undefined) {
      h.change = IFF.UP;
      h.flags = change.up ? IFF.UP : 0;
    }
    if (change.mtu !== undefined) attrs.mtu = checkMtu(change.mtu);
    if (change.txqlen !== undefined) {
      if (!Number.isInteger(change.txqlen) || change.txqlen < 0 || change.txqlen > 0xffffffff)
        throw new InvalidArgumentError(`txqlen must be a non-negative integer, got ${String(change.txqlen)}`);
      attrs.txqlen = change.txqlen;
    }
    if (change.address !== undefined) attrs.address = checkMac(change.address);
    if (change.name !== undefined) {
      if (typeof ref !== 'number') throw new InvalidArgumentError('renaming needs the link by index');
      attrs.ifname = checkIfName(change.name);
    }
    Object.assign(attrs, netnsAttrs(change.netns));
    if (change.ipv4Devconf) attrs.afSpec = ipv4DevconfSpec(change.ipv4Devconf);
    return { type: RTM.NEWLINK, flags: 0, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, { header: h, attrs }) };
  },

  /** RTM_DELLINK. Deleting one end of a veth pair removes both. */
  delete(ref: LinkRef): Request {
    const body = refHeader(ref);
    return { type: RTM.DELLINK, flags: 0, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, body) };
  },

  /** RTM_GETLINK for one link. */
  get(ref: LinkRef): Request {
    const body = refHeader(ref);
    return { type: RTM.GETLINK, flags: 0, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, body) };
  },

  /** RTM_GETLINK dump of every link. */
  dump(): Request {
    return { type: RTM.GETLINK, flags: 0, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, {}) };
  },
};

const decodeLink = (m: { payload: Buffer }) => toLink(decodeBody(linkMessage, m.payload) as LinkMessage);

/** Link verbs bound to one namespace's session. */
export class Links {
  constructor(
    private readonly session: NetlinkSession,
    private readonly netns: Netns | undefined,
  ) {}

  list(): Promise<Link[]> {
    return this.session.dump(linkRequests.dump(), { decode: decodeLink });
  }

  /** One link; rejects with NetlinkError ENODEV when it does not exist. */
  async get(ref: LinkRef): Promise<Link> {
    const r = await this.session.request(linkRequests.get(ref), { decode: decodeLink });
    const link = r.replies[0];
    if (!link) throw new Error(`RTM_GETLINK ${String(ref)}: the kernel sent no link`);
    return link;
  }

  /** One link, or undefined when there is none. */
  async find(ref: LinkRef): Promise<Link | undefined> {
    try {
      return await this.get(ref);
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return undefined;
      throw e;
    }
  }

  async addVeth(spec: VethSpec): Promise<void> {
    await this.session.request(linkRequests.addVeth(spec));
  }

  async set(ref: LinkRef, change: LinkChange): Promise<void> {
    const target = change.name !== undefined && typeof ref === 'string' ? (await this.get(ref)).index : ref;
    await this.session.request(linkRequests.set(target, change));
  }

  async delete(ref: LinkRef): Promise<void> {
    await this.session.request(linkRequests.delete(ref));
  }

  /** Delete if present; returns whether something was deleted. */
  async deleteIfExists(ref: LinkRef): Promise<boolean> {
    try {
      await this.delete(ref);
      return true;
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'ENODEV') return false;
      throw e;
    }
  }

  /**
   * Resolve once the link is gone, watching RTM_DELLINK notifications (no polling). Resolves at
   * once if it does not exist; rejects after `timeoutMs`.
   */
  async waitRemoved(ref: LinkRef, timeoutMs = 10_000): Promise<void> {
    const sub = NetlinkSubscription.open(this.netns ? { netns: this.netns, groups: [RTNLGRP.LINK] } : { groups: [RTNLGRP.LINK] });
    try {
      const gone = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`link ${String(ref)} still exists after ${timeoutMs} ms`)), timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        sub.on('message', (m) => {
          if (m.type !== RTM.DELLINK) return;
          const l = decodeLink(m);
          if (l.index === ref || l.name === ref) done();
        });
        sub.on('overrun', () => void this.find(ref).then((l) => (l ? undefined : done()), reject));
        // Subscribed first, so a removal between here and the check cannot be missed.
        this.find(ref).then((l) => (l ? undefined : done()), reject);
      });
      sub.ref();
      await gone;
    } finally {
      sub.close();
    }
  }
}
