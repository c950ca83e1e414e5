/**
 * A long-running agent's young generation, kept at V8's initial size.
 *
 * Node 20's V8 doubles the young generation's semi-spaces (up to 16 MB each) whenever enough
 * objects have survived scavenges since the last growth, and a process that is busy now and then
 * never gives that memory back: with 1000 containers the agent sat at ~106 MB resident, ~25 MB of
 * it young generation grown under create's short-lived objects. V8 reads the growth factor each
 * time it would grow, so setting it to 1 at run time keeps the semi-spaces at their initial 1 MB,
 * what `node --max-semi-space-size=…` would otherwise have to be started with.
 */
import { setFlagsFromString } from 'node:v8';

/** A Node flag of the user's own for the young generation, on the command line or in NODE_OPTIONS. */
const YOUNG_GENERATION_FLAG = /^--(max[-_]semi[-_]space[-_]size|semi[-_]space[-_]growth[-_]factor)(=|$)/;

/** Keep the semi-spaces from growing, unless the user chose a young-generation flag; returns whether it did. */
export function keepYoungGenerationSmall(): boolean {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => YOUNG_GENERATION_FLAG.test(a));
  if (given) return false;
  setFlagsFromString('--semi-space-growth-factor=1');
  return true;
}
