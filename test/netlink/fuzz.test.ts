/**
 * Fuzzing: random and mutated bytes into every decoder only ever raise DecodeError, and whatever
 * decodes re-encodes to something that decodes to the same value (a fixpoint).
 */
import { describe, expect, it } from 'vitest';
import {
  DecodeError,
  NLMSGERR,
  Writer,
  decodeBody,
  encodeBody,
  parseDonePayload,
  parseErrorPayload,
  parseMessages,
  withInterpretedDecoders,
  type MessageSchema,
} from '../../src/netlink/index.js';
import { actionMessage, tcMessage } from '../../src/tc/index.js';
import { loadGolden } from '../helpers/golden.js';
import { SCHEMAS } from '../golden/schemas.js';
import { decodeLinkStats64, statsMessage } from '../../src/rtnl/index.js';
import { rng } from '../helpers/rng.js';

function mutate(src: Buffer, next: () => number): Buffer {
  const b = Buffer.from(src);
  const edits = 1 + (next() % 4);
  for (let i = 0; i < edits; i++) {
    const at = next() % b.length;
    switch (next() % 4) {
      case 0:
        b[at] = next() & 0xff;
        break;
      case 1:
        b[at] = b[at]! ^ (1 << (next() % 8));
        break;
      case 2:
        if (at + 1 < b.length) b.writeUInt16LE(next() & 0xffff, at); // lengths and types
        break;
      default:
        return b.subarray(0, at); // truncation
    }
  }
  return b;
}

function onlyDecodeErrors(fn: () => unknown): unknown {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof DecodeError)) throw new Error(`decoder threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return undefined;
  }
}

function reencode(schema: MessageSchema, value: any): Buffer {
  const w = new Writer();
  encodeBody(w, schema, value);
  return w.toBuffer();
}

const seeds = [...loadGolden('netlink'), ...loadGolden('rtnl')];
const ROUNDS = 4000;

describe('fuzzing decoders', () => {
  it.each(Object.keys(SCHEMAS))('message bodies (%s): mutated golden vectors and random bytes', (name) => {
    const schema = SCHEMAS[name as keyof typeof SCHEMAS] as MessageSchema;
    const next = rng(0x5eed + name.length);
    const own = seeds.filter((v) => v.schema === name);
    expect(own.length).toBeGreaterThan(0);
    let decoded = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const base = Buffer.from(own[i % own.length]!.hex, 'hex').subarray(16);
      const input = i % 5 === 0 ? Buffer.from(Array.from({ length: next() % 96 }, () => next() & 0xff)) : mutate(base, next);
      const value = onlyDecodeErrors(() => decodeBody(schema, input));
      if (value === undefined) continue;
      decoded++;
      const again = decodeBody(schema, reencode(schema, value));
      expect(again).toEqual(value);
    }
    expect(decoded).toBeGreaterThan(ROUNDS / 10); // the mutations must not all be rejected
  });

  it('RTM_NEWSTATS bodies (stats) and decodeLinkStats64: mutated golden vectors and random bytes', () => {
    const own = loadGolden('rtnl/stats');
    expect(own.length).toBeGreaterThan(0);
    const next = rng(0x5eed + 94);
    let decoded = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const base = Buffer.from(own[i % own.length]!.hex, 'hex').subarray(16);
      const input = i % 5 === 0 ? Buffer.from(Array.from({ length: next() % 96 }, () => next() & 0xff)) : mutate(base, next);
      onlyDecodeErrors(() => decodeLinkStats64(input));
      const value = onlyDecodeErrors(() => decodeBody(statsMessage, input));
      if (value === undefined) continue;
      decoded++;
      expect(decodeBody(statsMessage, reencode(statsMessage, value))).toEqual(value);
    }
    expect(decoded).toBeGreaterThan(ROUNDS / 10);
  });

  it('framing, NLMSG_ERROR, NLMSG_DONE and extended-ack payloads', () => {
    const next = rng(42);
    const ack = Buffer.from(
      '40000000020000020100000000000000eaffffff2800000010000506000000000000000000000000000000001800010041747472696275746520666169',
      'hex',
    );
    for (let i = 0; i < ROUNDS; i++) {
      const input = i % 3 === 0 ? Buffer.from(Array.from({ length: next() % 80 }, () => next() & 0xff)) : mutate(ack, next);
      const msgs = onlyDecodeErrors(() => parseMessages(input)) as ReturnType<typeof parseMessages> | undefined;
      for (const m of msgs ?? []) {
        onlyDecodeErrors(() => parseErrorPayload(m));
        onlyDecodeErrors(() => parseDonePayload(m));
      }
      onlyDecodeErrors(() => NLMSGERR.decode(input, 0, input.length));
    }
  });
});

describe('compiled attribute decoders', () => {
  const schemas: Record<string, MessageSchema> = { ...SCHEMAS, tc: tcMessage, action: actionMessage, stats: statsMessage };
  const vectors = [...seeds, ...loadGolden('rtnl/stats'), ...loadGolden('tc')];
  /** A decoding's value, or its DecodeError's reason, path and offset. */
  const outcome = (fn: () => unknown) => {
    try {
      return { value: fn() };
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return { error: [e.reason, e.path, e.offset] };
    }
  };

  it.each(Object.keys(schemas))('answer as the interpreted ones do (%s): golden vectors, mutations, random bytes', (name) => {
    const schema = schemas[name]!;
    const own = vectors.filter((v) => v.schema === name);
    expect(own.length).toBeGreaterThan(0);
    const next = rng(0xc0de + name.length);
    let errors = 0;
    for (let i = 0; i < ROUNDS / 2; i++) {
      const base = Buffer.from(own[i % own.length]!.hex, 'hex').subarray(16);
      const input = i < own.length ? base : i % 5 === 0 ? Buffer.from(Array.from({ length: next() % 96 }, () => next() & 0xff)) : mutate(base, next);
      for (const strict of [false, true]) {
        const compiled = outcome(() => decodeBody(schema, input, { strict }));
        const interpreted = outcome(() => withInterpretedDecoders(() => decodeBody(schema, input, { strict })));
        expect(compiled).toEqual(interpreted);
        if ('error' in compiled) errors++;
      }
    }
    expect(errors).toBeGreaterThan(0); // the errors were compared too
  });
});
