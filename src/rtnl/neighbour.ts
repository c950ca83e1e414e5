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

export interface NeighbourSpec {
  ifindex: number;
  address: string;
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

export const neighbourRequests = {
  add(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.EXCL, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  replace(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWNEIGH, flags: NLM_F.CREATE | NLM_F.REPLACE, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  delete(spec: NeighbourSpec): Request {
    const b = body(spec);
    return { type: RTM.DELNEIGH, flags: 0, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, b) };
  },
  dump(): Request {
    return { type: RTM.GETNEIGH, flags: 0, schema: neighMessage, encode: (w) => encodeBody(w, neighMessage, {}) };
  },
};

/** Neighbour verbs bound to one namespace's session. */
export class Neighbours {
  constructor(private readonly session: NetlinkSession) {}
  async list(filter: { ifindex?: number } = {}): Promise<Neighbour[]> {
    const all = await this.session.dump(neighbourRequests.dump(), { decode: (m) => toNeighbour(decodeBody(neighMessage, m.payload)) });
    return filter.ifindex === undefined ? all : all.filter((n) => n.ifindex === filter.ifindex);
  }
  async add(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.add(spec));
  }
  async replace(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.replace(spec));
  }
  async delete(spec: NeighbourSpec): Promise<void> {
    await this.session.request(neighbourRequests.delete(spec));
  }
}
