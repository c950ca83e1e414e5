/** Polling, for what the kernel or another process finishes a little later. */

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wait until `fn` is true or `timeoutMs` passes; returns `fn`'s last answer. */
export async function until(fn: () => boolean, timeoutMs = 3000, intervalMs = 25): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(intervalMs);
  }
  return fn();
}

/**
 * Retry `fn` while it throws (or rejects), up to `timeoutMs` (e.g. the kernel frees u32 nodes and
 * actions in deferred work); returns its value, or throws its last error.
 */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 2000, intervalMs = 20): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(intervalMs);
    }
  }
}
