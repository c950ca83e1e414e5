/**
 * The u32 filters of one device's parent as recovery, orphan sweeps and host checks need them:
 * handles, priorities and keys (Tc.listU32Keys: no typed decoding of thousands of filters), and
 * a ready-made request to delete each.
 */
import type { NetlinkSession, Request } from '../netlink/index.js';
import { Tc, filterRequest } from '../tc/index.js';
import type { U32NodeKeys } from '../tc/index.js';

export interface DumpedFilter {
  handle: number;
  prio: number;
  /** The selector's packed keys, as the kernel holds them. */
  keys: U32NodeKeys['keys'];
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
  const out: U32Dump = { filters: [], tables: new Set() };
  for (const n of await new Tc(s).listU32Keys(ifindex, parent)) {
    if (n.divisor !== undefined) {
      out.tables.add(n.handle);
      continue;
    }
    const deleteRequest = filterRequest('delete', { kind: 'u32', ifindex, parent, priority: n.priority, protocol: n.protocol, handle: n.handle });
    out.filters.push({ handle: n.handle, prio: n.priority, keys: n.keys, deleteRequest });
  }
  return out;
}

/** The u32 filters on a device's parent, with their keys (natural values). */
export async function dumpFilters(s: NetlinkSession, ifindex: number, parent: number): Promise<DumpedFilter[]> {
  return (await dumpU32(s, ifindex, parent)).filters;
}
