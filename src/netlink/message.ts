import type { AttrDefs, AttrSet, AttrValues } from './attributes.js';
import { attributePathAt } from './attributes.js';
import type { DecodeOptions } from './codec.js';
import { NLMSG_HDRLEN, align4 } from './constants.js';
import { DecodeError } from './errors.js';
import type { StructLayout } from './struct.js';
import type { Writer } from './writer.js';

/**
 * A family message body: a fixed header struct (ifinfomsg, tcmsg, ...) followed by attributes.
 */
export interface MessageSchema<H = any, D extends AttrDefs = AttrDefs> {
  readonly header: StructLayout<H>;
  readonly attrs: AttrSet<D>;
}

/** A decoded message body. */
export interface MessageBody<H, D extends AttrDefs> {
  header: H;
  attrs: AttrValues<D>;
}

/** What is written: header fields left out are zero. */
export interface MessageInput<H, D extends AttrDefs> {
  header?: Partial<H>;
  attrs?: AttrValues<D>;
}

/** The decoded body type of a message schema. */
export type BodyOf<S> = S extends MessageSchema<infer H, infer D> ? MessageBody<H, D> : never;
/** The input type a message schema encodes. */
export type InputOf<S> = S extends MessageSchema<infer H, infer D> ? MessageInput<H, D> : never;

/** Declare a message body: its header struct and its attribute set. */
export function messageSchema<H, D extends AttrDefs>(header: StructLayout<H>, attrs: AttrSet<D>): MessageSchema<H, D> {
  return { header, attrs };
}

/** Write a message body (after the nlmsghdr). */
export function encodeBody<H, D extends AttrDefs>(w: Writer, schema: MessageSchema<H, D>, value: MessageInput<H, D>): void {
  const start = w.pos;
  schema.header.encode(w, value.header ?? {});
  w.zeros(align4(w.pos - start) - (w.pos - start));
  if (value.attrs) schema.attrs.encode(w, value.attrs);
}

/** Read a message body from `payload` (the bytes after the nlmsghdr). */
export function decodeBody<H, D extends AttrDefs>(schema: MessageSchema<H, D>, payload: Buffer, opts: DecodeOptions = {}): MessageBody<H, D> {
  let header: H;
  try {
    header = schema.header.decode(payload, 0, payload.length, opts);
  } catch (e) {
    if (e instanceof DecodeError) throw new DecodeError(e.reason, [schema.header.name, ...e.path], e.offset);
    throw e;
  }
  const attrs = schema.attrs.decode(payload, Math.min(align4(schema.header.size), payload.length), payload.length, opts);
  return { header, attrs };
}

/**
 * Name what sits at `offset` of a whole message (offset counted from the nlmsghdr, as in
 * NLMSGERR_ATTR_OFFS).
 */
export function pathInMessage(schema: MessageSchema, message: Buffer, offset: number): string[] {
  if (offset < NLMSG_HDRLEN) return ['nlmsghdr'];
  const attrStart = NLMSG_HDRLEN + align4(schema.header.size);
  if (offset < attrStart) return [schema.header.name];
  const len = Math.min(message.length, message.length >= 4 ? message.readUInt32LE(0) : 0);
  return attributePathAt(schema.attrs as AttrSet, message, attrStart, len, offset);
}
