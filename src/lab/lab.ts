/**
 * The lab (DESIGN.md §6): network namespaces made for one run of the tests, the demo, the examples
 * or the benchmarks, built with the SDK only (no `ip`, no `tc`). A **host** namespace with its own
 * veth `eth0` (198.18.0.2/24, default route via 198.18.0.1) and `lo` up; a **world** namespace with
 * the other end of eth0 (198.18.0.1/24), which plays the network and the gateway; more namespaces
 * on demand. With `ipv6`, eth0 also gets 2001:2::2/64 (world: 2001:2::1/64, the IPv6 gateway; 2001:2::/48
 * is IPv6's benchmarking range), without DAD. Every name is `pmi-lab-<pid>-<n>-<role>`, pinned under /run/netns (so `ip -n NAME`
 * and `ip netns exec NAME` work), and carries the creating process's pid, so a run can sweep the
 * labs of dead runs without touching the live labs of runs beside it. The root namespace is never
 * touched.
 */
import { readdirSync } from 'node:fs';
import { NETNS_RUN_DIR, Netns, createNetns, decodeBody, removeNetns } from '../netlink/index.js';
import type { LinkMessage } from '../rtnl/index.js';
import { Rtnl, addressRequests, linkMessage, linkRequests, routeRequests, toLink, writeSysctl } from '../rtnl/index.js';

/** Every lab namespace's name starts with this. */
export const LAB_PREFIX = 'pmi-lab-';
/** The lab host's address on its eth0. */
export const HOST_IP = '198.18.0.2';
/** The world's end of the host's eth0: the host's default gateway. */
export const GATEWAY = '198.18.0.1';
const PREFIX_LEN = 24;
/** With LabOptions.ipv6: the host's IPv6 address on eth0, and the world's (its IPv6 gateway). */
export const HOST_IP6 = '2001:2::2';
export const GATEWAY6 = '2001:2::1';
const PREFIX_LEN6 = 64;

let counter = 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove the lab namespaces whose creating process is gone; returns their names. */
export function sweepStaleLabs(): string[] {
  let names: string[] = [];
  try {
    names = readdirSync(NETNS_RUN_DIR);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(LAB_PREFIX)) continue;
    const pid = Number(name.slice(LAB_PREFIX.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    try {
      if (removeNetns(name)) removed.push(name);
    } catch {
      /* raced with another sweeper */
    }
  }
  return removed;
}

/** Options of the Lab constructor. */
export interface LabOptions {
  /** Build the world namespace and the host's eth0 (default true). */
  world?: boolean;
  /** Give eth0 and the world IPv6 addresses too, and the host an IPv6 default route (default false). */
  ipv6?: boolean;
}

/** Run synchronous rtnetlink requests in namespace `ns` (by name). */
function inNamespace(ns: string, fn: (rtnl: Rtnl) => void): void {
  const rtnl = Rtnl.open(ns);
  try {
    fn(rtnl);
  } finally {
    rtnl.close();
  }
}

/** eth0's address and state, and lo up, as `ip addr add …; ip link set … up` would. */
function configure(rtnl: Rtnl, address: string, address6?: string): void {
  const s = rtnl.session;
  const eth0 = s.requestSync(linkRequests.get('eth0'), { decode: (m) => toLink(decodeBody(linkMessage, m.payload) as LinkMessage) }).replies[0];
  if (!eth0) throw new Error('RTM_GETLINK eth0: the kernel sent no link');
  s.requestSync(addressRequests.add({ ifindex: eth0.index, address: `${address}/${PREFIX_LEN}` }));
  // (No DAD: the address is usable at once, not tentative for a second.)
  if (address6) s.requestSync(addressRequests.add({ ifindex: eth0.index, address: `${address6}/${PREFIX_LEN6}` }));
  s.requestSync(linkRequests.set(eth0.index, { up: true }));
}

/** IPv6 on eth0 without DAD, before its address is added. */
function noDad(ns: string): void {
  const n = Netns.fromName(ns);
  try {
    writeSysctl(n, ['net', 'ipv6', 'conf', 'eth0', 'accept_dad'], '0');
  } finally {
    n.close();
  }
}

/**
 * A simulated host (its own eth0 198.18.0.2/24 and lo, default route via 198.18.0.1) and a
 * "world" namespace holding the other end of eth0 (198.18.0.1/24). Built synchronously; destroy()
 * removes every namespace of the lab (call it in finally/afterAll).
 */
export class Lab {
  /** `pmi-lab-<pid>-<n>`: the prefix of every namespace of this lab. */
  readonly id: string;
  /** The host namespace's name. */
  readonly host: string;
  /** The world namespace's name ('' without a world). */
  readonly world: string;
  private readonly namespaces: string[] = [];

  constructor(opts: LabOptions = {}) {
    this.id = `${LAB_PREFIX}${process.pid}-${++counter}`;
    try {
      this.host = this.addNamespace('host');
      this.world = opts.world === false ? '' : this.addNamespace('world');
      this.wire(opts.ipv6 ?? false);
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private wire(ipv6: boolean): void {
    inNamespace(this.host, (r) => r.session.requestSync(linkRequests.set('lo', { up: true })));
    if (!this.world) return;
    inNamespace(this.world, (r) => r.session.requestSync(linkRequests.set('lo', { up: true })));
    const world = Netns.fromName(this.world);
    try {
      inNamespace(this.host, (r) => r.session.requestSync(linkRequests.addVeth({ name: 'eth0', peer: { name: 'eth0', netns: world } })));
    } finally {
      world.close();
    }
    if (ipv6) for (const ns of [this.world, this.host]) noDad(ns);
    inNamespace(this.world, (r) => configure(r, GATEWAY, ipv6 ? GATEWAY6 : undefined));
    inNamespace(this.host, (r) => {
      configure(r, HOST_IP, ipv6 ? HOST_IP6 : undefined);
      r.session.requestSync(routeRequests.add({ dst: 'default', gateway: GATEWAY }));
      if (ipv6) r.session.requestSync(routeRequests.add({ dst: 'default', gateway: GATEWAY6 }));
    });
  }

  /** Another namespace of this lab, `<id>-<role>` (removed with it); returns its name. */
  addNamespace(role: string): string {
    const name = `${this.id}-${role}`;
    createNetns(name).close();
    this.namespaces.push(name);
    return name;
  }

  /** The pinned path of a lab namespace. */
  path(ns: string): string {
    return `${NETNS_RUN_DIR}/${ns}`;
  }

  /** Remove every namespace of the lab (idempotent, never throws). */
  destroy(): void {
    for (const ns of this.namespaces.splice(0).reverse()) {
      try {
        removeNetns(ns);
      } catch {
        /* already gone */
      }
    }
  }
}
