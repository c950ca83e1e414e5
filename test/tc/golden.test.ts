/**
 * tc golden vectors: our decoder and encoder against the bytes iproute2's tc sent (and the
 * kernel's replies), both directions, and our high-level builders against tc for the same
 * command line.
 */
import { describe, expect, it } from 'vitest';
import { NLM_F, Writer, decodeBody, encodeBody, type MessageInput, type MessageSchema } from '../../src/netlink/index.js';
import { actionMessage, parsePsched, tcMessage } from '../../src/tc/index.js';
import { fromJsonValue, loadGolden, toJsonValue } from '../helpers/golden.js';
import { CASES } from './cases.js';

const SCHEMAS: Record<string, MessageSchema> = { tc: tcMessage, action: actionMessage };
const vectors = loadGolden('tc');

function encodeMessage(schema: MessageSchema, type: number, flags: number, value: MessageInput<any, any>): string {
  const w = new Writer();
  const start = w.beginMessage(type, flags, 0, 0);
  encodeBody(w, schema, value);
  w.endMessage(start);
  return w.toBuffer().toString('hex');
}

describe('tc golden vectors', () => {
  it('cover every case, and kernel replies', () => {
    const names = new Set(vectors.map((v) => v.name));
    for (const c of CASES) expect(names.has(c.name), c.name).toBe(true);
    expect(vectors.filter((v) => v.direction === 'reply').length).toBeGreaterThanOrEqual(4);
  });

  describe.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const schema = SCHEMAS[v.schema]!;
    const bytes = Buffer.from(v.hex, 'hex');
    it('decodes (strictly) to the recorded object', () => {
      expect(toJsonValue(decodeBody(schema, bytes.subarray(16), { strict: true }))).toEqual(v.decoded);
    });
    it('encodes the recorded object to the same bytes', () => {
      expect(encodeMessage(schema, v.type, v.flags, fromJsonValue(v.decoded) as MessageInput<any, any>)).toBe(v.hex);
    });
    it('round-trips decode → encode losslessly', () => {
      expect(encodeMessage(schema, v.type, v.flags, decodeBody(schema, bytes.subarray(16)) as MessageInput<any, any>)).toBe(v.hex);
    });
  });
});

describe('high-level builders send what tc sends', () => {
  const byName = new Map(vectors.map((v) => [v.name, v]));
  const built = CASES.filter((c) => c.build);
  it('cover every case with a builder', () => expect(built.length).toBeGreaterThanOrEqual(30));
  describe.each(built.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    it('same type, flags and bytes', () => {
      const v = byName.get(c.name)!;
      const prov = v.provenance as unknown as { devices: { eth0: number; veth1: number; lo: number }; psched: string };
      const req = c.build!(prov.devices, parsePsched(prov.psched));
      expect(req.type).toBe(v.type);
      const isGet = c.messageType !== undefined;
      const flags = NLM_F.REQUEST | NLM_F.ACK | (req.flags ?? 0);
      if (!isGet) expect(flags).toBe(v.flags);
      const w = new Writer();
      const start = w.beginMessage(req.type, v.flags, 0, 0);
      req.encode!(w);
      w.endMessage(start);
      expect(w.toBuffer().toString('hex')).toBe(v.hex);
    });
  });
});
