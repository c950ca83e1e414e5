import type { NetlinkSession, Request } from '../netlink/index.js';
import { NLM_F, decodeBody, encodeBody } from '../netlink/index.js';
import { AF, NUD, RTM } from './constants.js';
import type { NeighMessage } from './schemas/neigh.js';
import { neighMessage } from './schemas/neigh.js';
import { checkIfIndex, checkIp, checkMac } from './validate.js';

/** A neighbour (ARP / NDP) entry. */
export interface Neighbour {
  family: 'inet' | 'inet6';
  ifindex: number;
  address: string;
  lladdr: string | undefined;
  /** NUD_* bits. */
  state: number;
  permanent: boolean;
}

/** An RTM_NEWNEIGH message (a dump's or a notification's) as a Neighbour. */
export function toNeighbour(m: NeighMessage): Neighbour {
  return {
    family: m.header.family === AF.INET6 ? 'inet6' : 'inet',
    ifindex: m.header.ifindex,
    address: m.attrs.dst ?? '',
    lladdr: m.attrs.lladdr,
    state: m.header.state,
    permanent: (m.header.state & NUD.PERMANENT) !== 0,
  };
}

/** A neighbour entry to add, replace or delete (`ip neigh add ADDRESS lladdr MAC dev IFINDEX`). */
export interface NeighbourSpec {
  /** The interface's index. */
  ifindex: number;
  /** The neighbour's IPv4 or IPv6 address. */
  address: string;
  /** Its MAC address, 'aa:bb:cc:dd:ee:ff'. */
  lladdr?: string;
  /** Default NUD.PERMANENT. */
  state?: number;
}

function body(spec: NeighbourSpec) {
  const ip = checkIp(spec.address, 'neighbour address');
  const header = { family: ip.family === 4 ? AF.INET : AF.INET6, ifindex: checkIfIndex(spec.ifindex), state: spec.state ?? NUD.PERMANENT };
  const attrs: NeighMessage['attrs'] = { dst: ip.address };
  if (spec.lladdr !== undefined) attrs.lladdr = checkMac(spec.lladdr, 'neighbour MAC address');
  return { header, attrs };
}

/**
 * The neighbour requests, built but not sent (for NetlinkSession.request/requestSync/batch). They
 * throw InvalidArgumentError for bad input, before anything is sent.
 */
export const neighbourRequests = {
  /** RTM_NEWNEIGH with CREATE|EXCL: refused with EEXIST when the entry is there. */
  add(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.EXCL, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  /** RTM_NEWNEIGH with CREATE|REPLACE: adds, or updates the entry. */
  replace(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.REPLACE, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  /** RTM_DELNEIGH: refused with ENOENT when there is no such entry. */
  delete(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.DELNEIGH, flags: 0, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  /** RTM_GETNEIGH dump of every entry. */
  dump(): Request {
    return { type: RTM.GETNEIGH, flags: 0, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, {}) };
  },
};

/**
 * Neighbour verbs bound to one namespace's session (`Rtnl.neighbours`). Bad input throws
 * InvalidArgumentError before anything is sent; the kernel's refusals reject with NetlinkError.
 */
export class Neighbours {
  /** Verbs on `session`'s namespace. */
  constructor(private readonly session: NetlinkSession) {}
  /** The namespace's neighbour entries, of one interface if asked (`ip neigh show`). */
  async list(filter: { ifindex?: number } = {}): Promise<Neighbour[]> {
    const all = await this.session.dump(neighbourRequests.dump(), { decode: (m) => toNeighbour(decodeBody(neighMessage, m.payload)) });
    return filter.ifindex === undefined ? all : all.filter((n) => n.ifindex === filter.ifindex);
  }
  /** Add an entry (`ip neigh add`); NetlinkError EEXIST when it is there. */
  async add(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.add(spec));
  }
  /** Add or update an entry (`ip neigh replace`). */
  async replace(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.replace(spec));
  }
  /** Delete an entry (`ip neigh del`); NetlinkError ENOENT when there is none. */
  async delete(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.delete(spec));
  }
}
