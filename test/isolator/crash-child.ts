/**
 * Runs one engine operation and kills itself (SIGKILL, from IsolatorOptions.onPhase) right after
 * the phase named in PORTMAP_ISOLATOR_CRASH_AT: what a crash at that point leaves is for recover().
 *   crash-child.ts NETNS WORK_DIR ID            create ID with ports [31900-31999]
 *   crash-child.ts NETNS WORK_DIR ID PORTS      update ID to PORTS
 * PMI_TEST_WARM_POOL=N opens the engine with a warm pool of N (a create then takes a spare).
 */
import { Isolator } from '../../src/isolator/engine.js';
import { FIXTURE } from '../../src/lab/index.js';

const [netns, workDir, id, ports] = process.argv.slice(2);
const crashAt = process.env.PORTMAP_ISOLATOR_CRASH_AT;
const onPhase = (phase: string) => phase === crashAt && process.kill(process.pid, 'SIGKILL');
const iso = await Isolator.open({
  netns: netns!,
  workDir: workDir!,
  flags: FIXTURE,
  onWarning: () => undefined,
  warmPool: Number(process.env.PMI_TEST_WARM_POOL ?? 0),
  onPhase,
});
if (ports) await iso.update(id!, ports);
else await iso.create({ id: id!, ports: '[31900-31999]' });
await iso.close();
process.exit(0);
