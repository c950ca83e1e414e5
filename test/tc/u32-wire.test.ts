/**
 * The direct u32 filter writer (src/tc/u32-wire.ts) against the declarative encoder: the same
 * bytes for every spec filterMessage() accepts, over thousands of random specs; and the fallback
 * for messages it does not cover. (Both are checked against tc's own bytes in golden.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import { Writer, encodeBody } from '../../src/netlink/index.js';
import { filterMessage, filterRequest } from '../../src/tc/index.js';
import type { ActionSpec, U32FilterSpec, U32Match } from '../../src/tc/index.js';
import { tcMessage } from '../../src/tc/schemas/tca.js';
import { writeU32FilterBody } from '../../src/tc/u32-wire.js';
import { rng } from '../helpers/rng.js';

function randomSpec(next: () => number): U32FilterSpec {
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  const ip = () => `198.${18 + (next() % 2)}.${next() % 256}.${next() % 256}`;
  const spec: U32FilterSpec = {
    kind: 'u32',
    ifindex: 1 + (next() % 5000),
    parent: pick(['ffff:', '1:', 'root', 0xffff0000, '1:10']),
    priority: 1 + (next() % 0xfffe),
    protocol: pick(['ip', 'arp', 'all', 0x86dd] as const),
  };
  if (next() % 8 === 0) {
    // a hash table
    return { ...spec, handle: ((1 + (next() % 0xffe)) << 20) >>> 0, divisor: 1 << (next() % 9) };
  }
  const ht = ((1 + (next() % 0xffe)) << 20) >>> 0;
  if (next() % 2) spec.handle = (ht | ((next() % 256) << 12) | (1 + (next() % 0xfff))) >>> 0;
  if (next() % 2) spec.ht = spec.handle !== undefined ? ((spec.handle as number) & 0xfffff000) >>> 0 : (ht | ((next() % 256) << 12)) >>> 0;
  if (next() % 5 === 0) spec.chain = next() % 100;
  const matches: U32Match[] = [];
  const kinds = next() % 5;
  for (let i = 0; i < kinds; i++) {
    switch (next() % 10) {
      case 0:
        matches.push({ type: 'ipDst', address: `${ip()}/${next() % 33}` });
        break;
      case 1:
        matches.push({ type: 'ipSrc', address: ip() });
        break;
      case 2: {
        const bits = next() % 17;
        const mask = (0xffff << bits) & 0xffff;
        matches.push({ type: 'dstPort', port: next() & 0xffff & mask, mask });
        break;
      }
      case 3:
        matches.push({ type: 'ipProto', protocol: pick(['tcp', 'udp', 'icmp', 47] as const) });
        break;
      case 4:
        matches.push({ type: 'ethDst', mac: '02:00:c6:12:00:01' });
        break;
      case 5:
        matches.push({ type: 'u8', value: next() & 0x0f, mask: 0x0f, at: next() % 64 });
        break;
      case 6:
        matches.push({
          type: pick(['ip6Src', 'ip6Dst'] as const),
          address: `2001:db8:${(next() & 0xffff).toString(16)}::${(next() & 0xffff).toString(16)}/${next() % 129}`,
        });
        break;
      case 7:
        matches.push({ type: 'ip6NextHeader', protocol: pick(['tcp', 'udp', 'icmpv6', 0] as const) });
        break;
      case 8:
        matches.push(next() % 2 ? { type: 'ip6DstPort', port: 31232, mask: 0xff00 } : { type: 'icmp6Type', icmpType: 128 });
        break;
      default:
        matches.push({ type: 'u32', value: 0, mask: 0, at: 0 });
    }
  }
  // Random matches may contradict each other; keep only the ones that pack.
  spec.matches = [];
  for (const m of matches) {
    try {
      filterMessage('add', { ...spec, matches: [...spec.matches, m] });
      spec.matches.push(m);
    } catch {
      /* a conflicting key */
    }
  }
  const acts = next() % 4;
  if (acts) {
    spec.actions = Array.from({ length: acts }, (): ActionSpec =>
      next() % 4 === 0
        ? { kind: 'mirred', bindIndex: 1 + (next() % 1000) }
        : {
            kind: 'mirred',
            action: pick(['redirect', 'mirror'] as const),
            direction: pick(['egress', 'ingress'] as const),
            ifindex: 1 + (next() % 9999),
            ...(next() % 3 ? {} : { index: 1 + (next() % 50) }),
          },
    );
  }
  if (next() % 4 === 0) spec.classid = pick(['1:1', '1:10', 0x10020]);
  if (next() % 6 === 0) spec.terminal = true;
  if (next() % 6 === 0) {
    spec.link = ((1 + (next() % 0xffe)) << 20) >>> 0;
    spec.hashkey = { mask: 0x0000ff00, at: 20 };
    if (next() % 2) spec.offset = pick([{ plus: 20, eat: true }, { at: 0, mask: 0x0f00, shift: 6, eat: true }, { plus: 4 }]);
  }
  return spec;
}

const generic = (body: ReturnType<typeof filterMessage>) => {
  const w = new Writer(64);
  encodeBody(w, tcMessage, body);
  return w.toBuffer();
};

describe('the direct u32 filter writer', () => {
  it('writes exactly what the declarative encoder writes, for 5000 random specs and every verb', () => {
    const next = rng(0x5eed_0432);
    let covered = 0;
    for (let i = 0; i < 5000; i++) {
      const spec = randomSpec(next);
      const verb = (['add', 'replace', 'change'] as const)[i % 3]!;
      const body = filterMessage(verb, spec);
      const w = new Writer(16); // small on purpose: the writer must grow the buffer itself
      w.u32(0xdeadbeef); // and write at a non-zero position
      expect(writeU32FilterBody(w, body)).toBe(true);
      covered++;
      const direct = w.toBuffer().subarray(4);
      expect(direct.toString('hex'), JSON.stringify(spec)).toBe(generic(body).toString('hex'));
    }
    expect(covered).toBe(5000);
  });

  it('is what filterRequest() sends', () => {
    const spec: U32FilterSpec = {
      kind: 'u32',
      ifindex: 3,
      parent: 'ffff:',
      priority: 7,
      handle: '800::801',
      matches: [
        { type: 'ipDst', address: '198.18.0.2/32' },
        { type: 'dstPort', port: 31000 },
      ],
      actions: [{ kind: 'mirred', action: 'redirect', ifindex: 9 }],
    };
    const w = new Writer(16);
    filterRequest('add', spec).encode!(w);
    expect(w.toBuffer().toString('hex')).toBe(generic(filterMessage('add', spec)).toString('hex'));
  });

  it('declines, writing nothing, what it does not cover (the caller then uses the declarative encoder)', () => {
    const body = filterMessage('add', { kind: 'u32', ifindex: 3, parent: 'ffff:', priority: 7, matches: [] });
    const odd = [
      { ...body, attrs: { ...body.attrs, unknown: [{ type: 99, data: Buffer.from([1, 2, 3, 4]) }] } },
      { ...body, attrs: { ...body.attrs, options: { ...(body.attrs!.options as object), flags: 8 } } },
      { ...body, attrs: { ...body.attrs, kind: 'basic' } },
    ];
    for (const b of odd) {
      const w = new Writer(16);
      expect(writeU32FilterBody(w, b as typeof body)).toBe(false);
      expect(w.pos).toBe(0);
    }
  });
});
