import type { NetlinkSession, Request } from '../netlink/index.js';
import { NLM_F, decodeBody, encodeBody } from '../netlink/index.js';
import { AF, RTM } from './constants.js';
import type { AddressMessage } from './schemas/address.js';
import { addressMessage } from './schemas/address.js';
import { InvalidArgumentError, checkIfIndex, checkLabel, parsePrefix } from './validate.js';

/** An interface address. */
export interface Address {
  family: 'inet' | 'inet6';
  ifindex: number;
  /** IFA_LOCAL for IPv4 (the interface's own address), else IFA_ADDRESS. */
  address: string;
  prefixlen: number;
  /** 'address/prefixlen'. */
  cidr: string;
  /** IFA_ADDRESS: differs from `address` only on point-to-point links. */
  peer: string | undefined;
  broadcast: string | undefined;
  label: string | undefined;
  scope: number;
  /** IFA_FLAGS (or the header's 8 flag bits). */
  flags: number;
}

export function toAddress(m: AddressMessage): Address {
  const a = m.attrs;
  const address = a.local ?? a.address ?? '';
  return {
    family: m.header.family === AF.INET6 ? 'inet6' : 'inet',
    ifindex: m.header.index,
    address,
    prefixlen: m.header.prefixlen,
    cidr: `${address}/${m.header.prefixlen}`,
    peer: a.address,
    broadcast: a.broadcast,
    label: a.label,
    scope: m.header.scope,
    flags: a.flags ?? m.header.flags,
  };
}

export interface AddressSpec {
  ifindex: number;
  /** '198.18.0.2/24' (a bare address means a host prefix). */
  address: string;
  broadcast?: string;
  label?: string;
  scope?: number;
}

function body(spec: AddressSpec) {
  const p = parsePrefix(spec.address);
  const header = { family: p.family === 4 ? AF.INET : AF.INET6, prefixlen: p.prefixlen, flags: 0, scope: spec.scope ?? 0, index: checkIfIndex(spec.ifindex) };
  // `ip addr add` sends IFA_LOCAL then IFA_ADDRESS for IPv4, only IFA_ADDRESS for IPv6.
  const attrs: AddressMessage['attrs'] = p.family === 4 ? { local: p.address, address: p.address } : { address: p.address };
  if (spec.broadcast !== undefined) {
    if (p.family !== 4) throw new InvalidArgumentError('broadcast addresses are IPv4 only');
    attrs.broadcast = parsePrefix(spec.broadcast, 'broadcast').address;
  }
  if (spec.label !== undefined) attrs.label = checkLabel(spec.label);
  return { header, attrs };
}

export const addressRequests = {
  add(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.EXCL, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  replace(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.REPLACE, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  delete(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.DELADDR, flags: 0, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  dump(family: 'inet' | 'inet6' | 'all' = 'all'): Request {
    const f = family === 'inet' ? AF.INET : family === 'inet6' ? AF.INET6 : AF.UNSPEC;
    return { type: RTM.GETADDR, flags: 0, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, { header: { family: f } }) };
  },
};

/** Address verbs bound to one namespace's session. */
export class Addresses {
  constructor(private readonly session: NetlinkSession) {}

  async list(filter: { ifindex?: number; family?: 'inet' | 'inet6' } = {}): Promise<Address[]> {
    const all = await this.session.dump(addressRequests.dump(filter.family ?? 'all'), { decode: (m) => toAddress(decodeBody(addressMessage, m.payload)) });
    return filter.ifindex === undefined ? all : all.filter((a) => a.ifindex === filter.ifindex);
  }
  async add(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.add(spec));
  }
  async replace(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.replace(spec));
  }
  async delete(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.delete(spec));
  }
}
