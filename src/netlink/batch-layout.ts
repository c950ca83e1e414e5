/**
 * How a batch lies on the wire: its requests encoded one after another into one buffer, and that
 * buffer cut into chunks the kernel takes in one send each. No I/O; the session sends the chunks.
 */
import { NLM_F } from './constants.js';
import type { Request } from './session-types.js';
import { Writer } from './writer.js';

/** What an error report needs of a sent request. */
export type SentRequest = Pick<Request, 'type' | 'flags' | 'schema'>;

/** A batch encoded: the bytes, and per request its sequence number, where it ends, and what was sent. */
export interface EncodedBatch {
  buf: Buffer;
  seqs: number[];
  ends: number[];
  sent: SentRequest[];
}

/** The limits of one chunk (SessionOptions.batchMessages / batchBytes). */
export interface ChunkLimits {
  batchMessages: number;
  batchBytes: number;
}

/**
 * Encode `reqs` one after another, as they come (a generator's bodies die young); `write` frames
 * one message and returns its sequence number. Only what an error report needs is kept per request.
 */
export function encodeBatch(
  reqs: Iterable<Request>,
  ackEach: boolean,
  batchBytes: number,
  write: (w: Writer, req: Request, flags: number) => number,
): EncodedBatch {
  // An array's size is known; an iterable (a generator of many requests) starts at two chunks.
  const known = Array.isArray(reqs) ? (reqs as readonly Request[]).length * 128 : batchBytes * 2;
  const w = new Writer(Math.min(Math.max(known, 4096), batchBytes * 2));
  const seqs: number[] = [];
  const ends: number[] = [];
  const sent: SentRequest[] = [];
  for (const req of reqs) {
    seqs.push(write(w, req, NLM_F.REQUEST | (ackEach ? NLM_F.ACK : 0) | (req.flags ?? 0)));
    ends.push(w.pos);
    sent.push(req.schema ? { type: req.type, flags: req.flags, schema: req.schema } : { type: req.type, flags: req.flags });
  }
  return { buf: w.view(), seqs, ends, sent };
}

/** One past the last request of the chunk starting at request `first` (whose bytes start at `chunkStart`): within both limits, never empty. */
export function chunkEnd(first: number, ends: readonly number[], chunkStart: number, limits: ChunkLimits): number {
  let last = first + 1;
  while (last < ends.length && last - first < limits.batchMessages && ends[last]! - chunkStart <= limits.batchBytes) last++;
  return last;
}
