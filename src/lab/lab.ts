/**
 * The lab (DESIGN.md §6): network namespaces made for one run of the tests, the demo, the examples
 * or the benchmarks, built with the SDK only (no `ip`, no `tc`). A **host** namespace with its own
 * veth `eth0` (198.18.0.2/24, default route via 198.18.0.1) and `lo` up; a **world** namespace with
 * the other end of eth0 (198.18.0.1/24), which plays the network and the gateway; more namespaces
 * on demand. Every name is `pmi-lab-<pid>-<n>-<role>`, pinned under /run/netns (so `ip -n NAME`
 * and `ip netns exec NAME` work), and carries the creating process's pid, so a run can sweep the
 * labs of dead runs without touching the live labs of runs beside it. The root namespace is never
 * touched.
 */
import { readdirSync } from 'node:fs';
import { NETNS_RUN_DIR, Netns, createNetns, decodeBody, removeNetns } from '../netlink/index.js';
import type { LinkMessage } from '../rtnl/index.js';
import { Rtnl, addressRequests, linkMessage, linkRequests, routeRequests, toLink } from '../rtnl/index.js';

/** Every lab namespace's name starts with this. */
export const LAB_PREFIX = 'pmi-lab-';
/** The lab host's address on its eth0. */
export const HOST_IP = '198.18.0.2';
/** The world's end of the host's eth0: the host's default gateway. */
export const GATEWAY = '198.18.0.1';
const PREFIX_LEN = 24;

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
function configure(rtnl: Rtnl, address: string): void {
  const s = rtnl.session;
  const eth0 = s.requestSync(linkRequests.get('eth0'), { decode: (m) => toLink(decodeBody(linkMessage, m.payload) as LinkMessage) }).replies[0];
  if (!eth0) throw new Error('RTM_GETLINK eth0: the kernel sent no link');
  s.requestSync(addressRequests.add({ ifindex: eth0.index, address: `${address}/${PREFIX_LEN}` }));
  s.requestSync(linkRequests.set(eth0.index, { up: true }));
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
      this.wire();
    } catch (e) {
      this.destroy();
      throw e;
    }
  }

  private wire(): void {
    inNamespace(this.host, (r) => r.session.requestSync(linkRequests.set('lo', { up: true })));
    if (!this.world) return;
    inNamespace(this.world, (r) => r.session.requestSync(linkRequests.set('lo', { up: true })));
    const world = Netns.fromName(this.world);
    try {
      inNamespace(this.host, (r) => r.session.requestSync(linkRequests.addVeth({ name: 'eth0', peer: { name: 'eth0', netns: world } })));
    } finally {
      world.close();
    }
    inNamespace(this.world, (r) => configure(r, GATEWAY));
    inNamespace(this.host, (r) => {
      configure(r, HOST_IP);
      r.session.requestSync(routeRequests.add({ dst: 'default', gateway: GATEWAY }));
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
