/**
 * Classic BPF as data: the builders and the label assembler against tc's own bytecode text, the
 * validation every program goes through before it is sent, bpf filter specs refused before
 * sending, and malformed TCA_BPF options decoded into typed errors (never a crash).
 */
import { describe, expect, it } from 'vitest';
import { DecodeError, decodeBody, encodeBody, Writer } from '../../src/netlink/index.js';
import {
  BPF,
  SKF_AD,
  TC_ACT,
  TcInputError,
  and,
  assemble,
  filterMessage,
  filterRequest,
  formatBpfHandle,
  formatBytecode,
  isBpf,
  isU32,
  ja,
  jeq,
  jge,
  jgt,
  jset,
  ldAbs,
  ldImm,
  ldInd,
  ldLen,
  ldxMsh,
  parseBpfHandle,
  parseBytecode,
  parseFilter,
  ret,
  retA,
  tax,
  tcMessage,
  txa,
  validateProgram,
  type BpfFilter,
  type BpfFilterSpec,
  type CbpfInsn,
  type CbpfItem,
} from '../../src/tc/index.js';
import { fromJsonValue, loadGolden } from '../helpers/golden.js';
import { DROP_UDP_5000, MATCH_UDP_5001 } from './cases.js';

const vectors = loadGolden('tc');
const vector = (name: string) => vectors.find((v) => v.name === name)!;

/** The verified drop program, written with the builders: IPv4, UDP, destination port 5000 → SHOT. */
const dropUdp5000: CbpfItem[] = [
  ldAbs('h', 12),
  jeq(0x0800, 0, 'pass'),
  ldAbs('b', 23),
  jeq(17, 0, 'pass'),
  ldAbs('h', 36),
  jeq(5000, 0, 'pass'),
  ret(TC_ACT.SHOT),
  { label: 'pass' },
  ret(TC_ACT.UNSPEC),
];

/** An error thrown by fn (and that it is a TcInputError). */
function refusal(fn: () => unknown): TcInputError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(TcInputError);
    return e as TcInputError;
  }
  throw new Error('no error');
}

