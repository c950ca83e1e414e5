/** Golden bytes: our encoder against what iproute2 sends, our decoder against those bytes and kernel replies. */
import { describe, expect, it } from 'vitest';
import { Writer, decodeBody, encodeBody, type MessageInput } from '../../src/netlink/index.js';
import { fromJsonValue, loadGolden, toJsonValue } from '../helpers/golden.js';
import { SCHEMAS } from '../golden/schemas.js';

function encodeMessage(schema: keyof typeof SCHEMAS, type: number, flags: number, value: MessageInput<any, any>): string {
  const w = new Writer();
  const start = w.beginMessage(type, flags, 0, 0);
  encodeBody(w, SCHEMAS[schema], value);
  w.endMessage(start);
  return w.toBuffer().toString('hex');
}

describe.each(['netlink', 'rtnl'])('golden vectors: %s', (area) => {
  const vectors = loadGolden(area);
  it('exist', () => expect(vectors.length).toBeGreaterThanOrEqual(5));
  describe.each(vectors.map((v) => [v.name, v] as const))('%s', (_name, v) => {
    const schema = v.schema as keyof typeof SCHEMAS;
    const bytes = Buffer.from(v.hex, 'hex');
    it('decodes to the recorded object', () => {
      expect(toJsonValue(decodeBody(SCHEMAS[schema], bytes.subarray(16)))).toEqual(v.decoded);
    });
    it('encodes the recorded object to the same bytes', () => {
      expect(encodeMessage(schema, v.type, v.flags, fromJsonValue(v.decoded) as MessageInput<any, any>)).toBe(v.hex);
    });
    it('round-trips decode → encode losslessly', () => {
      expect(encodeMessage(schema, v.type, v.flags, decodeBody(SCHEMAS[schema], bytes.subarray(16)) as MessageInput<any, any>)).toBe(v.hex);
    });
  });
});
