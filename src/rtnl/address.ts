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

/** An RTM_NEWADDR message (a dump's or a notification's) as an Address. */
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

/** An address to add, replace or delete (`ip addr add ADDRESS dev IFINDEX`). */
export interface AddressSpec {
  /** The interface's index. */
  ifindex: number;
  /** '198.18.0.2/24' (a bare address means a host prefix). */
  address: string;
  /** IPv4 only: the broadcast address. */
  broadcast?: string;
  /** IFA_LABEL, e.g. 'eth0:1' (at most 15 bytes). */
  label?: string;
  /** RT_SCOPE_* (default 0, universe). */
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

/**
 * The address requests, built but not sent (for NetlinkSession.request/requestSync/batch). They
 * throw InvalidArgumentError for bad input, before anything is sent.
 */
export const addressRequests = {
  /** RTM_NEWADDR with CREATE|EXCL: refused with EEXIST when the address is there. */
  add(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.EXCL, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  /** RTM_NEWADDR with CREATE|REPLACE: adds, or updates the address's attributes. */
  replace(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.NEWADDR, flags: NLM_F.CREATE | NLM_F.REPLACE, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  /** RTM_DELADDR: refused with EADDRNOTAVAIL when the address is not there. */
  delete(spec: AddressSpec): Request {
    const b = body(spec);
    return { type: RTM.DELADDR, flags: 0, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, b) };
  },
  /** RTM_GETADDR dump of one family's addresses, or all. */
  dump(family: 'inet' | 'inet6' | 'all' = 'all'): Request {
    const f = family === 'inet' ? AF.INET : family === 'inet6' ? AF.INET6 : AF.UNSPEC;
    return { type: RTM.GETADDR, flags: 0, schema: addressMessage, encode: (w) => encodeBody(w, addressMessage, { header: { family: f } }) };
  },
};

/**
 * Address verbs bound to one namespace's session (`Rtnl.addresses`). Bad input throws
 * InvalidArgumentError before anything is sent; the kernel's refusals reject with NetlinkError.
 */
export class Addresses {
  /** Verbs on `session`'s namespace. */
  constructor(private readonly session: NetlinkSession) {}

  /** The namespace's addresses, of one interface and/or family if asked (`ip addr show`). */
  async list(filter: { ifindex?: number; family?: 'inet' | 'inet6' } = {}): Promise<Address[]> {
    const all = await this.session.dump(addressRequests.dump(filter.family ?? 'all'), { decode: (m) => toAddress(decodeBody(addressMessage, m.payload)) });
    // A kernel without the family's handler (IPv6 disabled at boot) answers with every family's.
    return all.filter((a) => (filter.ifindex === undefined || a.ifindex === filter.ifindex) && (filter.family === undefined || a.family === filter.family));
  }
  /** Add an address (`ip addr add`); NetlinkError EEXIST when it is there. */
  async add(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.add(spec));
  }
  /** Add or update an address (`ip addr replace`). */
  async replace(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.replace(spec));
  }
  /** Delete an address (`ip addr del`); NetlinkError EADDRNOTAVAIL when it is not there. */
  async delete(spec: AddressSpec): Promise<void> {
    await this.session.request(addressRequests.delete(spec));
  }
}
