/** `node --import ./bench/register.mjs bench/index.ts`: see bench/ts-hooks.mjs. */
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
