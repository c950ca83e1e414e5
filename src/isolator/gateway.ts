/**
 * The gateway's MAC in every container (data path v2). ARP requests for the host are no longer
 * copied to containers, and a container should not have to ask for the gateway at all (with a
 * thousand containers re-asking every ~30 s, the reply copies would grow with the square of their
 * number): each gets the host's entry for the gateway as a permanent neighbour at create. This
 * keeps those entries in step with the host's: recover compares the host's entry with the one
 * recorded in host.json, and a running agent watches the host's neighbour events. With IPv6
 * (--ipv6), the IPv6 gateway's entry is kept the same way, beside the IPv4 one.
 */
import { Netns } from '../netlink/index.js';
import { RtnlEvents } from '../rtnl/index.js';
import { gateway6NeighbourRequest, gatewayNeighbourRequest } from './container-setup.js';
import type { EngineCore } from './engine-core.js';
import { resolvedMac, resolvedNeighbour } from './host.js';

/** Which gateway: IPv4's ('inet') or IPv6's ('inet6'). */
export type GatewayFamily = 'inet' | 'inet6';

/** The host's gateway of a family and the MAC containers have for it (undefined: none). */
function gatewayOf(core: EngineCore, family: GatewayFamily): { address: string | undefined; mac: string | undefined } {
  const h = core.host;
  return family === 'inet' ? { address: h.gateway, mac: h.gatewayMac } : { address: h.ipv6?.gateway, mac: h.ipv6?.gatewayMac };
}

/** Put `mac` as the gateway's permanent neighbour in every ready container and spare; the ones that failed. */
export async function putGatewayEverywhere(core: EngineCore, mac: string, family: GatewayFamily = 'inet'): Promise<string[]> {
  if (family === 'inet') core.host.gatewayMac = mac;
  else if (core.host.ipv6) core.host.ipv6.gatewayMac = mac;
  else return [];
  const request = family === 'inet' ? gatewayNeighbourRequest : gateway6NeighbourRequest;
  const failed: string[] = [];
  const targets = [
    ...[...core.registry.records.values()].filter((r) => r.phase === 'ready').map((r) => ({ id: r.id, netns: r.netns, cEth0: r.vethIndex })),
    ...core.store.listSpares().map((s) => ({ id: `spare ${s.seq}`, netns: s.netns, cEth0: s.vethIndex })),
  ];
  for (const t of targets) {
    try {
      const ns = Netns.fromPath(t.netns);
      try {
        await core.inContainer(ns, (cs) => cs.request(request(core.host, t.cEth0)));
      } finally {
        ns.close();
      }
    } catch (e) {
      failed.push(`${t.id}: ${(e as Error).message}`);
    }
  }
  const rec = core.store.readHost();
  const key = family === 'inet' ? 'gatewayMac' : 'gateway6Mac';
  if (rec && rec[key] !== mac) core.store.writeHost({ ...rec, [key]: mac });
  return failed;
}

/** The host's current entry for the gateway, if it differs from what containers were given (host.json). */
export async function changedGatewayMac(core: EngineCore, family: GatewayFamily = 'inet'): Promise<string | undefined> {
  const { address, mac: given } = gatewayOf(core, family);
  if (!address) return undefined;
  const mac = await resolvedNeighbour(core.rtnl, core.host.eth0.index, address);
  const host = core.store.readHost();
  const recorded = (family === 'inet' ? host?.gatewayMac : host?.gateway6Mac) ?? given;
  return mac && mac !== recorded ? mac : undefined;
}

/**
 * Watch the host's neighbour table for the gateways' entries on eth0; `onChange` gets a new MAC
 * and its family (the caller puts it everywhere, under the lock). Overruns re-read the entries.
 * Returns the stop function.
 */
export function watchGatewayNeighbour(core: EngineCore, onChange: (mac: string, family: GatewayFamily) => void, onError: (e: Error) => void): () => void {
  const events = new RtnlEvents(['neighbour'], core.host.netns);
  const families: GatewayFamily[] = core.host.ipv6?.gateway ? ['inet', 'inet6'] : ['inet'];
  const check = (mac: string | undefined, family: GatewayFamily) => {
    if (mac && mac !== gatewayOf(core, family).mac) onChange(mac, family);
  };
  events.on('event', (e) => {
    if (e.kind !== 'neighbour' || e.action !== 'new') return;
    const n = e.neighbour;
    if (n.ifindex !== core.host.eth0.index) return;
    for (const family of families) if (n.family === family && n.address === gatewayOf(core, family).address) check(resolvedMac(n), family);
  });
  events.on('overrun', () => {
    for (const family of families)
      resolvedNeighbour(core.rtnl, core.host.eth0.index, gatewayOf(core, family).address!).then((mac) => check(mac, family), onError);
  });
  events.on('error', onError);
  return () => events.close();
}
