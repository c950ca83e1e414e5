import type { NetlinkSession, Request } from '../netlink/index.js';
import { NLM_F, decodeBody, encodeBody } from '../netlink/index.js';
import { AF, RTM, RTM_F, RTN, RTPROT, RT_SCOPE, RT_TABLE } from './constants.js';
import type { RouteMessage } from './schemas/route.js';
import { routeMessage } from './schemas/route.js';
import { InvalidArgumentError, checkIfIndex, checkIp, parsePrefix } from './validate.js';

/** A route. */
export interface Route {
  family: 'inet' | 'inet6';
  /** 'default' or 'address/prefixlen'. */
  dst: string;
  gateway: string | undefined;
  /** Output interface index. */
  oif: number | undefined;
  prefsrc: string | undefined;
  priority: number | undefined;
  table: number;
  protocol: number;
  scope: number;
  type: number;
}

/** An RTM_NEWROUTE message (a dump's, a lookup's or a notification's) as a Route. */
export function toRoute(m: RouteMessage): Route {
  const a = m.attrs;
  return {
    family: m.header.family === AF.INET6 ? 'inet6' : 'inet',
    dst: m.header.dstLen === 0 && !a.dst ? 'default' : `${a.dst}/${m.header.dstLen}`,
    gateway: a.gateway,
    oif: a.oif,
    prefsrc: a.prefsrc,
    priority: a.priority,
    table: a.table ?? m.header.table,
    protocol: m.header.protocol,
    scope: m.header.scope,
    type: m.header.type,
  };
}

/** A route to add, replace or delete (`ip route add DST via GATEWAY dev OIF …`). */
export interface RouteSpec {
  /** 'default', '198.18.5.0/24' or a host address. */
  dst: string;
  /** The next hop's address, of the destination's family. */
  gateway?: string;
  /** The output interface's index. A new route needs a gateway or an oif. */
  oif?: number;
  /** The preferred source address (`src`). */
  prefsrc?: string;
  /** The metric (`metric`/`priority`): lower wins. */
  priority?: number;
  /** Default RT_TABLE.MAIN (any table id up to 2^32-1). */
  table?: number;
  /** Default RTPROT.BOOT, as `ip route add`. */
  protocol?: number;
  /** Default: link scope without a gateway, universe with one (as `ip route add`). */
  scope?: number;
  /** RTN_* (default RTN.UNICAST). */
  type?: number;
}

function body(spec: RouteSpec, deleting: boolean) {
  const dst = spec.dst === 'default' ? undefined : parsePrefix(spec.dst, 'route destination');
  const gw = spec.gateway !== undefined ? checkIp(spec.gateway, 'gateway') : undefined;
  const family = dst?.family ?? gw?.family ?? 4;
  if (gw && gw.family !== family) throw new InvalidArgumentError('gateway and destination are of different address families');
  if (!gw && spec.oif === undefined && !deleting) throw new InvalidArgumentError('a route needs a gateway or an output interface');
  const table = spec.table ?? RT_TABLE.MAIN;
  if (!Number.isInteger(table) || table < 0 || table > 0xffffffff) throw new InvalidArgumentError(`invalid routing table ${String(table)}`);
  const header = {
    family: family === 4 ? AF.INET : AF.INET6,
    dstLen: dst?.prefixlen ?? 0,
    table: table < 256 ? table : RT_TABLE.UNSPEC,
    // `ip route del` sends protocol 0, scope NOWHERE and type 0: match any.
    protocol: deleting ? (spec.protocol ?? 0) : (spec.protocol ?? RTPROT.BOOT),
    scope: deleting ? (spec.scope ?? RT_SCOPE.NOWHERE) : (spec.scope ?? (gw ? RT_SCOPE.UNIVERSE : RT_SCOPE.LINK)),
    type: deleting ? (spec.type ?? 0) : (spec.type ?? RTN.UNICAST),
  };
  const attrs: RouteMessage['attrs'] = {};
  if (table >= 256) attrs.table = table;
  // The order `ip route add DST via GW metric N dev X` writes them in.
  if (dst) attrs.dst = dst.address;
  if (gw) attrs.gateway = gw.address;
  if (spec.priority !== undefined) attrs.priority = spec.priority;
  if (spec.oif !== undefined) attrs.oif = checkIfIndex(spec.oif);
  if (spec.prefsrc !== undefined) attrs.prefsrc = checkIp(spec.prefsrc, 'preferred source').address;
  return { header, attrs };
}

