import { describe, expect, it } from 'vitest';
import { FakeKernel, datagram, doneReply, errorReply, message } from '../fake/fake-kernel.js';
import {
  ClosedError,
  DecodeError,
  DumpInterruptedError,
  EncodeError,
  NLM_F,
  NetlinkError,
  NetlinkSession,
  NetlinkSocket,
  Netns,
  NetnsError,
  OverrunError,
  SocketError,
  TimeoutError,
  decodeBody,
  encodeBody,
  type NetlinkMessage,
  type NetlinkWarning,
  type Request,
} from '../../src/netlink/index.js';
import { RTM, RTM_NAMES, Rtnl, linkMessage, type LinkAttrs } from '../../src/rtnl/index.js';

function session(kernel: FakeKernel, opts: ConstructorParameters<typeof NetlinkSession>[1] = {}) {
  return new NetlinkSession(NetlinkSocket.open({ shim: kernel }), { typeNames: RTM_NAMES, timeoutMs: 200, ...opts });
}

const newLink = (attrs: LinkAttrs, flags = NLM_F.CREATE | NLM_F.EXCL): Request => ({
  type: RTM.NEWLINK,
  flags,
  schema: linkMessage,
  encode: (w) => encodeBody(w, linkMessage, { attrs }),
});
const getLinks: Request = { type: RTM.GETLINK, schema: linkMessage, encode: (w) => encodeBody(w, linkMessage, {}) };
const linkReply = (seq: number, index: number, name: string, flags: number = NLM_F.MULTI) =>
  message(RTM.NEWLINK, seq, flags, (w) => encodeBody(w, linkMessage, { header: { index }, attrs: { ifname: name } }));
const decodeLink = (m: NetlinkMessage) => decodeBody(linkMessage, m.payload).attrs.ifname;

