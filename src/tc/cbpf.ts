/**
 * Classic BPF (cBPF) programs as data, for the bpf classifier (TCA_BPF_OPS): struct sock_filter
 * instructions, the kernel's opcode constants (linux/filter.h, linux/bpf_common.h), small
 * builders, a label assembler, validation, and tc's bytecode text ('N,code jt jf k,…').
 *
 * At tc ingress and egress the program sees the packet from its Ethernet header: offset 12 is the
 * ethertype, 14 the IP header. A direct-action program returns a verdict (TC_ACT_*: SHOT drops,
 * UNSPEC = 0xffffffff goes on to the next filter); otherwise 0 means "no match", 0xffffffff "match,
 * use the filter's classid" and anything else is a classid.
 */
import { TcInputError, checkInt } from './errors.js';

/** One instruction (struct sock_filter): 16-bit opcode, jump-true and jump-false offsets, operand. */
export interface CbpfInsn {
  code: number;
  /** Instructions to skip when a conditional jump is taken (0..255, forward only). */
  jt: number;
  /** Instructions to skip when it is not. */
  jf: number;
  /** The operand (u32): an offset, a constant, a return value. */
  k: number;
}

/** Opcode parts and limits (BPF_*), under their kernel names: `BPF.LD | BPF.H | BPF.ABS`. */
export const BPF = Object.freeze({
  // instruction classes (BPF_CLASS)
  LD: 0x00,
  LDX: 0x01,
  ST: 0x02,
  STX: 0x03,
  ALU: 0x04,
  JMP: 0x05,
  RET: 0x06,
  MISC: 0x07,
  // ld/ldx sizes (BPF_SIZE)
  W: 0x00,
  H: 0x08,
  B: 0x10,
  // ld/ldx modes (BPF_MODE)
  IMM: 0x00,
  ABS: 0x20,
  IND: 0x40,
  MEM: 0x60,
  LEN: 0x80,
  MSH: 0xa0,
  // alu operations (BPF_OP)
  ADD: 0x00,
  SUB: 0x10,
  MUL: 0x20,
  DIV: 0x30,
  OR: 0x40,
  AND: 0x50,
  LSH: 0x60,
  RSH: 0x70,
  NEG: 0x80,
  MOD: 0x90,
  XOR: 0xa0,
  // jump operations (BPF_OP)
  JA: 0x00,
  JEQ: 0x10,
  JGT: 0x20,
  JGE: 0x30,
  JSET: 0x40,
  // operand source (BPF_SRC)
  K: 0x00,
  X: 0x08,
  // ret value (BPF_RVAL): the accumulator
  A: 0x10,
  // misc operations (BPF_MISCOP)
  TAX: 0x00,
  TXA: 0x80,
  /** The longest program the kernel takes. */
  MAXINSNS: 4096,
  /** Scratch memory words (M[0..15]). */
  MEMWORDS: 16,
} as const);

/** Ancillary data offsets for BPF_ABS loads (SKF_AD_*): `ldAbs('h', SKF_AD.OFF + SKF_AD.PROTOCOL)`. */
export const SKF_AD = Object.freeze({
  OFF: -0x1000,
  PROTOCOL: 0,
  PKTTYPE: 4,
  IFINDEX: 8,
  NLATTR: 12,
  NLATTR_NEST: 16,
  MARK: 20,
  QUEUE: 24,
  HATYPE: 28,
  RXHASH: 32,
  CPU: 36,
  ALU_XOR_X: 40,
  VLAN_TAG: 44,
  VLAN_TAG_PRESENT: 48,
  PAY_OFFSET: 52,
  RANDOM: 56,
  VLAN_TPID: 60,
  MAX: 64,
} as const);

/** Negative load offsets relative to the network and link-layer headers (SKF_NET_OFF, SKF_LL_OFF). */
export const SKF = Object.freeze({
  NET_OFF: -0x100000,
  LL_OFF: -0x200000,
} as const);

/** A jump target: an offset (instructions to skip) or a label that assemble() resolves. */
export type JumpTarget = number | string;

/** An instruction whose jump offsets (or a `ja`'s operand) may still be labels. */
export interface CbpfSourceInsn {
  code: number;
  jt: JumpTarget;
  jf: JumpTarget;
  k: number | string;
}