/**
 * The route requests, built but not sent (for NetlinkSession.request/requestSync/batch). They
 * throw InvalidArgumentError for bad input, before anything is sent.
 */
export const routeRequests = {
  /** RTM_NEWROUTE with CREATE|EXCL: refused with EEXIST when the route is there. */
  add(spec: RouteSpec): Request {
    const b = body(spec, false);
    return { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.EXCL, schema: routeMessage, encode: (w) => encodeBody(w, routeMessage, b) };
  },
  /** RTM_NEWROUTE with CREATE|REPLACE: adds, or replaces the route to `dst`. */
  replace(spec: RouteSpec): Request {
    const b = body(spec, false);
    return { type: RTM.NEWROUTE, flags: NLM_F.CREATE | NLM_F.REPLACE, schema: routeMessage, encode: (w) => encodeBody(w, routeMessage, b) };
  },
  /** RTM_DELROUTE: what is not given matches any (as `ip route del`); refused with ESRCH when no route matches. */
  delete(spec: RouteSpec): Request {
    const b = body(spec, true);
    return { type: RTM.DELROUTE, flags: 0, schema: routeMessage, encode: (w) => encodeBody(w, routeMessage, b) };
  },
  /** RTM_GETROUTE lookup of the route the kernel would use for `destination`, as `ip route get`. */
  lookup(destination: string): Request {
    const d = checkIp(destination, 'destination');
    const header = { family: d.family === 4 ? AF.INET : AF.INET6, dstLen: d.family === 4 ? 32 : 128, flags: RTM_F.LOOKUP_TABLE };
    return { type: RTM.GETROUTE, flags: 0, schema: routeMessage, encode: (w) => encodeBody(w, routeMessage, { header, attrs: { dst: d.address } }) };
  },
  /** RTM_GETROUTE dump of one family's routes (every table). */
  dump(family: 'inet' | 'inet6' = 'inet'): Request {
    const f = family === 'inet6' ? AF.INET6 : AF.INET;
    return { type: RTM.GETROUTE, flags: 0, schema: routeMessage, encode: (w) => encodeBody(w, routeMessage, { header: { family: f } }) };
  },
};

const decodeRoute = (m: { payload: Buffer }) => toRoute(decodeBody(routeMessage, m.payload));

/**
 * Route verbs bound to one namespace's session (`Rtnl.routes`). Bad input throws
 * InvalidArgumentError before anything is sent; the kernel's refusals reject with NetlinkError.
 */
export class Routes {
  /** Verbs on `session`'s namespace. */
  constructor(private readonly session: NetlinkSession) {}

  /** Routes of one table (default main; `'all'` for every table). */
  async list(filter: { family?: 'inet' | 'inet6'; table?: number | 'all' } = {}): Promise<Route[]> {
    const all = await this.session.dump(routeRequests.dump(filter.family), { decode: decodeRoute });
    const table = filter.table ?? RT_TABLE.MAIN;
    // A kernel without the family's handler (IPv6 disabled at boot) answers with every family's.
    const family = filter.family ?? 'inet';
    return all.filter((r) => r.family === family && (table === 'all' || r.table === table));
  }
  /** Add a route (`ip route add`); NetlinkError EEXIST when it is there, ENETUNREACH when the gateway is not reachable. */
  async add(spec: RouteSpec): Promise<void> {
    await this.session.request(routeRequests.add(spec));
  }
  /** Add or replace a route (`ip route replace`). */
  async replace(spec: RouteSpec): Promise<void> {
    await this.session.request(routeRequests.replace(spec));
  }
  /** Delete a route (`ip route del`); NetlinkError ESRCH when none matches. */
  async delete(spec: RouteSpec): Promise<void> {
    await this.session.request(routeRequests.delete(spec));
  }
  /** The route the kernel picks for a destination (oif, gateway, prefsrc), as `ip route get`; NetlinkError ENETUNREACH when there is none. */
  async lookup(destination: string): Promise<Route> {
    const r = await this.session.request(routeRequests.lookup(destination), { decode: decodeRoute });
    if (!r.replies[0]) throw new Error(`RTM_GETROUTE ${destination}: the kernel sent no route`);
    return r.replies[0];
  }
  /** The main table's default route, if any (the lowest priority wins). */
  async defaultRoute(family: 'inet' | 'inet6' = 'inet'): Promise<Route | undefined> {
    const routes = (await this.list({ family })).filter((r) => r.dst === 'default' && r.type === RTN.UNICAST);
    return routes.sort((a, b) => (a.priority ?? 0) - (b.priority ?? 0))[0];
  }
}