describe('request engine against a scripted kernel', () => {
  it('acknowledges a request and sends it with REQUEST|ACK and a fresh sequence number', async () => {
    const k = new FakeKernel((m) => [errorReply(m, 0)]);
    const s = session(k);
    const r = await s.request(newLink({ ifname: 'a' }));
    const r2 = await s.request(newLink({ ifname: 'b' }));
    expect(r.warnings).toEqual([]);
    expect(r2.replies).toEqual([]);
    expect(k.sent[0]!.flags).toBe(NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL);
    expect(k.sent[1]!.seq).toBe((k.sent[0]!.seq + 1) >>> 0);
    expect(s.pendingCount).toBe(0);
  });

  it('matches answers to requests by sequence number, whatever their order', async () => {
    const k = new FakeKernel((m) => [{ bytes: errorReply(m, m.seq % 2 ? 17 : 0), delayMs: m.seq % 2 ? 5 : 30 }]);
    const s = session(k);
    const [a, b] = await Promise.allSettled([s.request(newLink({ ifname: 'x' })), s.request(newLink({ ifname: 'y' }))]);
    const odd = k.sent[0]!.seq % 2 === 1;
    const failed = odd ? a : b;
    const passed = odd ? b : a;
    expect(failed.status).toBe('rejected');
    expect(passed.status).toBe('fulfilled');
  });

  it('ignores answers that do not come from the kernel (sender port ≠ 0)', async () => {
    const k = new FakeKernel((m) => [{ bytes: errorReply(m, 0), sender: 999 }]);
    const s = session(k, { timeoutMs: 50 });
    await expect(s.request(newLink({ ifname: 'a' }))).rejects.toBeInstanceOf(TimeoutError);
  });

  it('collects a multipart dump spread over several datagrams, some arriving later', async () => {
    const k = new FakeKernel((m) => [
      datagram(linkReply(m.seq, 1, 'lo'), linkReply(m.seq, 2, 'eth0')),
      { bytes: linkReply(m.seq, 3, 'veth0'), delayMs: 5 },
      { bytes: doneReply(m.seq), delayMs: 10 },
    ]);
    const s = session(k);
    expect(await s.dump(getLinks, { decode: decodeLink })).toEqual(['lo', 'eth0', 'veth0']);
    expect(k.sent[0]!.flags).toBe(NLM_F.REQUEST | NLM_F.DUMP);
  });

  it('returns the replies of a GET before its ACK', async () => {
    const k = new FakeKernel((m) => [datagram(linkReply(m.seq, 7, 'eth0', 0), errorReply(m, 0))]);
    const s = session(k);
    const r = await s.request(getLinks, { decode: decodeLink });
    expect(r.replies).toEqual(['eth0']);
  });

  it('raises NetlinkError with errno, code, the extack text verbatim and the attribute path', async () => {
    // Offset of IFLA_ADDRESS in our request: nlmsghdr 16 + ifinfomsg 16 + IFLA_IFNAME (4+2 → 8).
    const k = new FakeKernel((m) => [errorReply(m, 99, { msg: 'Invalid link address', offs: 40 })]);
    const s = session(k);
    const err = await s.request(newLink({ ifname: 'a', address: 'ff:ff:ff:ff:ff:ff' })).catch((e) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.errno).toBe(99);
    expect(err.code).toBe('EADDRNOTAVAIL');
    expect(err.request.typeName).toBe('RTM_NEWLINK');
    expect(err.extack.message).toBe('Invalid link address');
    expect(err.extack.attributePath).toEqual(['IFLA_ADDRESS']);
    expect(err.message).toBe('RTM_NEWLINK: EADDRNOTAVAIL: Invalid link address (at IFLA_ADDRESS)');
  });

  it('names nested attributes from an offset inside IFLA_LINKINFO › IFLA_INFO_KIND', async () => {
    // nlmsghdr 16 + ifinfomsg 16 = 32: IFLA_LINKINFO header at 32, IFLA_INFO_KIND header at 36.
    const k = new FakeKernel((m) => [errorReply(m, 95, { msg: 'Unknown device type', offs: 36 })]);
    const err = await session(k)
      .request(newLink({ linkinfo: { kind: 'nope' } }))
      .catch((e) => e);
    expect(err.extack.attributePath).toEqual(['IFLA_LINKINFO', 'IFLA_INFO_KIND']);
    expect(err.isNotSupported()).toBe(true);
  });

  it('returns warnings carried by a successful ACK and passes them to onWarning', async () => {
    const seen: NetlinkWarning[] = [];
    const k = new FakeKernel((m) => [errorReply(m, 0, { msg: 'quantum of class 10001 is big. Consider r2q change.' })]);
    const r = await session(k, { onWarning: (w) => seen.push(w) }).request(newLink({ ifname: 'a' }));
    expect(r.warnings.map((w) => w.message)).toEqual(['quantum of class 10001 is big. Consider r2q change.']);
    expect(seen).toHaveLength(1);
  });

  it('rejects a dump whose NLMSG_DONE carries an error and extack', async () => {
    const k = new FakeKernel((m) => [datagram(linkReply(m.seq, 1, 'lo'), doneReply(m.seq, 0, -22, { msg: 'Invalid header for link dump' }))]);
    const err = await session(k)
      .dump(getLinks, { decode: decodeLink })
      .catch((e) => e);
    expect(err).toBeInstanceOf(NetlinkError);
    expect(err.code).toBe('EINVAL');
    expect(err.extack.message).toBe('Invalid header for link dump');
  });

  describe('interrupted dumps (NLM_F_DUMP_INTR)', () => {
    const interruptedOnce = () => {
      let n = 0;
      return new FakeKernel((m) => {
        const intr = n++ === 0 ? NLM_F.DUMP_INTR : 0;
        return [datagram(linkReply(m.seq, 1, `try${n}`, NLM_F.MULTI | intr), doneReply(m.seq, intr))];
      });
    };
    it('retries by default and returns the consistent result', async () => {
      const k = interruptedOnce();
      expect(await session(k).dump(getLinks, { decode: decodeLink })).toEqual(['try2']);
      expect(k.sent).toHaveLength(2);
    });
    it("throws DumpInterruptedError with the partial results under 'throw'", async () => {
      const err = await session(interruptedOnce())
        .dump(getLinks, { decode: decodeLink, onInterrupted: 'throw' })
        .catch((e) => e);
      expect(err).toBeInstanceOf(DumpInterruptedError);
      expect(err.partial).toEqual(['try1']);
    });
    it("returns the partial results under 'accept'", async () => {
      expect(await session(interruptedOnce()).dump(getLinks, { decode: decodeLink, onInterrupted: 'accept' })).toEqual(['try1']);
    });
    it('gives up after the retry budget', async () => {
      const k = new FakeKernel((m) => [doneReply(m.seq, NLM_F.DUMP_INTR)]);
      const err = await session(k)
        .dump(getLinks, { decode: decodeLink, retries: 2 })
        .catch((e) => e);
      expect(err).toBeInstanceOf(DumpInterruptedError);
      expect(k.sent).toHaveLength(3);
    });
  });

  it('never runs two dumps at once on one socket', async () => {
    const k = new FakeKernel((m) => [{ bytes: datagram(linkReply(m.seq, 1, `d${m.seq}`), doneReply(m.seq)), delayMs: 10 }]);
    const s = session(k);
    const first = s.dump(getLinks, { decode: decodeLink });
    const second = s.dump(getLinks, { decode: decodeLink });
    await new Promise((r) => setTimeout(r, 2));
    expect(k.sent).toHaveLength(1); // the second waits for the first's DONE
    await Promise.all([first, second]);
    expect(k.sent).toHaveLength(2);
  });

  it('reports a receive-buffer overrun (ENOBUFS) to the waiting requests', async () => {
    const k = new FakeKernel((_m, kernel) => void kernel.overrun());
    const err = await session(k)
      .request(newLink({ ifname: 'a' }))
      .catch((e) => e);
    expect(err).toBeInstanceOf(OverrunError);
    expect(err.code).toBe('ENOBUFS');
  });

  it('reports an answer too large for the receive buffer, then grows and succeeds', async () => {
    // One message of ~70 kB (two 35 kB attributes): larger than the initial 64 KiB buffer.
    const huge = (seq: number) =>
      message(RTM.NEWLINK, seq, 0, (w) => encodeBody(w, linkMessage, { attrs: { ifname: 'x'.repeat(35_000), ifalias: 'y'.repeat(35_000) } }));
    const k = new FakeKernel((m) => [datagram(huge(m.seq), errorReply(m, 0))]);
    const s = session(k);
    const err = await s.request(getLinks).catch((e) => e);
    expect(err).toBeInstanceOf(OverrunError);
    expect(err.message).toMatch(/a 700\d\d-byte answer did not fit the receive buffer/);
    const ok = await s.request(getLinks, { decode: decodeLink });
    expect(ok.replies[0]).toHaveLength(35_000);
  });

  it('times out, ignores the late answer, and keeps working', async () => {
    let first = true;
    const k = new FakeKernel((m) => {
      const late = first;
      first = false;
      return [{ bytes: errorReply(m, 0), delayMs: late ? 80 : 0 }];
    });
    const s = session(k, { timeoutMs: 30 });
    const err = await s.request(newLink({ ifname: 'a' })).catch((e) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.message).toMatch(/RTM_NEWLINK: no answer from the kernel within 30 ms/);
    await new Promise((r) => setTimeout(r, 100)); // the late ACK arrives and is dropped
    await expect(s.request(newLink({ ifname: 'b' }))).resolves.toEqual({ warnings: [], replies: [] });
  });

  it('raises DecodeError for a malformed answer', async () => {
    const k = new FakeKernel((m) => {
      const bad = linkReply(m.seq, 1, 'lo');
      bad.writeUInt16LE(200, 32); // first attribute claims 200 bytes
      return [datagram(bad, doneReply(m.seq))];
    });
    const err = await session(k)
      .dump(getLinks, { decode: (m) => decodeBody(linkMessage, m.payload) })
      .catch((e) => e);
    expect(err).toBeInstanceOf(DecodeError);
    expect(err.message).toMatch(/^IFLA: attribute IFLA_IFNAME has length 200/);
  });

  it('raises DecodeError for a datagram with broken framing', async () => {
    const k = new FakeKernel(() => [Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17])]);
    await expect(session(k).request(newLink({ ifname: 'a' }))).rejects.toBeInstanceOf(DecodeError);
  });

  it('rejects waiting requests with ClosedError when closed', async () => {
    const k = new FakeKernel(() => []);
    const s = session(k);
    const p = s.request(newLink({ ifname: 'a' }));
    s.close();
    await expect(p).rejects.toBeInstanceOf(ClosedError);
    await expect(s.request(newLink({ ifname: 'b' }))).rejects.toBeInstanceOf(ClosedError);
    expect(k.closedFds).toEqual([100]);
  });

  it('offloads a slow request to a threadpool thread and still collects its ACK', async () => {
    const k = new FakeKernel((m) => [errorReply(m, 0)]);
    const s = session(k);
    const pending = s.request(newLink({ ifname: 'slow' }), { offload: true });
    expect(k.sent).toHaveLength(0); // nothing sent from the calling thread
    await expect(pending).resolves.toEqual({ warnings: [], replies: [] });
    expect(k.sent).toHaveLength(1);
    const refused = new FakeKernel((m) => [errorReply(m, 19)]);
    await expect(session(refused).request(newLink({ ifname: 'x' }), { offload: true })).rejects.toThrow(/ENODEV/);
  });

  describe('synchronous fast path', () => {
    it('returns the ACK and replies without the event loop', () => {
      const k = new FakeKernel((m) => [datagram(linkReply(m.seq, 7, 'eth0', 0), errorReply(m, 0))]);
      const r = session(k).requestSync(getLinks, { decode: decodeLink });
      expect(r).toEqual({ warnings: [], replies: ['eth0'] });
    });
    it('throws the kernel refusal', () => {
      const k = new FakeKernel((m) => [errorReply(m, 17, { msg: 'File exists' })]);
      expect(() => session(k).requestSync(newLink({ ifname: 'a' }))).toThrow('RTM_NEWLINK: EEXIST: File exists');
    });
    it('times out when no answer comes', () => {
      const s = session(new FakeKernel(() => []), { timeoutMs: 20 });
      expect(() => s.requestSync(newLink({ ifname: 'a' }))).toThrow(TimeoutError);
      expect(s.pendingCount).toBe(0);
    });
  });

  describe('batches', () => {
    it('returns one result per request; a refusal does not hide the others', async () => {
      const k = new FakeKernel((m) => [errorReply(m, decodeLink(m) === 'bad' ? 17 : 0, decodeLink(m) === 'bad' ? { msg: 'exists' } : undefined)]);
      const names = Array.from({ length: 10 }, (_, i) => (i === 4 ? 'bad' : `l${i}`));
      const results = await session(k, { batchMessages: 3 }).batch(names.map((ifname) => newLink({ ifname })));
      expect(results.filter((r) => r.ok)).toHaveLength(9);
      const bad = results[4]!;
      expect(bad.ok).toBe(false);
      if (!bad.ok) {
        expect(bad.error).toBeInstanceOf(NetlinkError);
        expect((bad.error as NetlinkError).code).toBe('EEXIST');
      }
      expect(k.sendCalls).toEqual([3, 3, 3, 1]); // packed, bounded by batchMessages
    });

    it('packs by bytes as well as by count', async () => {
      const k = new FakeKernel((m) => [errorReply(m, 0)]);
      const reqs = Array.from({ length: 20 }, (_, i) => newLink({ ifname: `link${i}` }));
      await session(k, { batchBytes: 200 }).batch(reqs);
      // Each message is 44 bytes (nlmsghdr 16 + ifinfomsg 16 + IFLA_IFNAME 12): 4 fit in 200.
      expect(k.sent[0]!.raw.length).toBe(44);
      expect(k.sendCalls).toEqual([4, 4, 4, 4, 4]);
    });

    it('waits for ACKs that arrive later before sending the next chunk', async () => {
      const k = new FakeKernel((m) => [{ bytes: errorReply(m, 0), delayMs: 3 }]);
      const results = await session(k, { batchMessages: 4 }).batch(Array.from({ length: 10 }, (_, i) => newLink({ ifname: `n${i}` })));
      expect(results.every((r) => r.ok)).toBe(true);
      expect(k.sendCalls).toEqual([4, 4, 2]);
    });

    it('sends nothing when any request cannot be encoded', async () => {
      const k = new FakeKernel((m) => [errorReply(m, 0)]);
      const bad = newLink({ ifname: 'ok', mtu: -1 });
      const err = await session(k)
        .batch([newLink({ ifname: 'a' }), bad])
        .catch((e) => e);
      expect(err).toBeInstanceOf(EncodeError);
      expect(err.message).toBe('RTM_NEWLINK › IFLA_MTU: u32 must be an integer in 0..4294967295, got -1');
      expect(k.sent).toHaveLength(0);
    });

    it('acknowledges only the last request of each sendmsg; refusals still come one by one', async () => {
      const k = new FakeKernel((m) => [errorReply(m, decodeLink(m) === 'bad' ? 17 : 0)]);
      const names = Array.from({ length: 7 }, (_, i) => (i === 1 || i === 3 ? 'bad' : `l${i}`));
      const r = await session(k, { batchMessages: 4 }).batch(names.map((ifname) => newLink({ ifname })));
      expect(k.sent.map((m) => Boolean(m.flags & NLM_F.ACK))).toEqual([false, false, false, true, false, false, true]);
      expect(r.map((x) => x.ok)).toEqual([true, false, true, false, true, true, true]);
      expect(!r[3]!.ok && (r[3]!.error as NetlinkError).code).toBe('EEXIST');
      expect(!r[1]!.ok && (r[1]!.error as NetlinkError).request.seq).toBe(k.sent[1]!.seq);
    });

    it('with ackEach, every request is acknowledged and keeps its warnings', async () => {
      const k = new FakeKernel((m) => [errorReply(m, 0, decodeLink(m) === 'w' ? { msg: 'careful' } : undefined)]);
      const r = await session(k).batch([newLink({ ifname: 'a' }), newLink({ ifname: 'w' })], { ackEach: true });
      expect(k.sent.every((m) => m.flags & NLM_F.ACK)).toBe(true);
      expect(r[1]!.ok && r[1]!.warnings.map((w) => w.message)).toEqual(['careful']);
    });

    it('fails the unanswered requests of a chunk whose ACK never comes', async () => {
      const k = new FakeKernel((m) => (decodeLink(m) === 'lost' ? [] : [errorReply(m, decodeLink(m) === 'bad' ? 17 : 0)]));
      const names = ['a', 'bad', 'lost', 'c', 'd'];
      const r = await session(k, { timeoutMs: 20, batchMessages: 3 }).batch(names.map((ifname) => newLink({ ifname })));
      expect(r.map((x) => x.ok)).toEqual([false, false, false, true, true]);
      expect(!r[0]!.ok && r[0]!.error).toBeInstanceOf(TimeoutError);
      expect(!r[1]!.ok && (r[1]!.error as NetlinkError).code).toBe('EEXIST'); // refused before the timeout
      expect(!r[2]!.ok && r[2]!.error).toBeInstanceOf(TimeoutError);
    });

    it('reports a per-request timeout inside a batch with ackEach', async () => {
      const k = new FakeKernel((m) => (decodeLink(m) === 'lost' ? [] : [errorReply(m, 0)]));
      const r = await session(k, { timeoutMs: 20 }).batch([newLink({ ifname: 'a' }), newLink({ ifname: 'lost' }), newLink({ ifname: 'c' })], { ackEach: true });
      expect(r.map((x) => x.ok)).toEqual([true, false, true]);
      expect(!r[1]!.ok && r[1]!.error).toBeInstanceOf(TimeoutError);
    });
  });
});

