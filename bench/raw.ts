/**
 * raw: the netlink core's floor. RTM_GETLINK for one link (reply + ACK), one request at a time
 * (async and the synchronous fast path) and batched, next to iproute2 doing the same (`ip -batch` and one `ip` process per request),
 * in a lab namespace.
 */
import { execFileSync } from 'node:child_process';
import { NetlinkSession, Netns, encodeBody, type Request } from '../src/netlink/index.js';
import { RTM, RTM_NAMES, linkMessage } from '../src/rtnl/index.js';
import { round, summarize, timeMs } from './stats.js';
import { guardLab } from './util.js';
import { Lab } from '../src/lab/index.js';

export interface RawResult {
  n: number;
  sdk_single_per_sec: number;
  sdk_single_latency_us: { p50: number; p99: number };
  sdk_sync_single_per_sec: number;
  ratio_sync_vs_async_single: number;
  sdk_batched_per_sec: number;
  ip_batch_per_sec: number;
  ip_process_per_sec: number;
  ratio_sdk_batched_vs_ip_batch: number;
  repetitions: number;
  spread: Record<string, { min: number; max: number }>;
}

export async function benchRaw(opts: { n?: number; repetitions?: number; processN?: number } = {}): Promise<RawResult> {
  const n = opts.n ?? 10_000;
  const reps = opts.repetitions ?? 5;
  const lab = new Lab({ world: false });
  const unguard = guardLab(lab);
  const session = NetlinkSession.open({ netns: Netns.fromName(lab.host), typeNames: RTM_NAMES });
  try {
    const getLo: Request = { type: RTM.GETLINK, encode: (w) => encodeBody(w, linkMessage, { header: { index: 1 } }) };
    // warm up (JIT and the kernel's allocators)
    for (let i = 0; i < 2000; i++) await session.request(getLo);
    for (let i = 0; i < 3; i++) await session.batch(Array.from({ length: n }, () => getLo));

    const single: number[] = [];
    const syncSingle: number[] = [];
    const batched: number[] = [];
    const ipBatch: number[] = [];
    const ipProcess: number[] = [];
    const latenciesUs: number[] = [];
    const batchInput = Array.from({ length: n }, () => 'link show dev lo').join('\n') + '\n';
    const reqs = Array.from({ length: n }, () => getLo);
    const processN = Math.min(opts.processN ?? 200, n);
    for (let r = 0; r < reps; r++) {
      single.push(
        n /
          ((await timeMs(async () => {
            for (let i = 0; i < n; i++) {
              const t0 = process.hrtime.bigint();
              await session.request(getLo);
              latenciesUs.push(Number(process.hrtime.bigint() - t0) / 1e3);
            }
          })) /
            1e3),
      );
      syncSingle.push(
        n /
          ((await timeMs(() => {
            for (let i = 0; i < n; i++) session.requestSync(getLo);
          })) /
            1e3),
      );
      batched.push(
        n /
          ((await timeMs(async () => {
            const results = await session.batch(reqs);
            if (!results.every((x) => x.ok)) throw new Error('batched GETLINK failed');
          })) /
            1e3),
      );
      ipBatch.push(
        n / ((await timeMs(() => execFileSync('ip', ['-n', lab.host, '-batch', '-'], { input: batchInput, stdio: ['pipe', 'ignore', 'inherit'] }))) / 1e3),
      );
      ipProcess.push(
        processN /
          ((await timeMs(() => {
            for (let i = 0; i < processN; i++) execFileSync('ip', ['-n', lab.host, 'link', 'show', 'dev', 'lo'], { stdio: 'ignore' });
          })) /
            1e3),
      );
    }
    const s = summarize(single);
    const ss = summarize(syncSingle);
    const b = summarize(batched);
    const ib = summarize(ipBatch);
    const ip = summarize(ipProcess);
    const lat = summarize(latenciesUs);
    return {
      n,
      sdk_single_per_sec: Math.round(s.median),
      sdk_single_latency_us: { p50: round(lat.median, 1), p99: round(lat.p99, 1) },
      sdk_sync_single_per_sec: Math.round(ss.median),
      ratio_sync_vs_async_single: round(ss.median / s.median),
      sdk_batched_per_sec: Math.round(b.median),
      ip_batch_per_sec: Math.round(ib.median),
      ip_process_per_sec: Math.round(ip.median),
      ratio_sdk_batched_vs_ip_batch: round(b.median / ib.median),
      repetitions: reps,
      spread: {
        sdk_single_per_sec: { min: Math.round(s.min), max: Math.round(s.max) },
        sdk_sync_single_per_sec: { min: Math.round(ss.min), max: Math.round(ss.max) },
        sdk_batched_per_sec: { min: Math.round(b.min), max: Math.round(b.max) },
        ip_batch_per_sec: { min: Math.round(ib.min), max: Math.round(ib.max) },
        ip_process_per_sec: { min: Math.round(ip.min), max: Math.round(ip.max) },
      },
    };
  } finally {
    session.close();
    lab.destroy();
    unguard();
  }
}
