/**
 * The agent's request handling that knows nothing of routes: reading a JSON body (an oversize one
 * is answered 413 after it was read), unknown fields, pids, request targets, and the HTTP status
 * of an error.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { errorReport } from '../isolator/errors.js';

const MAX_BODY_BYTES = 64 << 10;
/**
 * An oversize body is read and thrown away up to this much, so that the 413 reaches a client
 * still sending (closing on unread data resets the connection); past it the connection is cut.
 */
const MAX_DISCARD_BYTES = 16 << 20;

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The body field or flag at fault (400s). */
    readonly field?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A value for an error message: JSON, cut short. */
export function shown(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? 'undefined' : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** One past the largest pid (the kernel's pid_max). */
function pidMax(): number {
  try {
    const n = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8').trim());
    if (Number.isSafeInteger(n) && n > 1) return n;
  } catch {
    /* no /proc: the kernel's own limit */
  }
  return 4194304;
}

/**
 * What is wrong with a pid to isolate, or undefined: not an integer, out of 1..pid_max-1, or no
 * such process (checked before anything is built, so no mount or netlink error stands for it).
 */
export function pidProblem(pid: unknown): string | undefined {
  const max = pidMax();
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid < 1 || pid >= max)
    return `must be an integer in 1..${max - 1} (pid_max is ${max}), got ${shown(pid)}`;
  if (!existsSync(`/proc/${pid}`)) return `no process ${pid}`;
  return undefined;
}

/**
 * The request's body as a JSON object. An oversize body is read to its end (up to
 * MAX_DISCARD_BYTES) and thrown away, then answered 413 with the connection closed.
 */
export function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const tooBig = () => new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`, undefined, { connection: 'close' });
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_DISCARD_BYTES) {
      reject(tooBig());
      return;
    }
    let chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        chunks = [];
        if (size > MAX_DISCARD_BYTES) {
          done = true;
          reject(tooBig());
        }
        return;
      }
      chunks.push(c);
    });
    req.on('error', (e) => {
      // The client went away mid-body: nobody reads the answer, but it is not our failure.
      done = true;
      reject(new HttpError(400, `the request body ended early: ${e.message}`));
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      if (size > MAX_BODY_BYTES) {
        reject(tooBig());
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let v: unknown;
      try {
        v = text.trim() ? JSON.parse(text) : {};
      } catch (e) {
        reject(new HttpError(400, `malformed JSON: ${(e as Error).message}`));
        return;
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) reject(new HttpError(400, 'the body must be a JSON object'));
      else resolve(v as Record<string, unknown>);
    });
  });
}

/** Fields a body may hold; any other is named in a 400. */
export function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw new HttpError(400, `unknown field ${shown(k)} in the body (allowed: ${allowed.join(', ')})`, k);
  }
}

/** The HTTP status of an error, by its type (the isolator's errors carry theirs; anything else is a 500). */
export function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  return errorReport(e).httpStatus;
}

/** The body field or flag an error names (400s), by its type. */
export function fieldOf(e: unknown): string | undefined {
  if (e instanceof HttpError) return e.field;
  return errorReport(e).field;
}

/** The path of a request target (origin or absolute form), without query or fragment. */
export function requestPath(url: string | undefined): string {
  let t = url ?? '/';
  const abs = /^https?:\/\/[^/?#]*/i.exec(t);
  if (abs) t = t.slice(abs[0].length) || '/';
  t = t.replace(/[?#].*$/s, '');
  if (!t.startsWith('/')) throw new HttpError(400, `malformed request target ${shown(url)}`);
  return t.replace(/\/+$/, '') || '/';
}
