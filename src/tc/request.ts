/** Shared request plumbing: verbs → netlink flags, and a Request around a prepared tc message. */
import { NLM_F, encodeBody } from '../netlink/index.js';
import type { MessageInput, Request } from '../netlink/index.js';
import { TcInputError } from './errors.js';
import { tcMessage } from './schemas/tca.js';
import type { TcMsg, TcaAttrs } from './schemas/tca.js';

/**
 * The verbs of iproute2 and vishvananda: add (create, fail if it exists), replace (create or
 * replace), change (modify an existing object), delete.
 */
export type TcVerb = 'add' | 'replace' | 'change' | 'delete';

/**
 * NLM_F_* flags of each verb, as tc sends them. A qdisc `replace` is CREATE|REPLACE; a class or
 * filter `replace` is CREATE alone (without EXCL the kernel changes the one that exists).
 */
export const VERB_FLAGS: Readonly<Record<'qdisc' | 'class' | 'filter', Readonly<Record<TcVerb, number>>>> = Object.freeze({
  qdisc: Object.freeze({ add: NLM_F.CREATE | NLM_F.EXCL, replace: NLM_F.CREATE | NLM_F.REPLACE, change: 0, delete: 0 }),
  class: Object.freeze({ add: NLM_F.CREATE | NLM_F.EXCL, replace: NLM_F.CREATE, change: 0, delete: 0 }),
  filter: Object.freeze({ add: NLM_F.CREATE | NLM_F.EXCL, replace: NLM_F.CREATE, change: 0, delete: 0 }),
});

/** `verb` if it is a TcVerb; throws TcInputError otherwise. */
export function checkVerb(verb: unknown): TcVerb {
  if (verb === 'add' || verb === 'replace' || verb === 'change' || verb === 'delete') return verb;
  throw new TcInputError(`unknown verb ${JSON.stringify(verb)} (add, replace, change, delete)`);
}

/** A tc message body, prepared (validated) before any request is made from it. */
export type TcMessageInput = MessageInput<TcMsg, any> & { attrs?: TcaAttrs };

/** A Request that writes a prepared tc message. */
export function tcRequest(type: number, flags: number, body: TcMessageInput): Request {
  return { type, flags, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, body) };
}