describe('classic BPF instructions', () => {
  it('opcodes are the kernel numbers (linux/filter.h, bpf_common.h)', () => {
    expect(ldAbs('h', 12)).toEqual({ code: 40, jt: 0, jf: 0, k: 12 }); // BPF_LD|BPF_H|BPF_ABS
    expect(ldAbs('b', 23)).toEqual({ code: 48, jt: 0, jf: 0, k: 23 });
    expect(ldAbs('w', 26)).toEqual({ code: 32, jt: 0, jf: 0, k: 26 });
    expect(ldInd('h', 16)).toEqual({ code: 72, jt: 0, jf: 0, k: 16 });
    expect(ldxMsh(14)).toEqual({ code: 177, jt: 0, jf: 0, k: 14 }); // ldxb 4*([14]&0xf)
    expect(ldLen()).toEqual({ code: BPF.LD | BPF.W | BPF.LEN, jt: 0, jf: 0, k: 0 });
    expect(ldImm(7)).toEqual({ code: 0, jt: 0, jf: 0, k: 7 });
    expect(jeq(5000, 0, 1)).toEqual({ code: 21, jt: 0, jf: 1, k: 5000 });
    expect(jgt(1, 2, 3).code).toBe(0x25);
    expect(jge(1, 2).code).toBe(0x35);
    expect(jset(0x1fff, 1).code).toBe(0x45);
    expect(and(0x0f)).toEqual({ code: 0x54, jt: 0, jf: 0, k: 0x0f });
    expect(tax().code).toBe(0x07);
    expect(txa().code).toBe(0x87);
    expect(ja(3)).toEqual({ code: 0x05, jt: 0, jf: 0, k: 3 });
    expect(ret(TC_ACT.SHOT)).toEqual({ code: 6, jt: 0, jf: 0, k: 2 });
    expect(ret(TC_ACT.UNSPEC)).toEqual({ code: 6, jt: 0, jf: 0, k: 0xffffffff });
    expect(retA().code).toBe(0x16);
    // Ancillary loads take the kernel's negative offsets, stored as u32.
    expect(ldAbs('h', SKF_AD.OFF + SKF_AD.PROTOCOL).k).toBe(0xfffff000);
    expect(BPF.MAXINSNS).toBe(4096);
  });

  it('the verified drop program, assembled from builders, is the numbers of tc bytecode', () => {
    const program = assemble(dropUdp5000);
    expect(program).toEqual([
      { code: 40, jt: 0, jf: 0, k: 12 },
      { code: 21, jt: 0, jf: 5, k: 2048 },
      { code: 48, jt: 0, jf: 0, k: 23 },
      { code: 21, jt: 0, jf: 3, k: 17 },
      { code: 40, jt: 0, jf: 0, k: 36 },
      { code: 21, jt: 0, jf: 1, k: 5000 },
      { code: 6, jt: 0, jf: 0, k: 2 },
      { code: 6, jt: 0, jf: 0, k: 4294967295 },
    ]);
    expect(formatBytecode(program)).toBe(DROP_UDP_5000);
    expect(parseBytecode(DROP_UDP_5000)).toEqual(program);
    expect(parseBytecode(`${DROP_UDP_5000},`)).toEqual(program); // tc accepts a trailing comma too
  });

  it('labels resolve to forward offsets: from jt and jf, shared, at the start, mixed with numbers, for ja', () => {
    expect(
      assemble([
        { label: 'start' },
        ldAbs('h', 12),
        jeq(0x0800, 'ip', 'other'),
        { label: 'ip' },
        ldAbs('b', 23),
        jeq(6, 'match', 0),
        jeq(17, 'match', 'other'),
        { label: 'match' },
        ret(-1),
        { label: 'other' },
        ret(0),
      ]),
    ).toEqual([
      { code: 40, jt: 0, jf: 0, k: 12 },
      { code: 21, jt: 0, jf: 4, k: 0x0800 },
      { code: 48, jt: 0, jf: 0, k: 23 },
      { code: 21, jt: 1, jf: 0, k: 6 },
      { code: 21, jt: 0, jf: 1, k: 17 },
      { code: 6, jt: 0, jf: 0, k: 0xffffffff },
      { code: 6, jt: 0, jf: 0, k: 0 },
    ]);
    expect(assemble([ja('end'), ret(1), ret(2), { label: 'end' }, ret(3)])[0]).toEqual({ code: 5, jt: 0, jf: 0, k: 2 });
    expect(MATCH_UDP_5001.map((i) => [i.jt, i.jf])).toEqual([
      [0, 0],
      [0, 6],
      [0, 0],
      [0, 4],
      [0, 0],
      [0, 0],
      [0, 1],
      [0, 0],
      [0, 0],
    ]);
  });

  it('a jump 255 instructions ahead is the farthest a label reaches', () => {
    const filler = Array.from({ length: 255 }, () => ldLen());
    expect(assemble([jeq(1, 'far', 0), ...filler, { label: 'far' }, ret(0)])[0]!.jt).toBe(255);
    const e = refusal(() => assemble([jeq(1, 'far', 0), ...filler, ldLen(), { label: 'far' }, ret(0)]));
    expect(e.message).toBe("instruction 0: jt to label 'far' skips 256 instructions; at most 255");
  });

  it('refuses unknown, backward, duplicate and end-of-program labels, and labels where no jump is', () => {
    const cases: Array<[CbpfItem[], string]> = [
      [[jeq(1, 'nowhere', 0), ret(0)], "instruction 0: jt jumps to unknown label 'nowhere'"],
      [[{ label: 'top' }, ldLen(), jeq(1, 0, 'top'), ret(0)], "instruction 1: jf jumps backwards to label 'top' (classic BPF jumps forwards only)"],
      [[jeq(1, 'x', 0), { label: 'x' }, ret(0), { label: 'x' }, ret(1)], "label 'x' is defined twice"],
      [[jeq(1, 'end', 0), ret(0), { label: 'end' }], "instruction 0: jt jumps to label 'end', which marks the end of the program, not an instruction"],
      [[{ code: BPF.RET | BPF.K, jt: 'x', jf: 0, k: 0 }, { label: 'x' }, ret(0)], 'instruction 0: only a conditional jump has jt/jf targets (code 0x6)'],
      [[{ code: BPF.LD | BPF.W | BPF.ABS, jt: 0, jf: 0, k: 'x' }, { label: 'x' }, ret(0)], 'instruction 0: only ja takes a label as its operand (code 0x20)'],
      [[{ label: '' }, ret(0)], 'a label needs a name, got ""'],
    ];
    for (const [items, message] of cases) expect(refusal(() => assemble(items)).message).toBe(message);
  });

  it('validation: 1..4096 instructions, fields in range, jumps inside, a ret at the end', () => {
    const r = ret(0);
    expect(validateProgram(Array.from({ length: 4096 }, () => r))).toHaveLength(4096);
    const cases: Array<[unknown, RegExp]> = [
      [[], /1\.\.4096 instructions \(BPF_MAXINSNS\), got 0/],
      [Array.from({ length: 4097 }, () => r), /got 4097/],
      ['6 0 0 0', /array of \{code, jt, jf, k\}/],
      [[{ code: 0x10000, jt: 0, jf: 0, k: 0 }], /instruction 0: code must be an integer in 0\.\.65535/],
      [[ldLen(), { code: 6, jt: 256, jf: 0, k: 0 }], /instruction 1: jt must be an integer in 0\.\.255/],
      [[{ code: 6, jt: 0, jf: -1, k: 0 }], /instruction 0: jf must be an integer/],
      [[{ code: 6, jt: 0, jf: 0, k: -1 }], /instruction 0: k must be an integer in 0\.\.4294967295/],
      [[{ code: 6, jt: 0, jf: 0, k: 2 ** 32 }], /instruction 0: k must be an integer/],
      [[{ code: 6, jt: 0, jf: 0, k: 1.5 }], /instruction 0: k must be an integer/],
      [[null], /instruction 0 is not an instruction/],
      [[jeq(1, 0, 1), ret(0)], /instruction 0: jump of 1 lands past the end of the 2-instruction program/],
      [[ja(1), ret(0)], /instruction 0: ja of 1 lands past the end/],
      [[ret(0), ldLen()], /the last instruction must be a ret \(BPF_RET\), got code 0x80/],
    ];
    for (const [program, re] of cases) expect(refusal(() => validateProgram(program as CbpfInsn[])).message, JSON.stringify(program)?.slice(0, 80)).toMatch(re);
    expect(refusal(() => ldAbs('q' as 'w', 1)).message).toMatch(/load size must be 'w', 'h' or 'b'/);
    expect(refusal(() => jeq(1, 256)).message).toMatch(/jeq jt must be an integer in 0\.\.255/);
    expect(refusal(() => ret(2 ** 32)).message).toMatch(/ret value must be an integer/);
  });

  it('tc bytecode text: count checked, decimal fields, validated', () => {
    expect(refusal(() => parseBytecode('2,6 0 0 0')).message).toBe('bytecode says 2 instructions but holds 1');
    expect(refusal(() => parseBytecode('1,6 0 0 0x2')).message).toMatch(/bytecode instruction 0 is not 'code jt jf k' in decimal/);
    expect(refusal(() => parseBytecode('x,6 0 0 0')).message).toMatch(/starts with its instruction count/);
    expect(refusal(() => parseBytecode('1,21 0 0 2')).message).toMatch(/instruction 0: jump of 0 lands past the end of the 1-instruction program/);
    expect(refusal(() => parseBytecode('2,6 0 0 0,40 0 0 12')).message).toMatch(/last instruction must be a ret/);
  });
});

