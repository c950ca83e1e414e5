/**
 * A tc handle bound to one NetlinkSession (and so to one network namespace): verbs for qdiscs,
 * classes, filters and actions, Mesos-style idempotent helpers, and bulk filter installation in
 * one batch. Devices are given by ifindex.
 */
import { NLM_F, NetlinkError, decodeBody } from '../netlink/index.js';
import type { AckResult, BatchResult, NetlinkMessage, NetlinkSession, Request } from '../netlink/index.js';
import { actionDumpRequest, actionGetRequest, actionRequest, parseAction } from './action.js';
import type { Action, ActionRef, StandaloneActionSpec } from './action.js';
import { classDumpRequest, classRequest, parseClass } from './class.js';
import type { ClassRef, HtbClass, HtbClassSpec } from './class.js';
import { TcInputError } from './errors.js';
import { filterDumpRequest, filterGetRequest, filterRequest, decodeFilterPayload, isU32, parseU32Keys } from './filter.js';
import type { BpfFilterSpec, Filter, FilterRef, U32Filter, U32FilterSpec, U32NodeKeys } from './filter.js';
import { parseTcHandle, parseU32Handle } from './handle.js';
import type { TcHandleInput, U32HandleInput } from './handle.js';
import { parseQdisc, qdiscDumpRequest, qdiscRequest } from './qdisc.js';
import type { Qdisc, QdiscRef, QdiscSpec } from './qdisc.js';
import { systemPsched } from './rate.js';
import type { Psched } from './rate.js';
import type { TcVerb } from './request.js';
import { actionMessage } from './schemas/action.js';
import { tcMessage } from './schemas/tca.js';
import { U32NodeAllocator } from './u32-handles.js';

/** Options of the Tc constructor. */
export interface TcOptions {
  /** Clock parameters for rate math; default this machine's /proc/net/psched (read once). */
  psched?: Psched;
}

/** Which filters listFilters and listU32Nodes return. */
export interface ListFilterOptions {
  /** Only this priority (`prio`). */
  priority?: number;
  /** Only this filter chain (default: all). */
  chain?: number;
  /** Keep the kernel's per-priority placeholder entries (handle 0, no options). Default false. */
  includePlaceholders?: boolean;
}

/** What addFilters resolves with. */
export interface BulkResult {
  /** One outcome per spec, in order. */
  results: BatchResult[];
  /** The handle each spec was sent with (chosen by the SDK when the spec had none). */
  handles: number[];
}

const notFound = (e: unknown) => e instanceof NetlinkError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENODEV');

/**
 * tc over one NetlinkSession, and so in that session's network namespace (`new Tc(rtnl.session)`).
 * Devices are given by ifindex, handles as numbers or `tc`'s text ('1:', '1:10', 'ingress'),
 * rates in bytes per second and sizes in bytes. Bad input throws (or rejects with) TcInputError
 * before anything is sent; the kernel's refusals reject with NetlinkError (e.g. EEXIST for an add
 * of something present, ENOENT/EINVAL for a delete of something absent, EOPNOTSUPP for a kind
 * the kernel lacks).
 */
export class Tc {
  /** The clock parameters used for rate tables and times. */
  readonly psched: Psched;

  /** Verbs on `session`'s namespace. Reads /proc/net/psched (once) unless `options.psched` is given. */
  constructor(
    readonly session: NetlinkSession,
    options: TcOptions = {},
  ) {
    this.psched = options.psched ?? systemPsched();
  }

  private send(req: Request): Promise<AckResult> {
    return this.session.request(req);
  }

  private echo<T>(req: Request, decode: (m: NetlinkMessage) => T): Promise<T | undefined> {
    // Not a spread: a request may be a class instance whose encode() lives on its prototype.
    const echoed: Request = { type: req.type, flags: (req.flags ?? 0) | NLM_F.ECHO, encode: (w) => req.encode?.(w) };
    if (req.schema) echoed.schema = req.schema;
    return this.session.request(echoed, { decode }).then((r) => r.replies[0]);
  }

  // ---- qdiscs -------------------------------------------------------------------------------

