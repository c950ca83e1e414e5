/** The state store's container records: in-place checkpoints, long records, damaged files. */
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ContainerRecord } from '../../src/isolator/state.js';
import { StateStore } from '../../src/isolator/state.js';
import { Registry } from '../../src/isolator/registry.js';
import { parseConfig } from '../../src/isolator/config.js';
import { PortSet } from '../../src/isolator/port-set.js';

let dir: string;
let store: StateStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pmi-state-'));
  store = new StateStore(dir);
  store.init();
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const record = (id: string, filters: number): ContainerRecord => ({
  id,
  phase: 'creating',
  netns: `/run/pmi/netns/${id}`,
  ownsNetns: true,
  veth: 'pmi7',
  vethIndex: 1_000_007,
  ifname: 'eth0',
  ephemeralPorts: { begin: 33008, end: 33023 },
  ports: [[31000, 31009]],
  hostFilters: Array.from({ length: filters }, (_, i) => ({
    dev: 'eth0' as const,
    handle: 0x27900001 + i,
    prio: 770,
    block: [31000, 31001] as [number, number],
  })),
  mirrorSlot: 3,
  createdAt: '2026-11-26T08:00:00.000Z',
});

describe('container records', () => {
  it('rewrites a record in place: a shorter one leaves no trace of the longer', () => {
    const long = record('c1', 8);
    store.writeContainer(long);
    const inode = statSync(join(store.containersDir, 'c1.json')).ino;
    const short = { ...record('c1', 1), phase: 'ready' as const };
    store.writeContainer(short);
    expect(store.readContainer('c1')).toEqual(short);
    expect(statSync(join(store.containersDir, 'c1.json')).ino).toBe(inode); // no rename
    expect(readdirSync(store.containersDir)).toEqual(['c1.json']);
  });

  it('writes records longer than a page through a temporary file and a rename', () => {
    const big = record('c2', 90);
    expect(Buffer.byteLength(JSON.stringify(big))).toBeGreaterThan(4096); // as written: compact
    store.writeContainer(record('c2', 1));
    const inode = statSync(join(store.containersDir, 'c2.json')).ino;
    store.writeContainer(big);
    expect(store.readContainer('c2')).toEqual(big);
    expect(statSync(join(store.containersDir, 'c2.json')).ino).not.toBe(inode); // replaced by a rename
    store.writeContainer(record('c2', 2)); // back under a page: the old file is longer than a page
    expect(store.readContainer('c2')).toEqual(record('c2', 2));
    expect(readdirSync(store.containersDir)).toEqual(['c2.json']);
  });

  it('sets a damaged record aside instead of failing', () => {
    store.writeContainer(record('c3', 1));
    writeFileSync(join(store.containersDir, 'c4.json'), '{"id": "c4", "pha');
    expect(store.listContainers().map((r) => r.id)).toEqual(['c3']);
    expect(readdirSync(store.containersDir).some((f) => f.startsWith('c4.json.corrupt-'))).toBe(true);
    expect(readFileSync(join(store.containersDir, 'c3.json'), 'utf8').trimEnd().endsWith('}')).toBe(true);
  });
});

describe('the change log', () => {
  it('names the records changed between two generations, only when it holds every one of them', async () => {
    await store.withLock(async () => {
      const g0 = store.readGeneration();
      const g1 = store.bumpGeneration('a');
      store.bumpGeneration('b');
      const g3 = store.bumpGeneration('a');
      expect(store.changesSince(g0, g3)).toEqual(['a', 'b', 'a']);
      expect(store.changesSince(g1, g3)).toEqual(['b', 'a']);
      expect(store.changesSince(g3, g3)).toBeUndefined(); // nothing to do: the caller checks equality first
      expect(store.changesSince('', g3)).toBeUndefined(); // never loaded: everything
      const g4 = store.bumpGeneration(); // not a single record (host changes): everything
      const g5 = store.bumpGeneration('c');
      expect(store.changesSince(g3, g5)).toBeUndefined();
      expect(store.changesSince(g4, g5)).toEqual(['c']);
      expect(store.changesSince(g4, String(Number(g5) + 1))).toBeUndefined(); // a generation the log lacks
    });
  });

  it('a torn or missing log, or one that started over, means a full reload', async () => {
    await store.withLock(async () => {
      const g0 = store.readGeneration();
      store.bumpGeneration('a');
      const g2 = store.bumpGeneration('b');
      writeFileSync(join(dir, 'changes.log'), readFileSync(join(dir, 'changes.log'), 'latin1').replace(/\n(\d+) b\n$/, '\n$1 '));
      expect(store.changesSince(g0, g2)).toBeUndefined();
      rmSync(join(dir, 'changes.log'));
      expect(store.changesSince(g0, g2)).toBeUndefined();
      const g3 = store.bumpGeneration('c'); // the log starts again at g3
      expect(store.changesSince(g2, g3)).toEqual(['c']);
      expect(store.changesSince(g0, g3)).toBeUndefined();
      // Past its size limit it is rewritten from the newest line.
      const long = 'x'.repeat(100);
      let g = g3;
      for (let i = 0; i < 700; i++) g = store.bumpGeneration(`${long}${i}`);
      expect(statSync(join(dir, 'changes.log')).size).toBeLessThan(70 * 1024);
      expect(store.changesSince(g3, g)).toBeUndefined();
      expect(store.changesSince(String(Number(g) - 1), g)).toEqual([`${long}699`]);
    });
  });
});

