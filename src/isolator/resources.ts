import { PortSet } from './port-set.js';

/** What the isolator reads from Mesos' --resources: the managed ports, the ephemeral pool, cpus. */
export interface ParsedResources {
  ports: PortSet;
  ephemeralPorts: PortSet;
  cpus: number | undefined;
}

/**
 * Parse 'cpus:2;mem:1024;ports:[31000-32000];ephemeral_ports:[32768-57344]'. Roles in
 * parentheses (ports(*):[…]) are accepted and ignored. Unknown resource names are ignored.
 */
export function parseResources(text: string): ParsedResources {
  let ports = PortSet.EMPTY;
  let ephemeralPorts = PortSet.EMPTY;
  let cpus: number | undefined;
  for (const part of text.split(';')) {
    if (!part.trim()) continue;
    const m = /^\s*([a-z_]+)(?:\([^)]*\))?\s*:\s*(.+?)\s*$/i.exec(part);
    if (!m) throw new Error(`cannot parse resource '${part.trim()}' (expected name:value)`);
    const [, name, value] = m as unknown as [string, string, string];
    const asPorts = (what: string) => {
      try {
        return PortSet.parse(value);
      } catch (e) {
        throw new Error(`Invalid ${what} resource '${value}': ${(e as Error).message}`);
      }
    };
    if (name === 'ports') ports = ports.union(asPorts('ports'));
    else if (name === 'ephemeral_ports') ephemeralPorts = ephemeralPorts.union(asPorts('ephemeral ports'));
    else if (name === 'cpus') {
      cpus = Number(value);
      if (!Number.isFinite(cpus) || cpus < 0) throw new Error(`Invalid cpus resource '${value}'`);
    }
  }
  return { ports, ephemeralPorts, cpus };
}