  /** `tc qdisc add|replace|change|delete`; resolves with the kernel's warnings. Rejects with TcInputError or NetlinkError. */
  async qdisc(verb: TcVerb, spec: QdiscSpec | QdiscRef): Promise<AckResult> {
    return this.send(qdiscRequest(verb, spec, { psched: this.psched }));
  }
  /** `tc qdisc add`: NetlinkError EEXIST when a qdisc is there. */
  addQdisc(spec: QdiscSpec) {
    return this.qdisc('add', spec);
  }
  /** `tc qdisc replace`: adds, or replaces the qdisc at that place. */
  replaceQdisc(spec: QdiscSpec) {
    return this.qdisc('replace', spec);
  }
  /** `tc qdisc change`: changes the options of the qdisc there; NetlinkError ENOENT when there is none. */
  changeQdisc(spec: QdiscSpec) {
    return this.qdisc('change', spec);
  }
  /** `tc qdisc delete`: NetlinkError ENOENT or EINVAL when there is none (see removeQdiscIfExists). */
  deleteQdisc(ref: QdiscRef) {
    return this.qdisc('delete', ref);
  }

  /** Every qdisc, or those of one device, with options and statistics. */
  async listQdiscs(ifindex?: number): Promise<Qdisc[]> {
    const all = await this.session.dump(qdiscDumpRequest(), { decode: (m) => parseQdisc(decodeBody(tcMessage, m.payload), this.psched) });
    return ifindex === undefined ? all : all.filter((q) => q.ifindex === ifindex);
  }

  /** The qdisc at a place (by parent, and by handle and kind when given); undefined when there is none. */
  async getQdisc(ref: QdiscRef): Promise<Qdisc | undefined> {
    const hook = ref.kind === 'ingress' || ref.kind === 'clsact';
    const parent = parseTcHandle(ref.parent ?? (hook ? 'ingress' : 'root'));
    const handle = ref.handle === undefined ? undefined : parseTcHandle(ref.handle);
    return (await this.listQdiscs(ref.ifindex)).find(
      (q) => q.parent === parent && (handle === undefined || q.handle === handle) && (!ref.kind || q.kind === ref.kind),
    );
  }

  /** Does a qdisc of this kind sit there? */
  async qdiscExists(ref: QdiscRef): Promise<boolean> {
    return (await this.getQdisc(ref)) !== undefined;
  }

  /** Mesos' create: add; `created: false` when one already exists (EEXIST). */
  async ensureQdisc(spec: QdiscSpec): Promise<{ created: boolean }> {
    try {
      await this.addQdisc(spec);
      return { created: true };
    } catch (e) {
      if (e instanceof NetlinkError && e.code === 'EEXIST') return { created: false };
      throw e;
    }
  }

  /** Mesos' remove: true when removed, false when there was none. */
  async removeQdiscIfExists(ref: QdiscRef): Promise<boolean> {
    try {
      await this.deleteQdisc(ref);
      return true;
    } catch (e) {
      if (notFound(e)) return false;
      throw e;
    }
  }

  // ---- classes ------------------------------------------------------------------------------

  /** `tc class add|replace|change|delete … htb`; resolves with the kernel's warnings. Rejects with TcInputError or NetlinkError. */
  async class(verb: TcVerb, spec: HtbClassSpec | ClassRef): Promise<AckResult> {
    return this.send(classRequest(verb, spec, { psched: this.psched }));
  }
  /** `tc class add … htb`: NetlinkError EEXIST when the class is there. */
  addClass(spec: HtbClassSpec) {
    return this.class('add', spec);
  }
  /** `tc class replace … htb`: adds, or changes the class. */
  replaceClass(spec: HtbClassSpec) {
    return this.class('replace', spec);
  }
  /** `tc class change … htb`: NetlinkError ENOENT when the class is not there. */
  changeClass(spec: HtbClassSpec) {
    return this.class('change', spec);
  }
  /** `tc class delete`: NetlinkError ENOENT when the class is not there, EBUSY while it has children or filters. */
  deleteClass(ref: ClassRef) {
    return this.class('delete', ref);
  }

  /** The classes of a device, with rates (bytes/s), bursts (bytes) and statistics. */
  async listClasses(ifindex: number): Promise<HtbClass[]> {
    return this.session.dump(classDumpRequest(ifindex), { decode: (m) => parseClass(decodeBody(tcMessage, m.payload), this.psched) });
  }

