#!/usr/bin/env node
/**
 * The executable, bins `portmap-isolator` and `portmap-isolator-cni` (DESIGN.md §4): the CNI
 * plugin when the environment has CNI_COMMAND set (a runtime runs it from its CNI_PATH under the
 * configuration's `type`, usually `portmap-isolator`) or when it is run as `portmap-isolator-cni`
 * (which prints the plugin's help, ../cni/help.ts, for -h/--help or when run from a terminal
 * without CNI_COMMAND); else the command line. Only an entry: it runs when loaded, so nothing
 * imports it (the CLI is cli.ts, the plugin ../cni/plugin.ts). Each mode loads only its own modules.
 *
 * The shebang stays plain `env node`, which every env(1) runs (BusyBox's has no `-S`); the agent
 * sets the one V8 flag it wants itself (./young-generation.ts).
 */
import { basename } from 'node:path';

const invokedAs = basename(process.argv[1] ?? '');

if (process.env.CNI_COMMAND || /^portmap-isolator-cni(\.[cm]?js)?$/.test(invokedAs)) {
  const { cniMain } = await import('../cni/plugin.js');
  await cniMain(); // prints the outcome and exits with the plugin's status
} else {
  const { runCliAndExit } = await import('./cli.js');
  runCliAndExit(process.argv.slice(2));
}
