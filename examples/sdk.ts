/**
 * The README's SDK example, runnable: a veth pair with its peer created inside another namespace,
 * link changes, a listing with counters, and an ingress qdisc — in two throwaway namespaces.
 *
 *   npx tsx examples/sdk.ts      (as root)
 */
import { Netns, Rtnl, Tc, createNetns, removeNetns } from '../src/index.js';

const lab = `pmi-lab-${process.pid}-example`;
createNetns(lab).close();
createNetns(`${lab}-c1`).close();
try {
  const rtnl = Rtnl.open(lab); // bound to /run/netns/<lab>
  await rtnl.links.addVeth({ name: 'v0', peer: { name: 'eth0', netns: Netns.fromName(`${lab}-c1`) } });
  await rtnl.links.set('v0', { up: true, mtu: 1400 });
  console.log((await rtnl.links.list()).map((l) => `${l.index}: ${l.name} ${l.address} ${l.stats?.rxBytes}`));
  const tc = new Tc(rtnl.session);
  await tc.addQdisc({ kind: 'ingress', ifindex: (await rtnl.links.get('v0')).index });
  rtnl.close();
} finally {
  removeNetns(lab);
  removeNetns(`${lab}-c1`);
}
