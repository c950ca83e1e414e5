/**
 * The README's SDK example, as pasted there: a throwaway namespace and a "container" namespace of
 * its own, a veth pair with its peer created directly in the container, link changes, a listing
 * with counters, and an ingress qdisc; both namespaces are removed in `finally`. Needs root;
 * touches no existing namespace.
 *
 *   sudo npx tsx examples/sdk.ts
 */
import { Rtnl, Tc, createNetns, removeNetns } from 'portmap-isolator';

const lab = `pmi-lab-${process.pid}-sdk`; // new namespaces: /run/netns/<lab> and <lab>-c1
createNetns(lab).close();
try {
  const c1 = createNetns(`${lab}-c1`); // a Netns handle, as Netns.fromName('c1') gives for an existing one
  const rtnl = Rtnl.open(lab); // bound to /run/netns/<lab>
  await rtnl.links.addVeth({ name: 'v0', peer: { name: 'eth0', netns: c1 } });
  await rtnl.links.set('v0', { up: true, mtu: 1400 });
  for (const l of await rtnl.links.list()) console.log(`${l.index}: ${l.name} mtu ${l.mtu} ${l.address} rx ${l.stats?.rxBytes} bytes`);
  const tc = new Tc(rtnl.session);
  const v0 = await rtnl.links.get('v0');
  await tc.addQdisc({ kind: 'ingress', ifindex: v0.index });
  console.log(`qdiscs on v0: ${(await tc.listQdiscs(v0.index)).map((q) => q.kind).join(', ')}`);
  rtnl.close();
  c1.close();
} finally {
  removeNetns(lab);
  removeNetns(`${lab}-c1`);
}
