/**
 * bpf filters running a classic BPF program (tc `bpf bytecode '…'`), in direct-action mode (the
 * program gives the verdict) or as a match for a classid and actions: the spec, its options as tc
 * sends them, and the decoded filter. filter.ts builds the requests and decodes the dumps of
 * every kind; this module is the bpf part of both.
 */
import { DecodeError } from '../netlink/index.js';
import { actionEntries, actionSpecOf, parseAction } from './action.js';
import type { Action, ActionSpec } from './action.js';
import { validateProgram } from './cbpf.js';
import type { CbpfInsn } from './cbpf.js';
import { TCA_BPF_FLAG } from './constants.js';
import { TcInputError } from './errors.js';
import { parseTcHandle } from './handle.js';
import type { TcHandleInput } from './handle.js';
import type { FilterRef } from './filter.js';
import type { BpfAttrs } from './schemas/bpf.js';
import type { TcMessage } from './schemas/tca.js';

/**
 * A bpf filter running a classic BPF program (tc `bpf bytecode '…'`). With `directAction` the
 * program's return value is the verdict (TC_ACT_*: SHOT drops; UNSPEC, -1, goes on to the next
 * filter) and actions are refused, since the kernel would never run them. Without it the program
 * matches: 0 is no match, -1 (0xffffffff) a match with `classid`, any other value a classid; on a
 * match the actions run.
 */
export interface BpfFilterSpec extends FilterRef {
  kind: 'bpf';
  /** tc `handle 1`: a u32 (or its decimal or 0x text); omitted, the kernel chooses. */
  handle?: number | string;
  /** 1..4096 instructions (see cbpf.ts: builders and assemble()). */
  program: readonly CbpfInsn[];
  /** tc `da` / `direct-action` (TCA_BPF_FLAG_ACT_DIRECT). */
  directAction?: boolean;
  /** tc `classid`/`flowid`: the class of a match that returns -1. */
  classid?: TcHandleInput;
  actions?: ActionSpec[];
  /** TCA_BPF_NAME (at most 255 bytes). The kernel keeps names of eBPF programs only: a classic filter dumps without one. */
  name?: string;
}

/** A bpf filter as the kernel reports it. */
export interface BpfFilter {
  kind: 'bpf';
  ifindex: number;
  parent: number;
  priority: number;
  protocol: number;
  handle: number;
  chain?: number;
  /** The classic program (TCA_BPF_OPS); empty for an eBPF program (see id, tag, name). */
  program: CbpfInsn[];
  /** TCA_BPF_FLAG_ACT_DIRECT. */
  directAction: boolean;
  classid?: number;
  actions: Action[];
  /** eBPF only: the program's name, id and tag (hex), as the kernel reports them. */
  name?: string;
  id?: number;
  tag?: string;
  /** TCA_BPF_FLAGS_GEN (TCA_CLS_FLAGS_*): the kernel sets NOT_IN_HW for software filters. */
  genFlags?: number;
  raw: TcMessage;
}

/** Whether a dumped filter is a bpf filter with its program, flags and actions. */
export const isBpf = (f: { kind: string }): f is BpfFilter => f.kind === 'bpf' && 'program' in f;

/** The longest TCA_BPF_NAME the kernel takes, its NUL included (CLS_BPF_NAME_LEN). */
const CLS_BPF_NAME_LEN = 256;

/** TCA_OPTIONS of a bpf filter, in tc's order. */
export function bpfOptions(spec: BpfFilterSpec): BpfAttrs {
  const program = validateProgram(spec.program);
  if (spec.directAction !== undefined && typeof spec.directAction !== 'boolean')
    throw new TcInputError(`directAction must be true or false, got ${String(spec.directAction)}`);
  if (spec.directAction && spec.actions?.length)
    throw new TcInputError('a direct-action program gives the verdict itself: its actions would never run (the kernel takes them and ignores them)');
  // tc's order: classid and actions as given on its command line, then the program, then the flags.
  const o: BpfAttrs = {};
  if (spec.classid !== undefined) o.classid = parseTcHandle(spec.classid);
  if (spec.actions?.length) o.act = actionEntries(spec.actions);
  o.opsLen = program.length;
  o.ops = program;
  if (spec.name !== undefined) {
    if (typeof spec.name !== 'string' || !spec.name || spec.name.includes('\0') || Buffer.byteLength(spec.name) >= CLS_BPF_NAME_LEN)
      throw new TcInputError(`bpf name must be 1..${CLS_BPF_NAME_LEN - 1} bytes without NUL, got ${JSON.stringify(spec.name)}`);
    o.name = spec.name;
  }
  if (spec.directAction) o.flags = TCA_BPF_FLAG.ACT_DIRECT;
  return o;
}

/** The bpf-specific fields of a dumped bpf filter's options (DecodeError when they disagree). */
export function bpfFields(o: BpfAttrs): Pick<BpfFilter, 'program' | 'directAction' | 'actions' | 'classid' | 'name' | 'id' | 'tag' | 'genFlags'> {
  if ((o.ops === undefined) !== (o.opsLen === undefined))
    throw new DecodeError(`${o.ops ? 'TCA_BPF_OPS without TCA_BPF_OPS_LEN' : 'TCA_BPF_OPS_LEN without TCA_BPF_OPS'}`, ['TCA_OPTIONS']);
  if (o.ops && o.ops.length !== o.opsLen)
    throw new DecodeError(`TCA_BPF_OPS_LEN says ${o.opsLen} instructions, TCA_BPF_OPS holds ${o.ops.length}`, ['TCA_OPTIONS', 'TCA_BPF_OPS_LEN']);
  const f: ReturnType<typeof bpfFields> = {
    program: o.ops ?? [],
    directAction: ((o.flags ?? 0) & TCA_BPF_FLAG.ACT_DIRECT) !== 0,
    actions: o.act ? o.act.map(parseAction) : [],
  };
  if (o.classid !== undefined) f.classid = o.classid;
  if (o.name !== undefined) f.name = o.name;
  if (o.id !== undefined) f.id = o.id;
  if (o.tag !== undefined) f.tag = o.tag.toString('hex');
  if (o.flagsGen !== undefined) f.genFlags = o.flagsGen;
  return f;
}

/** The spec that recreates a dumped classic bpf filter (its program, flags, classid and actions), e.g. for `replace`. */
export function bpfFilterSpec(f: BpfFilter): BpfFilterSpec {
  if (!f.program.length) throw new TcInputError(`bpf filter ${f.handle} runs an eBPF program (id ${String(f.id)}); only classic programs can be recreated`);
  const spec: BpfFilterSpec = {
    kind: 'bpf',
    ifindex: f.ifindex,
    parent: f.parent,
    priority: f.priority,
    protocol: f.protocol,
    handle: f.handle,
    program: f.program,
  };
  if (f.chain !== undefined) spec.chain = f.chain;
  if (f.classid !== undefined) spec.classid = f.classid;
  if (f.directAction) spec.directAction = true;
  if (f.actions.length) spec.actions = f.actions.map(actionSpecOf);
  return spec;
}
