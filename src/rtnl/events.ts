import { EventEmitter } from 'node:events';
import type { Netns } from '../netlink/index.js';
import { NetlinkSubscription, decodeBody } from '../netlink/index.js';
import type { Address } from './address.js';
import { toAddress } from './address.js';
import { RTM, RTNLGRP } from './constants.js';
import type { Link } from './link.js';
import { toLink } from './link.js';
import type { Neighbour } from './neighbour.js';
import { toNeighbour } from './neighbour.js';
import type { Route } from './route.js';
import { toRoute } from './route.js';
import { addressMessage } from './schemas/address.js';
import type { LinkMessage } from './schemas/link.js';
import { linkMessage } from './schemas/link.js';
import { neighMessage } from './schemas/neigh.js';
import { routeMessage } from './schemas/route.js';

/** A decoded rtnetlink notification. */
export type RtnlEvent =
  | { kind: 'link'; action: 'new' | 'del'; link: Link }
  | { kind: 'address'; action: 'new' | 'del'; address: Address }
  | { kind: 'route'; action: 'new' | 'del'; route: Route }
  | { kind: 'neighbour'; action: 'new' | 'del'; neighbour: Neighbour };

/** The notification groups RtnlEvents can join (RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, …). */
export type RtnlGroup = 'link' | 'ipv4-address' | 'ipv6-address' | 'ipv4-route' | 'ipv6-route' | 'neighbour';

const GROUPS: Record<RtnlGroup, number> = {
  link: RTNLGRP.LINK,
  'ipv4-address': RTNLGRP.IPV4_IFADDR,
  'ipv6-address': RTNLGRP.IPV6_IFADDR,
  'ipv4-route': RTNLGRP.IPV4_ROUTE,
  'ipv6-route': RTNLGRP.IPV6_ROUTE,
  neighbour: RTNLGRP.NEIGH,
};

/** The events RtnlEvents emits, with their listeners' arguments. */
export interface RtnlEventMap {
  /** A decoded notification. */
  event: [e: RtnlEvent];
  /** Notifications were lost: re-list what you track. */
  overrun: [];
  /** A notification did not decode (DecodeError), or receiving failed (SocketError). */
  error: [err: Error];
}

/** Link/address/route/neighbour changes in one namespace, decoded. Does not keep the process alive. */
export class RtnlEvents extends EventEmitter<RtnlEventMap> {
  private readonly sub: NetlinkSubscription;

  /** Join `groups` in `netns` (default: the caller's). Throws NetnsError or SocketError when the socket cannot be opened. */
  constructor(groups: readonly RtnlGroup[], netns?: Netns) {
    super();
    this.sub = NetlinkSubscription.open({ groups: groups.map((g) => GROUPS[g]), ...(netns ? { netns } : {}) });
    this.sub.on('overrun', () => this.emit('overrun'));
    this.sub.on('error', (e) => this.emit('error', e));
    this.sub.on('message', (m) => {
      let e: RtnlEvent | undefined;
      try {
        switch (m.type) {
          case RTM.NEWLINK:
          case RTM.DELLINK:
            e = { kind: 'link', action: m.type === RTM.NEWLINK ? 'new' : 'del', link: toLink(decodeBody(linkMessage, m.payload) as LinkMessage) };
            break;
          case RTM.NEWADDR:
          case RTM.DELADDR:
            e = { kind: 'address', action: m.type === RTM.NEWADDR ? 'new' : 'del', address: toAddress(decodeBody(addressMessage, m.payload)) };
            break;
          case RTM.NEWROUTE:
          case RTM.DELROUTE:
            e = { kind: 'route', action: m.type === RTM.NEWROUTE ? 'new' : 'del', route: toRoute(decodeBody(routeMessage, m.payload)) };
            break;
          case RTM.NEWNEIGH:
          case RTM.DELNEIGH:
            e = { kind: 'neighbour', action: m.type === RTM.NEWNEIGH ? 'new' : 'del', neighbour: toNeighbour(decodeBody(neighMessage, m.payload)) };
            break;
        }
      } catch (err) {
        this.emit('error', err as Error);
        return;
      }
      if (e) this.emit('event', e);
    });
  }

  /** Keep the process alive while listening. */
  ref(): this {
    this.sub.ref();
    return this;
  }
  /** Let the process exit while listening (the default). */
  unref(): this {
    this.sub.unref();
    return this;
  }
  /** Stop listening and close the socket. */
  close(): void {
    this.sub.close();
  }
}
