#!/usr/bin/env node
/**
 * `portmap-isolator-cni`: the CNI plugin executable (CNI spec 1.0.0). Install it (or a symlink to
 * it) in the runtime's CNI_PATH under the name of the network configuration's `type`, usually
 * `portmap-isolator`. See plugin.ts for what each command does.
 */
import { cniMain } from './plugin.js';

await cniMain();
