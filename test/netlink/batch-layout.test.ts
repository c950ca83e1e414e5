/** How a batch is laid out: requests back to back in one buffer, cut into chunks within both limits. */
import { describe, expect, it } from 'vitest';
import { chunkEnd, encodeBatch } from '../../src/netlink/batch-layout.js';
import type { Request } from '../../src/netlink/index.js';
import { NLM_F } from '../../src/netlink/index.js';

/** A request whose body is `n` bytes. */
const req = (n: number, flags = 0): Request => ({ type: 100, flags, encode: (w) => w.bytes(Buffer.alloc(n)) });

/** All chunks of a batch whose requests end at `ends`. */
function chunks(ends: number[], limits: { batchMessages: number; batchBytes: number }): number[][] {
  const out: number[][] = [];
  for (let first = 0; first < ends.length;) {
    const last = chunkEnd(first, ends, first ? ends[first - 1]! : 0, limits);
    out.push([first, last]);
    first = last;
  }
  return out;
}

describe('batch layout', () => {
  it('encodes requests back to back, one sequence number each, with the batch flags', () => {
    let seq = 40;
    const flags: number[] = [];
    const b = encodeBatch([req(4), req(8, NLM_F.CREATE)], true, 1 << 16, (w, r, f) => {
      flags.push(f);
      const start = w.beginMessage(r.type, f, ++seq, 0);
      r.encode?.(w);
      w.endMessage(start);
      return seq;
    });
    expect(b.seqs).toEqual([41, 42]);
    expect(b.ends).toEqual([20, 44]); // 16-byte headers, bodies 4 and 8
    expect(b.buf.length).toBe(44);
    expect(flags).toEqual([NLM_F.REQUEST | NLM_F.ACK, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE]);
    expect(b.sent.map((s) => s.flags)).toEqual([0, NLM_F.CREATE]);
  });

  it('cuts chunks at the message limit and at the byte limit, never empty', () => {
    const ends = [100, 200, 300, 400, 500];
    expect(chunks(ends, { batchMessages: 2, batchBytes: 1 << 20 })).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    expect(chunks(ends, { batchMessages: 1024, batchBytes: 250 })).toEqual([
      [0, 2],
      [2, 4],
      [4, 5],
    ]);
    // A single request larger than the byte limit still goes, alone.
    expect(chunks([1000, 1100], { batchMessages: 1024, batchBytes: 500 })).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });
});