describe('bpf filter specs', () => {
  const base: BpfFilterSpec = { kind: 'bpf', ifindex: 2, parent: 'ffff:', priority: 5, program: [ret(TC_ACT.SHOT)], directAction: true };

  it('handles are plain u32 numbers (tc `handle 1`), not u32-classifier handles', () => {
    expect(parseBpfHandle(1)).toBe(1);
    expect(parseBpfHandle('0x10')).toBe(16);
    expect(parseBpfHandle('4096')).toBe(4096);
    expect(parseBpfHandle(0xffffffff)).toBe(0xffffffff);
    expect(formatBpfHandle(1)).toBe('0x1');
    // 0x1000 would be a u32 hash table ('1:'); for bpf it is handle 4096.
    expect(filterMessage('add', { ...base, handle: 0x1000 }).header!.handle).toBe(0x1000);
    expect(filterMessage('delete', { kind: 'bpf', ifindex: 2, parent: 'ffff:', priority: 5, handle: '0x800' }).header!.handle).toBe(0x800);
    for (const bad of ['800::1', '1:', '010', '-1', 'x', 2 ** 32, -1, 1.5]) {
      expect(refusal(() => filterMessage('add', { ...base, handle: bad })).message, String(bad)).toMatch(/bpf filter handle/);
    }
    expect(refusal(() => filterMessage('add', { ...base, handle: { htid: 1 } as never })).message).toMatch(/bpf filter handle must be a number or its text/);
  });

  it('refuses before sending: a bad program, actions on a direct-action program, a bad name, classid or action', () => {
    const cases: Array<[Partial<BpfFilterSpec>, RegExp]> = [
      [{ program: [] }, /1\.\.4096 instructions/],
      [{ program: [ldLen()] }, /last instruction must be a ret/],
      [{ actions: [{ kind: 'mirred', action: 'redirect', ifindex: 3 }] }, /direct-action program gives the verdict itself: its actions would never run/],
      [{ directAction: false, actions: [{ kind: 'mirred', action: 'redirect', ifindex: 0 }] }, /action 1: mirred target ifindex/],
      [{ directAction: 'yes' as never }, /directAction must be true or false/],
      [{ classid: '1' }, /invalid tc handle/],
      [{ name: 'x'.repeat(256) }, /bpf name must be 1\.\.255 bytes/],
      [{ name: 'a\0b' }, /without NUL/],
      [{ priority: 0 }, /priority must be an integer in 1\.\.65535/],
    ];
    for (const [patch, re] of cases) expect(refusal(() => filterRequest('add', { ...base, ...patch })).message, JSON.stringify(patch)).toMatch(re);
    expect(refusal(() => filterMessage('add', { ...base, kind: 'flower' as 'bpf' })).message).toMatch(/supported: u32, bpf/);
    expect(refusal(() => filterMessage('delete', { ifindex: 2, parent: 'ffff:', priority: 5, handle: 1 })).message).toMatch(/needs its kind \(u32 or bpf\)/);
  });

  it('encodes in tc order: classid, actions, the program, the name, the flags', () => {
    const spec: BpfFilterSpec = { ...base, directAction: false, classid: '1:1', actions: [{ kind: 'mirred', action: 'mirror', ifindex: 3 }], name: 'match' };
    const m = filterMessage('replace', spec);
    expect(Object.keys(m.attrs!.options as object)).toEqual(['classid', 'act', 'opsLen', 'ops', 'name']);
    expect(Object.keys(filterMessage('add', base).attrs!.options as object)).toEqual(['opsLen', 'ops', 'flags']);
  });
});

