/** Reading the results of a netlink batch. */
import type { BatchResult } from '../netlink/index.js';
import { NetlinkError } from '../netlink/index.js';

/** The first failed request of a batch, past errors whose code is in `ignore`. */
export function firstFailure(results: BatchResult[], ignore: string[] = []): Error | undefined {
  for (const r of results) {
    if (!r.ok && !(r.error instanceof NetlinkError && ignore.includes(r.error.code))) return r.error;
  }
  return undefined;
}
