import type { SessionOptions } from '../netlink/index.js';
import { NetlinkSession, Netns } from '../netlink/index.js';
import { Addresses } from './address.js';
import { RTM_NAMES } from './constants.js';
import { Links } from './link.js';
import { Neighbours } from './neighbour.js';
import { Routes } from './route.js';
import { readFileSync } from 'node:fs';
import { readSysctl, sysctlPath, writeSysctl, writeSysctlHere } from './sysctl.js';

/**
 * rtnetlink bound to one network namespace: links, addresses, routes, neighbours and sysctls.
 * There is no default handle; open one per namespace and close it when done.
 */
export class Rtnl {
  readonly links: Links;
  readonly addresses: Addresses;
  readonly routes: Routes;
  readonly neighbours: Neighbours;

  /** Whether close() also closes `netns` (opened here from a name or path). */
  private ownsNetns = false;

  constructor(
    readonly session: NetlinkSession,
    /** The namespace this handle acts on (undefined: the caller's own). */
    readonly netns: Netns | undefined,
  ) {
    this.links = new Links(session, netns);
    this.addresses = new Addresses(session);
    this.routes = new Routes(session);
    this.neighbours = new Neighbours(session);
  }

  /** Open a handle on `netns` (a Netns, or a name/path in the CLI's --netns spelling). */
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

  readSysctl(key: string | readonly string[]): string {
    return this.netns ? readSysctl(this.netns, key) : readFileSync(sysctlPath(key), 'utf8').trim();
  }
  writeSysctl(key: string | readonly string[], value: string | number): void {
    if (this.netns) writeSysctl(this.netns, key, value);
    else writeSysctlHere(key, value);
  }

  close(): void {
    this.session.close();
    if (this.ownsNetns) this.netns?.close();
  }
}
