/** What a container's record says beyond its fields: its veth's names, its port blocks, its mirror chunk, what create prints. */
import type { PortBlock } from '../tc/index.js';
import { portBlockRange } from '../tc/index.js';
import type { ContainerInfo } from './engine.js';
import type { HostPortFilter } from './plan.js';
import { MIRRORS_PER_FILTER } from './plan.js';
import { portSetBlocks } from './port-blocks.js';
import { PortSet } from './port-set.js';
import type { ContainerRecord, HostFilterRecord } from './state.js';

/** Interface indexes of host veths are chosen by us: VETH_INDEX_BASE + a per-host sequence number. */
export const VETH_INDEX_BASE = 1_000_000;
export const VETH_PREFIX = 'pmi';
/** The name a destroyed container's end of the veth takes in a namespace that outlives it, until the pair is gone. */
export const retiredName = (rec: { vethIndex: number }): string => `${VETH_PREFIX}x${rec.vethIndex - VETH_INDEX_BASE}`;

export function toInfo(r: ContainerRecord): ContainerInfo {
  const info: ContainerInfo = { id: r.id, netns: r.netns, veth: r.veth, ephemeral_ports: { ...r.ephemeralPorts }, ports: r.ports.map(([b, e]) => [b, e]) };
  if (r.ipv6) info.ipv6_addresses = [...r.ipv6];
  return info;
}

export const blocksOf = (r: Pick<ContainerRecord, 'ephemeralPorts' | 'ports'>): PortBlock[] => [
  ...portSetBlocks(PortSet.ofRanges([[r.ephemeralPorts.begin, r.ephemeralPorts.end]])),
  ...portSetBlocks(PortSet.ofRanges(r.ports)),
];

/** The mirror chunk (one ARP and one ICMP filter) a container's slot falls in. */
export const mirrorChunkOf = (r: { mirrorSlot: number }): number => Math.floor(r.mirrorSlot / MIRRORS_PER_FILTER);

/** What a record keeps of planned host port filters: device, handle, prio and block, for exact removal. */
export function hostFilterRecords(filters: HostPortFilter[]): HostFilterRecord[] {
  return filters.map((f) => {
    const { begin, end } = portBlockRange(f.block);
    return { dev: f.role, handle: f.spec.handle, prio: f.spec.priority, block: [begin, end] };
  });
}
