/**
 * CHECK: are a CNI container's kernel objects present and as ADD made them? Read-only, over the
 * SDK: the host veth (exists, is a veth, is up), the sandbox interface (same index, up, the host's
 * MAC, the host IP, the default route via the gateway), the container's ip_local_port_range, the
 * host port filters recorded for it, and prevResult agreeing with all of that.
 */
import { statSync } from 'node:fs';
import { Netns } from '../netlink/index.js';
import { Rtnl } from '../rtnl/index.js';
import { dumpFilters } from '../isolator/engine.js';
import type { HostFacts } from '../isolator/host.js';
import { parseLocalPortRange } from '../isolator/host.js';
import { INGRESS_HANDLE, isIngressRole, missingRules, roleDevice, selfPortRules, selfRoutingBase } from '../isolator/plan.js';
import { selfRoutingHost } from '../isolator/container-setup.js';
import { blocksOf } from '../isolator/records.js';
import type { ContainerRecord } from '../isolator/state.js';
import type { CniResult } from './result.js';

function sameNamespace(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/** What prevResult must say about our attachment. */
export function checkPrevResult(prev: CniResult, rec: ContainerRecord, host: HostFacts, netns: string): string[] {
  const problems: string[] = [];
  const ifaces = prev.interfaces ?? [];
  const sandboxIdx = ifaces.findIndex((i) => i.name === rec.ifname && i.sandbox === netns);
  if (sandboxIdx < 0) problems.push(`prevResult lists no interface ${rec.ifname} in sandbox ${netns}`);
  else {
    const mac = ifaces[sandboxIdx]!.mac;
    if (mac !== undefined && mac.toLowerCase() !== host.eth0.address.toLowerCase())
      problems.push(`prevResult gives ${rec.ifname} the MAC ${mac}, but it must have the host's ${host.eth0.address}`);
  }
  if (!ifaces.some((i) => i.name === rec.veth && !i.sandbox)) problems.push(`prevResult lists no host interface ${rec.veth}`);
  const address = `${host.ip}/${host.prefixlen}`;
  const ip = (prev.ips ?? []).find((i) => i.address === address && (i.interface === undefined || i.interface === sandboxIdx));
  if (!ip) problems.push(`prevResult has no IP ${address} on ${rec.ifname}`);
  for (const a of rec.ipv6 ?? []) {
    if (!(prev.ips ?? []).some((i) => i.address === a && (i.interface === undefined || i.interface === sandboxIdx)))
      problems.push(`prevResult has no IPv6 ${a} on ${rec.ifname}`);
  }
  return problems;
}

/** Every way the kernel differs from what ADD built (empty: all good). */
export async function checkKernel(rec: ContainerRecord, host: HostFacts, netns: string): Promise<string[]> {
  const problems: string[] = [];
  if (rec.phase !== 'ready') problems.push(`its state is '${rec.phase}', not 'ready'`);
  if (rec.netns !== netns && !sameNamespace(rec.netns, netns)) problems.push(`it was added in ${rec.netns}, not in CNI_NETNS ${netns}`);
  problems.push(...(await checkHostSide(rec, host)));
  problems.push(...(await checkContainerSide(rec, host, netns)));
  return problems;
}

/** The host veth, and the port and ICMP error filters recorded for the container on the host's eth0 and lo. */
async function checkHostSide(rec: ContainerRecord, host: HostFacts): Promise<string[]> {
  const problems: string[] = [];
  const hostRtnl = Rtnl.open(host.netns);
  try {
    const veth = await hostRtnl.links.find(rec.vethIndex);
    if (!veth || veth.name !== rec.veth) problems.push(`host veth ${rec.veth} (index ${rec.vethIndex}) is missing`);
    else {
      if (veth.kind !== 'veth') problems.push(`host interface ${rec.veth} is a ${veth.kind ?? 'device'}, not a veth`);
      if (!veth.up) problems.push(`host veth ${rec.veth} is down`);
    }
    for (const dev of ['eth0', 'lo'] as const) {
      // Its port filters and ICMP error filters on that device's ingress.
      const wanted = rec.hostFilters.filter((f) => isIngressRole(f.dev) && roleDevice(f.dev) === dev);
      if (!wanted.length) continue;
      const ifindex = dev === 'eth0' ? host.eth0.index : host.lo.index;
      const present = new Set((await dumpFilters(hostRtnl.session, ifindex, INGRESS_HANDLE)).map((f) => f.handle));
      const missing = wanted.filter((f) => !present.has(f.handle));
      if (missing.length) {
        const name = dev === 'eth0' ? host.eth0.name : host.lo.name;
        problems.push(
          `${missing.length} of its port filters on host ${name} are missing (ports ${missing.map((f) => `${f.block[0]}-${f.block[1]}`).join(', ')})`,
        );
      }
    }
  } finally {
    hostRtnl.close();
  }
  return problems;
}

/** The sandbox interface, its address and default route, and the container's ip_local_port_range. */
async function checkContainerSide(rec: ContainerRecord, host: HostFacts, netns: string): Promise<string[]> {
  const problems: string[] = [];
  const ns = Netns.fromPath(netns);
  let cRtnl: Rtnl;
  try {
    cRtnl = Rtnl.open(ns);
  } catch (e) {
    ns.close();
    problems.push(`cannot enter CNI_NETNS ${netns}: ${(e as Error).message}`);
    return problems;
  }
  try {
    problems.push(...(await checkSandboxLink(cRtnl, rec, host, netns)));
    let range: [number, number] | undefined;
    try {
      range = parseLocalPortRange(cRtnl.readSysctl('net.ipv4.ip_local_port_range'));
    } catch (e) {
      problems.push(`cannot read ip_local_port_range in ${netns}: ${(e as Error).message}`);
    }
    const { begin, end } = rec.ephemeralPorts;
    if (range && (range[0] !== begin || range[1] !== end))
      problems.push(`ip_local_port_range in ${netns} is ${range[0]}-${range[1]}, not its ephemeral block ${begin}-${end}`);
    if (rec.selfRouting) problems.push(...(await checkSelfRouting(cRtnl, rec, host, netns)));
  } finally {
    cRtnl.close();
    ns.close();
  }
  return problems;
}

/** The routing rules that keep what it sends to its own ports inside it, and send the rest to the host (plan-self.ts). */
async function checkSelfRouting(cRtnl: Rtnl, rec: ContainerRecord, host: HostFacts, netns: string): Promise<string[]> {
  const self = selfRoutingHost(host);
  if (!rec.ipv6) delete self.ip6;
  const wanted = [...selfRoutingBase(self, rec.vethIndex).rules, ...selfPortRules(self, blocksOf(rec))];
  const found = [...(await cRtnl.rules.list('inet')), ...(rec.ipv6 ? await cRtnl.rules.list('inet6') : [])];
  const missing = missingRules(wanted, found);
  return missing.length ? [`${missing.length} of the ${wanted.length} routing rules that keep its traffic to itself are missing in ${netns}`] : [];
}

/** The sandbox interface: the veth's peer, up, with the host's MAC and IP and the default route via the gateway. */
async function checkSandboxLink(cRtnl: Rtnl, rec: ContainerRecord, host: HostFacts, netns: string): Promise<string[]> {
  const problems: string[] = [];
  const link = await cRtnl.links.find(rec.ifname);
  if (!link) {
    problems.push(`interface ${rec.ifname} is missing in ${netns}`);
    return problems;
  }
  if (link.index !== rec.vethIndex)
    problems.push(`interface ${rec.ifname} in ${netns} is not the peer of ${rec.veth} (index ${link.index}, expected ${rec.vethIndex})`);
  if (!link.up) problems.push(`interface ${rec.ifname} in ${netns} is down`);
  if ((link.address ?? '').toLowerCase() !== host.eth0.address.toLowerCase())
    problems.push(`interface ${rec.ifname} has MAC ${link.address}, not the host's ${host.eth0.address}`);
  const addrs = await cRtnl.addresses.list({ ifindex: link.index, family: 'inet' });
  const cidr = `${host.ip}/${host.prefixlen}`;
  if (!addrs.some((a) => a.cidr === cidr)) problems.push(`interface ${rec.ifname} lacks the host address ${cidr}`);
  const def = await cRtnl.routes.defaultRoute();
  if (!def || def.gateway !== host.gateway || def.oif !== link.index) {
    problems.push(
      `the default route in ${netns} is ${def ? `via ${def.gateway ?? '-'} (oif ${def.oif ?? '-'})` : 'missing'}, expected via ${host.gateway} on ${rec.ifname}`,
    );
  }
  if (rec.ipv6) problems.push(...(await checkSandboxIpv6(cRtnl, rec, host, link.index, netns)));
  return problems;
}

/** With IPv6 (--ipv6): the addresses it was given, and the IPv6 default route via the host's IPv6 gateway. */
async function checkSandboxIpv6(cRtnl: Rtnl, rec: ContainerRecord, host: HostFacts, ifindex: number, netns: string): Promise<string[]> {
  const problems: string[] = [];
  const have = new Set((await cRtnl.addresses.list({ ifindex, family: 'inet6' })).map((a) => a.cidr));
  for (const a of rec.ipv6 ?? []) if (!have.has(a)) problems.push(`interface ${rec.ifname} lacks the host's IPv6 address ${a}`);
  const gateway = host.ipv6?.gateway;
  if (gateway) {
    const def = await cRtnl.routes.defaultRoute('inet6');
    if (!def || def.gateway !== gateway || def.oif !== ifindex)
      problems.push(`the IPv6 default route in ${netns} is ${def ? `via ${def.gateway ?? '-'}` : 'missing'}, expected via ${gateway} on ${rec.ifname}`);
  }
  return problems;
}