describe('a session in a network namespace that does not exist', () => {
  const missing = `pmi-lab-${process.pid}-no-such-namespace`;

  it('fails with a NetnsError naming the path, before any socket is opened', () => {
    const k = new FakeKernel(() => []);
    let err: unknown;
    try {
      NetlinkSession.open({ shim: k, netns: Netns.fromName(missing, k) });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NetnsError);
    expect(err).toBeInstanceOf(SocketError); // a kind of SocketError, as before
    expect((err as NetnsError).message).toBe(`/run/netns/${missing}: no such network namespace (ENOENT)`);
    expect((err as NetnsError).name).toBe('NetnsError');
    expect((err as NetnsError).path).toBe(`/run/netns/${missing}`);
    expect((err as NetnsError).code).toBe('ENOENT');
    expect(k.sent).toEqual([]);
  });

  it('names the path when a handle is opened by name (Rtnl.open), by path, or its fd is asked for', () => {
    expect(() => Rtnl.open(missing)).toThrow(NetnsError);
    expect(() => Rtnl.open(missing)).toThrow(`/run/netns/${missing}: no such network namespace (ENOENT)`);
    expect(() => Netns.fromPath(`/run/${missing}/net`).fd).toThrow(`/run/${missing}/net: no such network namespace (ENOENT)`);
    expect(String(new NetnsError('/run/netns/foo', 'open', -2))).toBe('NetnsError: /run/netns/foo: no such network namespace (ENOENT)');
  });

  it('says so when a path is not a network namespace (setns refuses it)', () => {
    const notNs = Netns.fromPath('/proc/self/stat');
    try {
      expect(() => notNs.run(() => 1)).toThrow(new NetnsError('/proc/self/stat', 'setns', 22));
      expect(() => notNs.run(() => 1)).toThrow('/proc/self/stat: not a network namespace (EINVAL)');
    } finally {
      notNs.close();
    }
  });
});