describe("the registry's mirror chunks", () => {
  // MIRRORS_PER_FILTER (8) slots per chunk: slots 3, 9 and 12 are in chunks 0, 1, 1.
  const at = (id: string, slot: number, phase: ContainerRecord['phase'] = 'ready'): ContainerRecord => ({
    ...record(id, 0),
    phase,
    mirrorSlot: slot,
    vethIndex: 1_000_000 + slot,
    ephemeralPorts: { begin: 33008 + 16 * slot, end: 33023 + 16 * slot },
  });
  const registry = () => new Registry(parseConfig({ resources: 'ports:[31000-32000];ephemeral_ports:[33000-60999]', ephemeral_ports_per_container: 16 }));

  it('lists a chunk in slot order, through adds, removes, reloads and resets', () => {
    const r = registry();
    r.add(at('c12', 12));
    r.add(at('c3', 3));
    r.add(at('c9', 9));
    r.add(at('new', 10, 'creating'));
    expect(r.chunkVeths(0)).toEqual([1_000_003]);
    expect(r.chunkVeths(1)).toEqual([1_000_009, 1_000_012]); // a 'creating' record only when included
    expect(r.chunkVeths(1, 'c9', 'new')).toEqual([1_000_010, 1_000_012]);
    r.remove(r.records.get('c12')!);
    expect(r.chunkVeths(1)).toEqual([1_000_009]);
    // Another process moved c9 to slot 20 (chunk 2): the reload moves it too.
    r.reload(['c9'], (id) => (id === 'c9' ? at('c9', 20) : undefined));
    expect(r.chunkVeths(1)).toEqual([]);
    expect(r.chunkVeths(2)).toEqual([1_000_020]);
    r.reset([at('a', 1), at('b', 0)]);
    expect(r.chunkVeths(0)).toEqual([1_000_000, 1_000_001]);
    expect(r.chunkVeths(2)).toEqual([]);
  });
});

describe("the registry's port index", () => {
  const registry = () => new Registry(parseConfig({ resources: 'ports:[31000-32000];ephemeral_ports:[33000-60999]', ephemeral_ports_per_container: 16 }));
  /** What clashes() answered when it walked every record: the ports of `wanted` another record holds. */
  const walked = (r: Registry, wanted: PortSet, except?: string): string => {
    let held = PortSet.EMPTY;
    for (const rec of r.records.values()) if (rec.id !== except) held = held.union(PortSet.ofRanges([...rec.ports, ...(rec.pendingPorts ?? [])]));
    return held.intersect(wanted).toString();
  };
  const ranges = (seed: () => number): Array<[number, number]> => {
    const out: Array<[number, number]> = [];
    for (let n = 1 + Math.floor(seed() * 3); n > 0; n--) {
      const b = 31000 + Math.floor(seed() * 990);
      out.push([b, b + Math.floor(seed() * 10)]);
    }
    return PortSet.ofRanges(out).ranges.map(([b, e]) => [b, e]);
  };

  it('answers as a walk over every record would, through adds, removes, updates, reloads and resets', () => {
    let x = 7;
    const seed = () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const r = registry();
    const at = (id: string, slot: number): ContainerRecord => ({
      ...record(id, 0),
      mirrorSlot: slot,
      vethIndex: 1_000_000 + slot,
      ephemeralPorts: { begin: 33000 + 16 * slot, end: 33015 + 16 * slot },
      ports: ranges(seed),
    });
    let checks = 0;
    for (let step = 0; step < 400; step++) {
      const ids = [...r.records.keys()];
      const pick = ids[Math.floor(seed() * ids.length)];
      const op = seed();
      if (op < 0.4 || !pick) r.add(at(`c${step}`, step));
      else if (op < 0.55) r.remove(r.records.get(pick)!);
      else if (op < 0.7)
        r.setPorts(r.records.get(pick)!, r.records.get(pick)!.ports, ranges(seed)); // an update begins
      else if (op < 0.8)
        r.setPorts(r.records.get(pick)!, r.records.get(pick)!.pendingPorts ?? r.records.get(pick)!.ports, undefined); // and ends
      else if (op < 0.95) r.reload([pick], (id) => ({ ...at(id, step), id }));
      else r.reset([...r.records.values()].slice(0, 5));
      const wanted = PortSet.ofRanges(ranges(seed));
      const except = seed() < 0.3 ? pick : undefined;
      expect(r.clashes(wanted, except).toString()).toBe(walked(r, wanted, except));
      checks++;
    }
    expect(checks).toBe(400);
    expect(r.clashes(PortSet.ofRanges([[31000, 32000]])).isEmpty).toBe(r.records.size === 0);
  });
});
