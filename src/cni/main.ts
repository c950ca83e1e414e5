#!/usr/bin/env node
/**
 * The CNI plugin alone, as an entry: what the tests' CNI launcher bundles (it starts faster than the
 * whole executable). The installed executable is ../app/main.ts (bins `portmap-isolator` and
 * `portmap-isolator-cni`), which runs the same cniMain() when CNI_COMMAND is set. See plugin.ts for
 * what each command does.
 */
import { cniMain } from './plugin.js';

await cniMain();
