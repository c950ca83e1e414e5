// What is left on the host of a container, from its saved record: its veth and its port filters on
// the host's eth0 and lo. Usage: node traces.mjs HOST_NETNS RECORD.json → {"veth":bool,"filters":n}
import { readFileSync } from 'node:fs';
import { dumpFilters } from '../../../dist/isolator/engine.js';
import { Rtnl } from '../../../dist/rtnl/index.js';

const [hostNs, recordFile] = process.argv.slice(2);
const rec = JSON.parse(readFileSync(recordFile, 'utf8'));
const r = Rtnl.open(hostNs);
try {
  const veth = (await r.links.find(rec.vethIndex)) !== undefined;
  let filters = 0;
  for (const dev of ['eth0', 'lo']) {
    const index = (await r.links.get(dev)).index;
    const handles = new Set((await dumpFilters(r.session, index, 0xffff0000)).map((f) => f.handle));
    filters += rec.hostFilters.filter((f) => f.dev === dev && handles.has(f.handle)).length;
  }
  console.log(JSON.stringify({ veth, filters, recorded: rec.hostFilters.length }));
} finally {
  r.close();
}
