/**
 * Counters move with every packet (the lab's own IPv6 chatter — router solicitations, MLD
 * reports — goes through eth0 at times of the kernel's choosing): a snapshot is only comparable
 * when no packet crossed it. Read ours, then tc's, then ours again; keep the pair once the two
 * reads of ours agree, so tc's reading, taken between them, saw the same counters.
 */
export async function quietSnapshot<O, T>(readOurs: () => Promise<O>, readTheirs: () => T, counters: (o: O) => string): Promise<{ ours: O; theirs: T }> {
  let ours = await readOurs();
  for (let tries = 0; tries < 20; tries++) {
    const theirs = readTheirs();
    const again = await readOurs();
    if (counters(again) === counters(ours)) return { ours, theirs };
    ours = again;
  }
  throw new Error('the counters never stood still for one tc reading (20 tries)');
}