  /** One class of a device by classid ('1:10'); undefined when absent. Throws TcInputError for a bad classid. */
  async getClass(ifindex: number, classid: TcHandleInput): Promise<HtbClass | undefined> {
    const id = parseTcHandle(classid);
    return (await this.listClasses(ifindex)).find((c) => c.classid === id);
  }

  // ---- filters ------------------------------------------------------------------------------

  /**
   * `tc filter add|replace|change|delete`; add/replace/change resolve with the filter as the kernel
   * made it (ECHO), delete with undefined. Rejects with TcInputError or NetlinkError.
   */
  async filter(verb: TcVerb, spec: U32FilterSpec | BpfFilterSpec | FilterRef): Promise<Filter | undefined> {
    const req = filterRequest(verb, spec);
    if (verb === 'delete') {
      await this.send(req);
      return undefined;
    }
    return this.echo(req, (m) => decodeFilterPayload(m.payload));
  }
  /** `tc filter add … u32|bpf`: resolves with the filter as created (its handle, if the kernel chose it); NetlinkError EEXIST when the handle is taken. */
  addFilter(spec: U32FilterSpec | BpfFilterSpec) {
    return this.filter('add', spec);
  }
  /** `tc filter replace … u32|bpf`: adds, or replaces the filter with that handle. */
  replaceFilter(spec: U32FilterSpec | BpfFilterSpec) {
    return this.filter('replace', spec);
  }
  /** `tc filter change … u32|bpf`: NetlinkError ENOENT when the filter is not there. */
  changeFilter(spec: U32FilterSpec | BpfFilterSpec) {
    return this.filter('change', spec);
  }
  /** `tc filter delete`: a node, or every filter of a priority; NetlinkError ENOENT/EINVAL when absent. */
  async deleteFilter(ref: FilterRef): Promise<void> {
    await this.filter('delete', ref);
  }

  /** Mesos' remove: true when removed, false when it was not there. */
  async removeFilterIfExists(ref: FilterRef): Promise<boolean> {
    try {
      await this.deleteFilter(ref);
      return true;
    } catch (e) {
      if (notFound(e)) return false;
      throw e;
    }
  }

  /** Filters on one parent of a device, in the kernel's order (priority, then table, bucket, node); u32 and bpf ones typed. */
  async listFilters(ifindex: number, parent: TcHandleInput, options: ListFilterOptions = {}): Promise<Filter[]> {
    const all = await this.session.dump(filterDumpRequest(ifindex, parent, options.chain), { decode: (m) => decodeFilterPayload(m.payload) });
    return all.filter((f) => (options.includePlaceholders || f.handle !== 0) && (options.priority === undefined || f.priority === options.priority));
  }

  /** u32 filter nodes only (no hash tables, no placeholders). */
  async listU32Nodes(ifindex: number, parent: TcHandleInput, options: ListFilterOptions = {}): Promise<U32Filter[]> {
    return (await this.listFilters(ifindex, parent, options)).filter((f): f is U32Filter => isU32(f) && f.divisor === undefined && (f.handle & 0xfff) !== 0);
  }

  /**
   * The u32 nodes and hash tables on one parent of a device with their raw keys, not decoded into
   * typed matches and actions: the fast listing for scans of thousands of filters.
   */
  async listU32Keys(ifindex: number, parent: TcHandleInput): Promise<U32NodeKeys[]> {
    const all = await this.session.dump(filterDumpRequest(ifindex, parent), { decode: (m) => parseU32Keys(decodeBody(tcMessage, m.payload)) });
    return all.filter((n): n is U32NodeKeys => n !== undefined);
  }

