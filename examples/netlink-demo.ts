/**
 * The netlink core in a lab: makes a throwaway network namespace, builds a veth pair in it over
 * netlink, lists the links as the SDK decodes them next to what `ip` says, shows a kernel refusal
 * with its extended-ack text, and removes everything. Needs root; touches no existing namespace.
 *
 *   sudo npx tsx examples/netlink-demo.ts
 */
import { execFileSync } from 'node:child_process';
import { NLM_F, NetlinkError, NetlinkSession, RTM, RTM_NAMES, createNetns, decodeBody, encodeBody, linkMessage, removeNetns } from 'portmap-isolator';

const name = `pmi-lab-${process.pid}-demo`;
const ns = createNetns(name);
let session: NetlinkSession | undefined;
let ok = true;
try {
  session = NetlinkSession.open({ netns: ns, typeNames: RTM_NAMES });
  console.log(`lab namespace ${name} created`);
  await session.request({
    type: RTM.NEWLINK,
    flags: NLM_F.CREATE | NLM_F.EXCL,
    schema: linkMessage,
    encode: (w) =>
      encodeBody(w, linkMessage, {
        attrs: {
          address: '02:00:00:00:00:01',
          mtu: 1400,
          ifname: 'demo0',
          linkinfo: { kind: 'veth', data: { peer: { attrs: { ifname: 'demo1', address: '02:00:00:00:00:02' } } } },
        },
      }),
  });
  const links = await session.dump(
    { type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, {}) },
    { decode: (m) => decodeBody(linkMessage, m.payload) },
  );
  console.log('\nlinks, decoded by the SDK:');
  for (const l of links) console.log(`  ${l.header.index}: ${l.attrs.ifname} mtu ${l.attrs.mtu} ${l.attrs.address} ${l.attrs.linkinfo?.kind ?? ''}`);
  const theirs = JSON.parse(execFileSync('ip', ['-j', '-n', name, 'link', 'show'], { encoding: 'utf8' })) as Array<{
    ifname: string;
    mtu: number;
    address: string;
  }>;
  const same = theirs.every((t) => links.some((l) => l.attrs.ifname === t.ifname && l.attrs.mtu === t.mtu && l.attrs.address === t.address));
  console.log(`\n\`ip -j link\` agrees: ${same ? 'yes' : 'NO'}`);
  ok &&= same;
  try {
    await session.request({
      type: RTM.NEWLINK,
      flags: NLM_F.CREATE | NLM_F.EXCL,
      schema: linkMessage,
      encode: (w) => encodeBody(w, linkMessage, { attrs: { ifname: 'demo2', linkinfo: { kind: 'no-such-kind' } } }),
    });
    ok = false;
  } catch (e) {
    console.log(`\na refused request: ${(e as NetlinkError).message}`);
    ok &&= e instanceof NetlinkError && e.code === 'EOPNOTSUPP';
  }
} finally {
  session?.close();
  ns.close();
  removeNetns(name);
  console.log(`\nlab namespace ${name} removed`);
}
console.log(ok ? '\ndemo passed' : '\ndemo FAILED');
process.exit(ok ? 0 : 1);