describe('decoding bpf filters', () => {
  /** A dumped message: the reply vector's body, with its options replaced. */
  const reply = (name: string) => decodeBody(tcMessage, Buffer.from(vector(name).hex, 'hex').subarray(16));
  const reencode = (m: ReturnType<typeof reply>) => {
    const w = new Writer();
    encodeBody(w, tcMessage, m as never);
    return w.toBuffer();
  };

  it('typed from the kernel replies: program, direct action, classid, mirred action, NOT_IN_HW', () => {
    const da = parseFilter(reply('reply-filter-bpf-da'));
    expect(isBpf(da) && !isU32(da)).toBe(true);
    expect(da).toMatchObject({
      kind: 'bpf',
      handle: 1,
      priority: 5,
      protocol: 0x0800,
      parent: 0xffff0000,
      chain: 0,
      directAction: true,
      actions: [],
      genFlags: 8,
    });
    expect((da as BpfFilter).program).toEqual(parseBytecode(DROP_UDP_5000));
    expect((da as BpfFilter).classid).toBeUndefined();
    const m = parseFilter(reply('reply-filter-bpf-classid-mirred')) as BpfFilter;
    const devices = (vector('reply-filter-bpf-classid-mirred').provenance as unknown as { devices: { eth0: number } }).devices;
    expect(m).toMatchObject({ handle: 2, priority: 6, directAction: false, classid: 0x10001 });
    expect(m.program).toEqual(MATCH_UDP_5001);
    expect(m.actions).toMatchObject([{ kind: 'mirred', direction: 'egress', action: 'redirect', ifindex: devices.eth0, verdict: TC_ACT.STOLEN }]);
  });

  it('malformed options are a DecodeError with the attribute path, never a crash', () => {
    // TCA_BPF_OPS not a whole number of instructions.
    const bytes = Buffer.from(vector('reply-filter-bpf-da').hex, 'hex').subarray(16);
    const opsAt = bytes.indexOf(Buffer.from('44000500', 'hex')); // nla_len 68, TCA_BPF_OPS
    expect(opsAt).toBeGreaterThan(0);
    const cut = Buffer.from(bytes);
    cut.writeUInt16LE(68 - 4, opsAt);
    const e1 = (() => {
      try {
        decodeBody(tcMessage, cut);
      } catch (e) {
        return e as DecodeError;
      }
    })();
    expect(e1).toBeInstanceOf(DecodeError);
    expect(e1!.message).toMatch(/TCA_OPTIONS › TCA_BPF_OPS: sock_filter\[\] needs a multiple of 8 bytes, got 60/);

    const m = reply('reply-filter-bpf-da');
    const o = m.attrs.options as { opsLen?: number; ops?: CbpfInsn[] };
    const bad: Array<[object, RegExp]> = [
      [{ ...o, opsLen: 7 }, /TCA_OPTIONS › TCA_BPF_OPS_LEN: TCA_BPF_OPS_LEN says 7 instructions, TCA_BPF_OPS holds 8/],
      [{ ...o, ops: undefined }, /TCA_OPTIONS: TCA_BPF_OPS_LEN without TCA_BPF_OPS/],
      [{ ...o, opsLen: undefined }, /TCA_OPTIONS: TCA_BPF_OPS without TCA_BPF_OPS_LEN/],
    ];
    for (const [options, re] of bad) {
      // Through the wire, as a dump would bring it.
      const msg = decodeBody(tcMessage, reencode({ ...m, attrs: { ...m.attrs, options } as never }));
      expect(() => parseFilter(msg)).toThrow(DecodeError);
      expect(() => parseFilter(msg)).toThrow(re);
    }
    // The per-priority placeholder (no options) and an eBPF program (no ops) are not errors.
    expect(isBpf(parseFilter({ ...m, attrs: { kind: 'bpf' } }))).toBe(false);
    const ebpf = parseFilter({
      ...m,
      attrs: { kind: 'bpf', options: { id: 42, tag: Buffer.from('0102030405060708', 'hex'), name: 'cls_main', flags: 1 } } as never,
    });
    expect(ebpf).toMatchObject({ kind: 'bpf', program: [], id: 42, tag: '0102030405060708', name: 'cls_main', directAction: true });
  });

  it('every recorded bpf vector decodes into what its builder sent', () => {
    const d = fromJsonValue(vector('filter-bpf-mirred-redirect').decoded) as ReturnType<typeof reply>;
    const f = parseFilter(d) as BpfFilter;
    expect(f).toMatchObject({ kind: 'bpf', handle: 16, priority: 7, protocol: 3, directAction: false });
    expect(f.program).toEqual(MATCH_UDP_5001);
  });
});