  /** One filter node by handle (RTM_GETTFILTER; a bpf handle is a plain number); undefined when it does not exist. */
  async getFilter(ref: FilterRef & { handle: U32HandleInput }): Promise<Filter | undefined> {
    try {
      const r = await this.session.request(filterGetRequest(ref), { decode: (m) => decodeFilterPayload(m.payload) });
      return r.replies[0];
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  /**
   * Install many u32 filters in one batch. Specs without a handle get one chosen here (from the
   * nodes already on the device, 0x800 upwards per bucket), so thousands of filters in one
   * bucket or priority never collide. One result per spec; a refused filter does not stop the others.
   */
  async addFilters(specs: readonly U32FilterSpec[], options: { verb?: 'add' | 'replace' } = {}): Promise<BulkResult> {
    const handles: number[] = new Array(specs.length);
    let alloc: Map<string, U32NodeAllocator> | undefined;
    const allocator = async (ifindex: number, parent: number) => {
      alloc ??= new Map();
      const k = `${ifindex}/${parent}`;
      let a = alloc.get(k);
      if (!a) {
        a = new U32NodeAllocator();
        for (const f of await this.listU32Nodes(ifindex, parent)) {
          const ht = f.handle & 0xfffff000;
          if (f.handle >>> 20 >= 0x800) a.reserve({ priority: f.priority }, f.handle);
          a.reserve({ ht }, f.handle);
        }
        for (const s of specs) {
          if (s.handle === undefined || s.ifindex !== ifindex || parseTcHandle(s.parent) !== parent || s.divisor !== undefined) continue;
          const h = parseU32Handle(s.handle);
          if (h >>> 20) a.reserve({ ht: h }, h);
          else a.reserve({ priority: s.priority }, h);
        }
        alloc.set(k, a);
      }
      return a;
    };
    // Pass 1 chooses handles (which may need a dump); pass 2 builds each request as the session
    // encodes it, so the batch keeps no request bodies alive.
    const ready: Array<U32FilterSpec> = new Array(specs.length);
    for (let i = 0; i < specs.length; i++) {
      const s = specs[i]!;
      let spec = s;
      if (s.handle === undefined && s.divisor === undefined) {
        const a = await allocator(s.ifindex, parseTcHandle(s.parent));
        const handle = s.ht !== undefined ? a.allocate({ ht: parseU32Handle(s.ht) }) : a.allocate({ priority: s.priority });
        spec = { ...s, handle };
      }
      ready[i] = spec;
      handles[i] = spec.handle === undefined ? 0 : parseU32Handle(spec.handle);
    }
    const verb = options.verb ?? 'add';
    function* requests(): Generator<Request> {
      for (let i = 0; i < ready.length; i++) {
        let req: Request;
        try {
          req = filterRequest(verb, ready[i]!);
        } catch (e) {
          if (e instanceof TcInputError) throw new TcInputError(`filter ${i + 1}: ${e.reason}`);
          throw e;
        }
        yield req;
      }
    }
    return { results: await this.session.batch(requests()), handles };
  }

  /** Delete many filters in one batch; one result per ref, in order (a refusal does not stop the others). */
  async deleteFilters(refs: readonly FilterRef[]): Promise<BatchResult[]> {
    return this.session.batch(refs.map((r) => filterRequest('delete', r)));
  }

  // ---- actions ------------------------------------------------------------------------------

  /** Create standalone actions (filters then bind them with `{ kind: 'mirred', bindIndex }`). Rejects with TcInputError or NetlinkError (EEXIST for a taken index). */
  async addActions(specs: StandaloneActionSpec | StandaloneActionSpec[]): Promise<AckResult> {
    return this.send(actionRequest('add', specs));
  }
  /** Delete standalone actions by kind and index: NetlinkError ENOENT when absent, EPERM while a filter is bound to one. */
  async deleteActions(refs: ActionRef | ActionRef[]): Promise<AckResult> {
    return this.send(actionRequest('delete', refs));
  }

  /** One standalone or bound action by index, with its statistics; undefined when absent. */
  async getAction(kind: 'mirred', index: number): Promise<Action | undefined> {
    try {
      const r = await this.session.request(actionGetRequest(kind, index), { decode: (m) => decodeBody(actionMessage, m.payload).attrs.tab ?? [] });
      return r.replies.flat().map(parseAction)[0];
    } catch (e) {
      if (notFound(e)) return undefined;
      throw e;
    }
  }

  /** Every action of a kind. */
  async listActions(kind: 'mirred'): Promise<Action[]> {
    const pages = await this.session.dump(actionDumpRequest(kind), { decode: (m) => decodeBody(actionMessage, m.payload).attrs.tab ?? [] });
    return pages.flat().map(parseAction);
  }

  /** Send prepared requests (from qdiscRequest, classRequest, filterRequest …) in one batch; one result per request, in order. */
  async batch(reqs: readonly Request[]): Promise<BatchResult[]> {
    return this.session.batch(reqs);
  }
}
