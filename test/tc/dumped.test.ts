/**
 * Dumped u32 filters keep their message's bytes and decode `raw` (and their actions' `raw` and
 * `stats`) only when read: what they give must be what decoding the message eagerly gives, from
 * a private copy (the receive buffer is reused), and unchanged by a second read.
 */
import { describe, expect, it } from 'vitest';
import { Writer, decodeBody, encodeBody } from '../../src/netlink/index.js';
import { decodeFilterPayload, isU32, parseAction, statsFromAttrs, tcMessage } from '../../src/tc/index.js';
import type { U32Attrs, U32Filter } from '../../src/tc/index.js';
import { loadGolden } from '../helpers/golden.js';

const vectors = loadGolden('tc');
const body = (name: string) => Buffer.from(vectors.find((v) => v.name === name)!.hex, 'hex').subarray(16);

describe('dumped u32 filters decode their wire form lazily', () => {
  it('raw, the actions’ raw and stats equal the eager decoding, from a copy of the bytes', () => {
    const payload = Buffer.from(body('reply-filter-u32-mirred'));
    const eager = decodeBody(tcMessage, payload);
    const f = decodeFilterPayload(payload) as U32Filter;
    expect(isU32(f)).toBe(true);
    payload.fill(0); // the session reuses its receive buffer
    expect(f.raw).toEqual(eager);
    expect(f.raw).toBe(f.raw); // decoded once
    const w = new Writer();
    encodeBody(w, tcMessage, f.raw);
    expect(w.toBuffer()).toEqual(body('reply-filter-u32-mirred'));

    const act = (eager.attrs.options as U32Attrs).act!;
    expect(f.actions).toHaveLength(act.length);
    const plain = parseAction(act[0]!);
    const a = f.actions[0]!;
    expect(a.raw).toEqual(act[0]);
    expect(a.stats).toEqual(statsFromAttrs(act[0]!.stats));
    expect(a.stats).toBe(a.stats);
    expect({ ...a, raw: a.raw, stats: a.stats }).toEqual(plain);
    expect(a).toMatchObject({ kind: 'mirred', action: 'redirect', direction: 'egress' });
  });

  it('own properties are the typed fields only (raw is not copied by a spread or JSON)', () => {
    const f = decodeFilterPayload(body('reply-filter-u32-mirred')) as U32Filter;
    expect(Object.keys(f)).not.toContain('raw');
    expect(Object.keys(f).slice(0, 9)).toEqual(['kind', 'ifindex', 'parent', 'priority', 'protocol', 'handle', 'matches', 'terminal', 'actions']);
    expect(JSON.parse(JSON.stringify(f, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))).toMatchObject({
      kind: 'u32',
      priority: f.priority,
      actions: [{ kind: 'mirred', ifindex: f.actions[0]!.ifindex }],
    });
  });

  it('a message from another kind or without options is not held lazily', () => {
    const bpf = decodeFilterPayload(body('reply-filter-bpf-da'));
    expect(bpf.kind).toBe('bpf');
    expect(Object.keys(bpf)).toContain('raw');
  });
});
