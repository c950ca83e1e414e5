/**
 * The files of the state's work_dir (see StateStore): records read and written so that a crash
 * leaves the old or the new one, never half of one, the change log, and the sweep of what crashes
 * leave behind.
 */
import {
  appendFileSync,
  closeSync,
  constants as fsConstants,
  fstatSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

/** A write this size or smaller, at offset 0, stays within one page: all or nothing for a dying process. */
const PAGE_BYTES = 4096;

/** The change log is rewritten from empty past this size (~2000 changes). */
const CHANGE_LOG_BYTES = 64 * 1024;

/** A record, or undefined if missing; an unreadable one is set aside (renamed `*.corrupt-<ms>`). */
export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    // Unreadable (torn by a power loss, or damaged): set aside; recover() removes its objects as orphans.
    renameSync(path, `${path}.corrupt-${Date.now()}`);
    return undefined;
  }
}

/**
 * A container's checkpoints, written without a rename: on this kind of disk (ext4 in a VM) a
 * create-and-rename costs ~0.5 ms, a quarter of a container's setup. A new record is created
 * with O_EXCL; a later one overwrites it in place with a single write at offset 0, padded with
 * spaces (valid JSON) to the old length so nothing of the old text is left. What is written in
 * one call within one page is all or nothing for a process that dies (a kill cannot split it);
 * longer records take the rename path. A record torn by a power loss is set aside when read, and
 * recover() removes its objects as orphans (they are gone after a reboot anyway).
 */
export function writeRecordInPlace(path: string, value: unknown, likelyNew = false): void {
  const body = Buffer.from(JSON.stringify(value) + '\n');
  if (body.length > PAGE_BYTES) return writeJson(path, value);
  // A new record is created (O_EXCL); an existing one is overwritten at its current length.
  const fd = openRecordFile(path, likelyNew);
  let viaRename = false;
  try {
    const old = fstatSync(fd).size;
    if (old > PAGE_BYTES) viaRename = true;
    else {
      const bytes = body.length < old ? Buffer.concat([body, Buffer.alloc(old - body.length, 0x20)]) : body;
      if (writeSync(fd, bytes, 0, bytes.length, 0) !== bytes.length) throw new Error(`short write to ${path}`);
    }
  } finally {
    closeSync(fd);
  }
  if (viaRename) writeJson(path, value);
}

/** Replace a file by write and rename: readers see the old or the new file, never half of one. */
export function writeJson(path: string, value: unknown): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(value, null, 2) + '\n');
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Remove what crashes leave in these directories besides records (under the lock, from recover):
 * `*.tmp-<pid>` files of processes that are gone, and records set aside as unreadable
 * (`*.corrupt-<ms>`; recover has removed their objects as orphans by then). Returns the paths.
 */
export function sweepLeftovers(dirs: string[]): string[] {
  const removed: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const tmp = /\.tmp-(\d+)$/.exec(name);
      if (!(tmp && !processAlive(Number(tmp[1]))) && !/\.corrupt-\d+$/.test(name)) continue;
      unlinkQuiet(join(dir, name));
      removed.push(join(dir, name));
    }
  }
  return removed;
}

/**
 * The container records changed after generation `from` up to `to`, from the change log: only
 * when the log holds every generation in between (else undefined: reload everything). The log is
 * an optimisation; a missing, compacted, torn or gapped log only costs a full reload.
 */
export function changesSince(logPath: string, from: string, to: string): string[] | undefined {
  const first = Number(from) + 1;
  const last = Number(to);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first || from === '') return undefined;
  let text: string;
  try {
    text = readFileSync(logPath, 'latin1');
  } catch {
    return undefined;
  }
  const ids: string[] = [];
  let expect = first;
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line);
    if (!m) continue; // the trailing empty line (a torn one breaks the sequence below)
    const gen = Number(m[1]);
    if (gen < first) continue;
    if (gen !== expect || m[2] === '*') return undefined;
    ids.push(m[2]!);
    if (gen === last) return ids;
    expect++;
  }
  return undefined;
}

/** Append `<gen> <id or *>` to the change log; past CHANGE_LOG_BYTES it starts over (readers behind reload everything). */
export function logChange(logPath: string, gen: number, what: string): void {
  const line = `${gen} ${what}\n`;
  try {
    let size = 0;
    try {
      size = statSync(logPath).size;
    } catch {
      /* none yet */
    }
    if (size > CHANGE_LOG_BYTES) writeFileSync(logPath, line, { mode: 0o600 });
    else appendFileSync(logPath, line, { mode: 0o600 });
  } catch {
    /* without the line, the gap makes other processes reload everything */
  }
}

/** Open a record for writing, creating it if missing; `likelyNew` tries creating first (a failed open costs an exception). */
function openRecordFile(path: string, likelyNew: boolean): number {
  const create = (): number => openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o600);
  const existing = (): number => openSync(path, fsConstants.O_WRONLY);
  const [first, second, retryOn] = likelyNew ? [create, existing, 'EEXIST'] : [existing, create, 'ENOENT'];
  try {
    return first();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== retryOn) throw e;
    return second();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
