/**
 * The gateway's MAC in every container (data path v2). ARP requests for the host are no longer
 * copied to containers, and a container should not have to ask for the gateway at all (with a
 * thousand containers re-asking every ~30 s, the reply copies would grow with the square of their
 * number): each gets the host's entry for the gateway as a permanent neighbour at create. This
 * keeps those entries in step with the host's: recover compares the host's entry with the one
 * recorded in host.json, and a running agent watches the host's neighbour events.
 */
import { Netns } from '../netlink/index.js';
import { RtnlEvents } from '../rtnl/index.js';
import { gatewayNeighbourRequest } from './container-setup.js';
import type { EngineCore } from './engine-core.js';
import { resolvedMac, resolvedNeighbour } from './host.js';

/** Put `mac` as the gateway's permanent neighbour in every ready container and spare; the ones that failed. */
export async function putGatewayEverywhere(core: EngineCore, mac: string): Promise<string[]> {
  core.host.gatewayMac = mac;
  const failed: string[] = [];
  const targets = [
    ...[...core.registry.records.values()].filter((r) => r.phase === 'ready').map((r) => ({ id: r.id, netns: r.netns, cEth0: r.vethIndex })),
    ...core.store.listSpares().map((s) => ({ id: `spare ${s.seq}`, netns: s.netns, cEth0: s.vethIndex })),
  ];
  for (const t of targets) {
    try {
      const ns = Netns.fromPath(t.netns);
      try {
        await core.inContainer(ns, (cs) => cs.request(gatewayNeighbourRequest(core.host, t.cEth0)));
      } finally {
        ns.close();
      }
    } catch (e) {
      failed.push(`${t.id}: ${(e as Error).message}`);
    }
  }
  const rec = core.store.readHost();
  if (rec && rec.gatewayMac !== mac) core.store.writeHost({ ...rec, gatewayMac: mac });
  return failed;
}

/** The host's current entry for the gateway, if it differs from what containers were given (host.json). */
export async function changedGatewayMac(core: EngineCore): Promise<string | undefined> {
  const mac = await resolvedNeighbour(core.rtnl, core.host.eth0.index, core.host.gateway);
  const recorded = core.store.readHost()?.gatewayMac ?? core.host.gatewayMac;
  return mac && mac !== recorded ? mac : undefined;
}

/**
 * Watch the host's neighbour table for the gateway's entry on eth0; `onChange` gets a new MAC (the
 * caller puts it everywhere, under the lock). Overruns re-read the entry. Returns the stop function.
 */
export function watchGatewayNeighbour(core: EngineCore, onChange: (mac: string) => void, onError: (e: Error) => void): () => void {
  const events = new RtnlEvents(['neighbour'], core.host.netns);
  const check = (mac: string | undefined) => {
    if (mac && mac !== core.host.gatewayMac) onChange(mac);
  };
  events.on('event', (e) => {
    if (e.kind !== 'neighbour' || e.action !== 'new') return;
    const n = e.neighbour;
    if (n.family === 'inet' && n.ifindex === core.host.eth0.index && n.address === core.host.gateway) check(resolvedMac(n));
  });
  events.on('overrun', () => {
    resolvedNeighbour(core.rtnl, core.host.eth0.index, core.host.gateway).then(check, onError);
  });
  events.on('error', onError);
  return () => events.close();
}