/** A label: the place of the next instruction. */
export interface CbpfLabel {
  label: string;
}

/** What assemble() takes: instructions (labels allowed as targets) and label markers. */
export type CbpfItem = CbpfSourceInsn | CbpfLabel;

/** Load sizes: 32-bit word, 16-bit half word, byte. */
export type CbpfSize = 'w' | 'h' | 'b';

const SIZES: Readonly<Record<CbpfSize, number>> = { w: BPF.W, h: BPF.H, b: BPF.B };

function size(s: CbpfSize): number {
  const v = SIZES[s];
  if (v === undefined) throw new TcInputError(`load size must be 'w', 'h' or 'b', got ${JSON.stringify(s)}`);
  return v;
}

/** An operand given as a u32 or as a negative s32 (ancillary offsets, TC_ACT_UNSPEC = -1): stored as u32. */
function operand(what: string, k: number): number {
  return checkInt(what, k, -0x80000000, 0xffffffff) >>> 0;
}

const stmt = (code: number, k: number): CbpfInsn => ({ code, jt: 0, jf: 0, k });

/** `ld{,h,b} [offset]`: A = the word, half word or byte at `offset` of the packet. */
export function ldAbs(s: CbpfSize, offset: number): CbpfInsn {
  return stmt(BPF.LD | size(s) | BPF.ABS, operand('ldAbs offset', offset));
}

/** `ld{,h,b} [x + offset]`: A = the value at X + `offset`. */
export function ldInd(s: CbpfSize, offset: number): CbpfInsn {
  return stmt(BPF.LD | size(s) | BPF.IND, operand('ldInd offset', offset));
}

/** `ld #len`: A = the packet length. */
export function ldLen(): CbpfInsn {
  return stmt(BPF.LD | BPF.W | BPF.LEN, 0);
}

/** `ld #k`: A = k. */
export function ldImm(k: number): CbpfInsn {
  return stmt(BPF.LD | BPF.W | BPF.IMM, operand('ldImm constant', k));
}

/** `ldxb 4*([offset]&0xf)`: X = the IPv4 header length in bytes, the IP header being at `offset`. */
export function ldxMsh(offset: number): CbpfInsn {
  return stmt(BPF.LDX | BPF.B | BPF.MSH, operand('ldxMsh offset', offset));
}

/** `and #k`: A &= k. */
export function and(k: number): CbpfInsn {
  return stmt(BPF.ALU | BPF.AND | BPF.K, operand('and constant', k));
}

/** `tax`: X = A. */
export function tax(): CbpfInsn {
  return stmt(BPF.MISC | BPF.TAX, 0);
}

/** `txa`: A = X. */
export function txa(): CbpfInsn {
  return stmt(BPF.MISC | BPF.TXA, 0);
}

/** `ret #k`: end with k (a TC_ACT_* verdict in direct-action mode; -1 is stored as 0xffffffff). */
export function ret(k: number): CbpfInsn {
  return stmt(BPF.RET | BPF.K, operand('ret value', k));
}

/** `ret a`: end with the accumulator. */
export function retA(): CbpfInsn {
  return stmt(BPF.RET | BPF.A, 0);
}

function target(what: string, t: JumpTarget): JumpTarget {
  if (typeof t === 'string') {
    if (!t) throw new TcInputError(`${what} label must not be empty`);
    return t;
  }
  return checkInt(what, t, 0, 0xff);
}

function cond(name: string, op: number, k: number, jt: JumpTarget, jf: JumpTarget): CbpfSourceInsn {
  return { code: BPF.JMP | op | BPF.K, jt: target(`${name} jt`, jt), jf: target(`${name} jf`, jf), k: operand(`${name} constant`, k) };
}

/** `jeq #k, jt, jf`: skip `jt` instructions (or go to a label) when A == k, else `jf` (default 0). */
export function jeq(k: number, jt: number, jf?: number): CbpfInsn;
export function jeq(k: number, jt: JumpTarget, jf?: JumpTarget): CbpfSourceInsn;
export function jeq(k: number, jt: JumpTarget, jf: JumpTarget = 0): CbpfSourceInsn {
  return cond('jeq', BPF.JEQ, k, jt, jf);
}

