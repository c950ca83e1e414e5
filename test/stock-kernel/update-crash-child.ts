/**
 * Changes one container's ports and kills itself (SIGKILL, from IsolatorOptions.onPhase) right
 * after the phase named in PORTMAP_ISOLATOR_CRASH_AT ('add': the new filters exist, the record still
 * names the old ports): what a crash in the middle of an update leaves behind is for recover().
 * usage: node --import tsx update-crash-child.ts HOST_NETNS WORK_DIR ID PORTS FLAGS_JSON
 */
import { Isolator } from '../../src/isolator/engine.js';

const [netns, workDir, id, ports, flags] = process.argv.slice(2);
const crashAt = process.env.PORTMAP_ISOLATOR_CRASH_AT;
const onPhase = (phase: string) => phase === crashAt && process.kill(process.pid, 'SIGKILL');
const iso = await Isolator.open({ netns: netns!, workDir: workDir!, flags: JSON.parse(flags!), onWarning: () => undefined, onPhase });
await iso.update(id!, ports!);
await iso.close();
process.exit(0);
