/**
 * Creates one container and is killed (SIGKILL) by the engine's test hook right after the phase
 * named in PORTMAP_ISOLATOR_CRASH_AT: what a crash at that point leaves behind is for recover().
 */
import { Isolator } from '../../src/isolator/engine.js';
import { FIXTURE } from '../helpers/isolator-lab.js';

const [netns, workDir, id] = process.argv.slice(2);
const iso = await Isolator.open({ netns: netns!, workDir: workDir!, flags: FIXTURE, onWarning: () => undefined });
await iso.create({ id: id!, ports: '[31900-31999]' });
await iso.close();
process.exit(0);