/** `jgt #k, jt, jf`: A > k (unsigned). */
export function jgt(k: number, jt: number, jf?: number): CbpfInsn;
export function jgt(k: number, jt: JumpTarget, jf?: JumpTarget): CbpfSourceInsn;
export function jgt(k: number, jt: JumpTarget, jf: JumpTarget = 0): CbpfSourceInsn {
  return cond('jgt', BPF.JGT, k, jt, jf);
}

/** `jge #k, jt, jf`: A >= k (unsigned). */
export function jge(k: number, jt: number, jf?: number): CbpfInsn;
export function jge(k: number, jt: JumpTarget, jf?: JumpTarget): CbpfSourceInsn;
export function jge(k: number, jt: JumpTarget, jf: JumpTarget = 0): CbpfSourceInsn {
  return cond('jge', BPF.JGE, k, jt, jf);
}

/** `jset #k, jt, jf`: A & k != 0. */
export function jset(k: number, jt: number, jf?: number): CbpfInsn;
export function jset(k: number, jt: JumpTarget, jf?: JumpTarget): CbpfSourceInsn;
export function jset(k: number, jt: JumpTarget, jf: JumpTarget = 0): CbpfSourceInsn {
  return cond('jset', BPF.JSET, k, jt, jf);
}

/** `ja`: always skip `to` instructions (or go to a label); the offset is 32 bits. */
export function ja(to: number): CbpfInsn;
export function ja(to: JumpTarget): CbpfSourceInsn;
export function ja(to: JumpTarget): CbpfSourceInsn {
  return { code: BPF.JMP | BPF.JA, jt: 0, jf: 0, k: typeof to === 'string' ? target('ja', to) : operand('ja offset', to) };
}

const isLabel = (item: CbpfItem): item is CbpfLabel => typeof item === 'object' && item !== null && 'label' in item;
const isCond = (code: number) => (code & 0x07) === BPF.JMP && (code & 0xf0) !== BPF.JA;
const isJa = (code: number) => (code & 0x07) === BPF.JMP && (code & 0xf0) === BPF.JA;

/**
 * Resolve labels into relative jump offsets and validate the program (see validateProgram).
 * Labels may only be jumped to forwards; a conditional jump reaches at most 255 instructions.
 *
 *   assemble([ldAbs('h', 12), jeq(0x0800, 'ip', 'pass'), { label: 'ip' }, …, { label: 'pass' }, ret(-1)])
 */
export function assemble(items: readonly CbpfItem[]): CbpfInsn[] {
  if (!Array.isArray(items)) throw new TcInputError('assemble() takes an array of instructions and labels');
  const labels = new Map<string, number>();
  let n = 0;
  for (const item of items) {
    if (isLabel(item)) {
      if (typeof item.label !== 'string' || !item.label) throw new TcInputError(`a label needs a name, got ${JSON.stringify(item.label)}`);
      if (labels.has(item.label)) throw new TcInputError(`label '${item.label}' is defined twice`);
      labels.set(item.label, n);
    } else n++;
  }
  const out: CbpfInsn[] = [];
  const resolve = (i: number, what: string, t: JumpTarget | undefined, max: number): number => {
    if (typeof t !== 'string') return t as number;
    const at = labels.get(t);
    if (at === undefined) throw new TcInputError(`instruction ${i}: ${what} jumps to unknown label '${t}'`);
    if (at === n) throw new TcInputError(`instruction ${i}: ${what} jumps to label '${t}', which marks the end of the program, not an instruction`);
    const off = at - (i + 1);
    if (off < 0) throw new TcInputError(`instruction ${i}: ${what} jumps backwards to label '${t}' (classic BPF jumps forwards only)`);
    if (off > max) throw new TcInputError(`instruction ${i}: ${what} to label '${t}' skips ${off} instructions; at most ${max}`);
    return off;
  };
  for (const item of items) {
    if (isLabel(item)) continue;
    const i = out.length;
    if (typeof item !== 'object' || item === null) throw new TcInputError(`instruction ${i} is not an instruction: ${String(item)}`);
    const { code, jt, jf, k } = item;
    const jumps = typeof code === 'number' && isCond(code);
    if (!jumps && (typeof jt === 'string' || typeof jf === 'string'))
      throw new TcInputError(`instruction ${i}: only a conditional jump has jt/jf targets (code 0x${Number(code).toString(16)})`);
    if (typeof k === 'string' && !(typeof code === 'number' && isJa(code)))
      throw new TcInputError(`instruction ${i}: only ja takes a label as its operand (code 0x${Number(code).toString(16)})`);
    out.push({ code, jt: resolve(i, 'jt', jt, 0xff), jf: resolve(i, 'jf', jf, 0xff), k: resolve(i, 'ja', k as JumpTarget, 0xffffffff) });
  }
  return validateProgram(out);
}

