import type { SessionOptions } from '../netlink/index.js';
import { NetlinkSession, Netns } from '../netlink/index.js';
import { Addresses } from './address.js';
import { RTM_NAMES } from './constants.js';
import { Links } from './link.js';
import { Neighbours } from './neighbour.js';
import { Routes } from './route.js';
import { Rules } from './rule.js';
import { LinkStatistics } from './stats.js';
import { readFileSync } from 'node:fs';
import { readSysctl, sysctlPath, writeSysctl, writeSysctlHere } from './sysctl.js';

/**
 * rtnetlink bound to one network namespace: links, link counters, addresses, routes, neighbours,
 * routing rules and sysctls.
 * There is no default handle; open one per namespace and close it when done. The verbs reject
 * with NetlinkError when the kernel refuses, and throw InvalidArgumentError for bad input before
 * anything is sent.
 */
export class Rtnl {
  /** Link verbs: list, get, addVeth, set (up, MTU, MAC, name, namespace), delete, waitRemoved. */
  readonly links: Links;
  /**
   * Link counters over RTM_GETSTATS (IFLA_STATS_LINK_64, the same LinkStats64 as `Link.stats`):
   * list() reads every link's in one small dump (a Map by ifindex), get/find one link's.
   */
  readonly stats: LinkStatistics;
  /** Address verbs: list, add, replace, delete. */
  readonly addresses: Addresses;
  /** Route verbs: list, add, replace, delete, lookup, defaultRoute. */
  readonly routes: Routes;
  /** Neighbour (ARP/NDP) verbs: list, add, replace, delete. */
  readonly neighbours: Neighbours;
  /** Routing policy rule verbs (`ip rule`): list, add, delete. */
  readonly rules: Rules;

  /** Whether close() also closes `netns` (opened here from a name or path). */
  private ownsNetns = false;

  /** A handle on an open session; close() closes the session (but not `netns`). */
  constructor(
    /** The request session: use it for Tc, or for requests of your own. */
    readonly session: NetlinkSession,
    /** The namespace this handle acts on (undefined: the caller's own). */
    readonly netns: Netns | undefined,
  ) {
    this.links = new Links(session, netns);
    this.stats = new LinkStatistics(session);
    this.addresses = new Addresses(session);
    this.routes = new Routes(session);
    this.neighbours = new Neighbours(session);
    this.rules = new Rules(session);
  }

  /**
   * Open a handle on `netns`: a Netns, a name (/run/netns/NAME) or an absolute path; the
   * caller's own namespace when omitted. Throws NetnsError naming the path when the namespace
   * does not exist (`/run/netns/foo: no such network namespace (ENOENT)`) or cannot be entered,
   * SocketError when the socket cannot be opened, TypeError for an invalid name.
   */
  static open(netns?: Netns | string, options: Omit<SessionOptions, 'netns' | 'typeNames'> = {}): Rtnl {
    const ns = typeof netns === 'string' ? Netns.parse(netns) : netns;
    let session: NetlinkSession;
    try {
      session = NetlinkSession.open({ ...options, netns: ns, typeNames: RTM_NAMES });
    } catch (e) {
      if (typeof netns === 'string') ns?.close();
      throw e;
    }
    const r = new Rtnl(session, ns);
    r.ownsNetns = typeof netns === 'string';
    return r;
  }

  /** A sysctl of this namespace, trimmed: `'net.ipv4.ip_forward'` or `['net', 'ipv4', 'conf', 'eth0', 'rp_filter']`. Throws the fs error (ENOENT for an unknown key). */
  readSysctl(key: string | readonly string[]): string {
    return this.netns ? readSysctl(this.netns, key) : readFileSync(sysctlPath(key), 'utf8').trim();
  }
  /** Set a sysctl of this namespace (key as for readSysctl). Throws the fs error (ENOENT, EINVAL for a bad value). */
  writeSysctl(key: string | readonly string[], value: string | number): void {
    if (this.netns) writeSysctl(this.netns, key, value);
    else writeSysctlHere(key, value);
  }

  /** Close the session (pending requests reject with ClosedError) and the namespace handle open() made. */
  close(): void {
    this.session.close();
    if (this.ownsNetns) this.netns?.close();
  }
}
