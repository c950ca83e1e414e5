/**
 * A lean dump of the u32 filters on one device's parent: handles, priorities and keys only, for
 * recovery, orphan sweeps and host checks that read thousands of filters.
 */
import type { NetlinkSession, Request } from '../netlink/index.js';
import { decodeBody, encodeBody } from '../netlink/index.js';
import { RTM } from '../rtnl/index.js';
import type { TcMessage } from '../tc/schemas/tca.js';
import { tcMessage } from '../tc/schemas/tca.js';
import type { U32Key } from './plan.js';

export interface DumpedFilter {
  handle: number;
  prio: number;
  keys: U32Key[];
  deleteRequest: Request;
}

export interface U32Dump {
  /** Filters with a selector (hash tables and the kernel's per-priority placeholders left out). */
  filters: DumpedFilter[];
  /** Handles of the hash tables (nodes with a divisor). */
  tables: Set<number>;
}

/** The u32 filters and hash tables on a device's parent, with the filters' keys (natural values). */
export async function dumpU32(s: NetlinkSession, ifindex: number, parent: number): Promise<U32Dump> {
  const msgs = await s.dump(
    { type: RTM.GETTFILTER, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, { header: { ifindex, parent } }) },
    { decode: (m) => decodeBody(tcMessage, m.payload) as TcMessage },
  );
  const out: U32Dump = { filters: [], tables: new Set() };
  for (const m of msgs) {
    const o = m.attrs.options as { divisor?: number; sel?: { keys: Array<{ off: number; val: number; mask: number }> } } | undefined;
    if (m.attrs.kind !== 'u32' || m.header.handle === 0) continue;
    if (o?.divisor !== undefined) out.tables.add(m.header.handle);
    if (!o?.sel) continue;
    const header = { ifindex, handle: m.header.handle, parent, info: m.header.info };
    out.filters.push({
      handle: m.header.handle,
      prio: m.header.info >>> 16,
      keys: o.sel.keys.map((k) => ({ off: k.off, val: k.val, mask: k.mask })),
      deleteRequest: { type: RTM.DELTFILTER, flags: 0, schema: tcMessage, encode: (w) => encodeBody(w, tcMessage, { header, attrs: { kind: 'u32' } }) },
    });
  }
  return out;
}

/** The u32 filters on a device's parent, with their keys (natural values). */
export async function dumpFilters(s: NetlinkSession, ifindex: number, parent: number): Promise<DumpedFilter[]> {
  return (await dumpU32(s, ifindex, parent)).filters;
}