/**
 * Check a program before it is sent: 1..4096 instructions (BPF_MAXINSNS), code u16, jt/jf u8, k
 * u32, every jump landing inside the program, the last instruction a RET. Returns it as plain
 * {code, jt, jf, k} objects; throws TcInputError naming the instruction (0-based, as tc counts).
 */
export function validateProgram(program: readonly CbpfInsn[]): CbpfInsn[] {
  if (!Array.isArray(program)) throw new TcInputError('a classic BPF program is an array of {code, jt, jf, k} instructions');
  const n = program.length;
  if (n < 1 || n > BPF.MAXINSNS) throw new TcInputError(`a classic BPF program has 1..${BPF.MAXINSNS} instructions (BPF_MAXINSNS), got ${n}`);
  const out = new Array<CbpfInsn>(n);
  for (let i = 0; i < n; i++) {
    const insn = program[i];
    if (typeof insn !== 'object' || insn === null) throw new TcInputError(`instruction ${i} is not an instruction: ${String(insn)}`);
    const at = `instruction ${i}:`;
    const code = checkInt(`${at} code`, insn.code, 0, 0xffff);
    const jt = checkInt(`${at} jt`, insn.jt, 0, 0xff);
    const jf = checkInt(`${at} jf`, insn.jf, 0, 0xff);
    const k = checkInt(`${at} k`, insn.k, 0, 0xffffffff);
    const after = n - 1 - i; // instructions after this one: a jump skips fewer
    if (isCond(code) && Math.max(jt, jf) >= after)
      throw new TcInputError(`${at} jump of ${Math.max(jt, jf)} lands past the end of the ${n}-instruction program`);
    if (isJa(code) && k >= after) throw new TcInputError(`${at} ja of ${k} lands past the end of the ${n}-instruction program`);
    out[i] = { code, jt, jf, k };
  }
  if ((out[n - 1]!.code & 0x07) !== BPF.RET)
    throw new TcInputError(`the last instruction must be a ret (BPF_RET), got code 0x${out[n - 1]!.code.toString(16)}`);
  return out;
}

/** tc's bytecode text: 'N,code jt jf k,…' (decimal), as `tc filter … bpf bytecode` takes and prints it. */
export function formatBytecode(program: readonly CbpfInsn[]): string {
  return [String(program.length), ...program.map((i) => `${i.code} ${i.jt} ${i.jf} ${i.k}`)].join(',');
}

/** Parse tc's bytecode text ('N,code jt jf k,…', decimal; what `nfbpf_compile` and `tc … show` print); validated. */
export function parseBytecode(text: string): CbpfInsn[] {
  if (typeof text !== 'string') throw new TcInputError(`bytecode must be text, got ${typeof text}`);
  const parts = text.trim().replace(/,$/, '').split(',');
  const count = parts.shift()!.trim();
  if (!/^\d+$/.test(count)) throw new TcInputError(`bytecode starts with its instruction count, got ${JSON.stringify(count)}`);
  if (Number(count) !== parts.length) throw new TcInputError(`bytecode says ${count} instructions but holds ${parts.length}`);
  const program = parts.map((p, i) => {
    const f = p.trim().split(/\s+/);
    if (f.length !== 4 || !f.every((x) => /^\d+$/.test(x)))
      throw new TcInputError(`bytecode instruction ${i} is not 'code jt jf k' in decimal: ${JSON.stringify(p)}`);
    const [code, jt, jf, k] = f.map(Number) as [number, number, number, number];
    return { code, jt, jf, k };
  });
  return validateProgram(program);
}
