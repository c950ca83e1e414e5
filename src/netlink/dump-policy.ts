/**
 * What a dump does when the kernel flags it NLM_F_DUMP_INTR (the table changed while it was being
 * read, so the items may be inconsistent): try again, give up, or keep what came (DumpOptions).
 * The session sends each attempt; this decides whether there is another.
 */
import type { RequestInfo } from './errors.js';
import { DumpInterruptedError } from './errors.js';
import type { InterruptedPolicy } from './session-types.js';

/** One attempt of a dump: what it collected, whether it was interrupted, the request sent. */
export interface DumpAttempt<T> {
  items: T[];
  interrupted: boolean;
  info: RequestInfo;
}

/**
 * Run `attempt` under `policy` (default 'retry', up to `retries` more times, default 3): the first
 * uninterrupted attempt's items, or with 'accept' the first attempt's whatever it is; else throw
 * DumpInterruptedError with the last attempt's items.
 */
export async function dumpUnderPolicy<T>(attempt: () => Promise<DumpAttempt<T>>, policy: InterruptedPolicy = 'retry', retries = 3): Promise<T[]> {
  const attempts = policy === 'retry' ? 1 + retries : 1;
  let last: DumpAttempt<T> | undefined;
  for (let i = 0; i < attempts; i++) {
    const r = await attempt();
    if (!r.interrupted || policy === 'accept') return r.items;
    last = r;
  }
  throw new DumpInterruptedError(last!.info, last!.items, attempts);
}
