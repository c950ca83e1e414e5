/**
 * CNI results (spec 1.0.0/1.1.0 §5 "Success", and 0.4.0's shape): our interfaces, IP and route merged
 * into the previous plugin's result, as a chained plugin must.
 */

/** The spec versions this plugin speaks; VERSION reports them. */
export const SUPPORTED_VERSIONS = ['0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

export interface CniInterface {
  name: string;
  mac?: string;
  sandbox?: string;
  [key: string]: unknown;
}
export interface CniIp {
  address: string;
  gateway?: string;
  interface?: number;
  /** 0.3.x/0.4.0 only: '4' or '6'. */
  version?: string;
  [key: string]: unknown;
}
export interface CniRoute {
  dst: string;
  gw?: string;
  [key: string]: unknown;
}
export interface CniDns {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}
export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIp[];
  routes?: CniRoute[];
  dns?: CniDns;
  [key: string]: unknown;
}

/** What one ADD of ours contributes. */
export interface Attachment {
  hostVeth: { name: string; mac: string };
  sandbox: { name: string; mac: string; path: string };
  /** 'address/prefixlen' of the host IP, which the container shares. */
  address: string;
  gateway: string;
  /** The host's IPv6 addresses it shares ('address/prefixlen', --ipv6) and the IPv6 gateway, if any. */
  ipv6?: { addresses: string[]; gateway?: string };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Shape-check a prevResult (from the runtime's cache or the previous plugin); throws a description of what is wrong. */
export function checkResultShape(r: unknown): CniResult {
  if (!isObject(r)) throw new Error('prevResult must be an object');
  const arr = (k: string) => {
    const v = r[k];
    if (v !== undefined && !Array.isArray(v)) throw new Error(`prevResult.${k} must be an array`);
    return (v ?? []) as unknown[];
  };
  const ifaces = arr('interfaces');
  ifaces.forEach((i, n) => {
    if (!isObject(i) || typeof i.name !== 'string') throw new Error(`prevResult.interfaces[${n}] needs a string "name"`);
  });
  arr('ips').forEach((ip, n) => {
    if (!isObject(ip) || typeof ip.address !== 'string') throw new Error(`prevResult.ips[${n}] needs a string "address"`);
    if (ip.interface !== undefined && (!Number.isInteger(ip.interface) || (ip.interface as number) < 0 || (ip.interface as number) >= ifaces.length)) {
      throw new Error(`prevResult.ips[${n}].interface ${JSON.stringify(ip.interface)} is not an index into interfaces`);
    }
  });
  arr('routes').forEach((rt, n) => {
    if (!isObject(rt) || typeof rt.dst !== 'string') throw new Error(`prevResult.routes[${n}] needs a string "dst"`);
  });
  if (r.dns !== undefined && !isObject(r.dns)) throw new Error('prevResult.dns must be an object');
  return r as CniResult;
}

const ipVersion = (address: string) => (address.includes(':') ? '6' : '4');

/**
 * The result to print: prevResult's interfaces, ips, routes and dns kept as they are (they are
 * other plugins' objects), ours appended, in the output version's shape.
 */
export function mergeResult(cniVersion: CniVersion, prev: CniResult | undefined, a: Attachment, dns?: CniDns): CniResult {
  const interfaces: CniInterface[] = [...(prev?.interfaces ?? []).map((i) => ({ ...i }))];
  interfaces.push({ name: a.hostVeth.name, mac: a.hostVeth.mac });
  const sandboxIndex = interfaces.push({ name: a.sandbox.name, mac: a.sandbox.mac, sandbox: a.sandbox.path }) - 1;
  const ips: CniIp[] = [...(prev?.ips ?? []).map((i) => ({ ...i })), { address: a.address, gateway: a.gateway, interface: sandboxIndex }];
  const routes: CniRoute[] = [...(prev?.routes ?? []).map((r) => ({ ...r })), { dst: '0.0.0.0/0', gw: a.gateway }];
  const gw6 = a.ipv6?.gateway;
  for (const address of a.ipv6?.addresses ?? []) ips.push({ address, ...(gw6 ? { gateway: gw6 } : {}), interface: sandboxIndex });
  if (a.ipv6 && gw6) routes.push({ dst: '::/0', gw: gw6 });
  return convertResult(cniVersion, { ...(prev ?? {}), cniVersion, interfaces, ips, routes, dns: { ...(dns ?? {}), ...(prev?.dns ?? {}) } });
}

/**
 * A result in the shape of `cniVersion`: 0.4.0 ips carry `version`, 1.x ones do not. A version
 * that is not '4' or '6' (libcni hands loopback's 127.0.0.1/8 on with "") is taken from the address.
 */
export function convertResult(cniVersion: CniVersion, r: CniResult): CniResult {
  const ips = r.ips?.map((ip) => {
    const { version: _drop, ...rest } = ip;
    if (cniVersion !== '0.4.0') return rest;
    return { ...rest, version: ip.version === '4' || ip.version === '6' ? ip.version : ipVersion(ip.address) };
  });
  return { ...r, cniVersion, ...(ips ? { ips } : {}) };
}
