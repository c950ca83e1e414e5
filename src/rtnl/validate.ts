import { isIP } from 'node:net';

/** Thrown for bad input before anything is sent to the kernel. */
export class InvalidArgumentError extends TypeError {
  override readonly name = 'InvalidArgumentError';
  readonly code = 'EINVAL';
}

const IFNAMSIZ = 16;

/** Interface names: 1–15 bytes, no '/', ':' or whitespace, not '.' or '..' (dev_valid_name). */
export function checkIfName(name: unknown, what = 'interface name'): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  if (Buffer.byteLength(name) >= IFNAMSIZ) throw new InvalidArgumentError(`${what} ${JSON.stringify(name)} is longer than ${IFNAMSIZ - 1} bytes`);
  if (name === '.' || name === '..' || /[/:\s\0]/.test(name)) throw new InvalidArgumentError(`${what} ${JSON.stringify(name)} is not a valid interface name`);
  return name;
}

/** Address labels (IFA_LABEL): like interface names but may hold ':' (eth0:1). */
export function checkLabel(label: unknown): string {
  if (typeof label !== 'string' || label.length === 0 || Buffer.byteLength(label) >= IFNAMSIZ || /[/\s\0]/.test(label)) {
    throw new InvalidArgumentError(`address label ${JSON.stringify(label)} must be 1–15 bytes without '/' or spaces`);
  }
  return label;
}

/** An Ethernet MAC: six colon-separated hex octets. */
export function checkMac(mac: unknown, what = 'MAC address'): string {
  if (typeof mac !== 'string' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac))
    throw new InvalidArgumentError(`${what} ${JSON.stringify(mac)} is not six hex octets like 02:00:00:00:00:01`);
  return mac.toLowerCase();
}

/** An MTU: an integer from 68 (IPv4's minimum) up. Returns it; throws InvalidArgumentError. */
export function checkMtu(mtu: unknown): number {
  if (!Number.isInteger(mtu) || (mtu as number) < 68 || (mtu as number) > 0x7fffffff)
    throw new InvalidArgumentError(`MTU must be an integer of at least 68, got ${String(mtu)}`);
  return mtu as number;
}

/** An interface index: a positive 31-bit integer. Returns it; throws InvalidArgumentError. */
export function checkIfIndex(index: unknown): number {
  if (!Number.isInteger(index) || (index as number) <= 0 || (index as number) > 0x7fffffff)
    throw new InvalidArgumentError(`interface index must be a positive integer, got ${String(index)}`);
  return index as number;
}

/** An address with its prefix length, as parsePrefix returns it. */
export interface Prefix {
  /** 4 or 6. */
  family: 4 | 6;
  /** The address as given, without the prefix length. */
  address: string;
  /** In bits: 0..32 or 0..128. */
  prefixlen: number;
}

/** Parse '198.18.0.2/24', '198.18.0.2' (a host prefix), '2001:db8::1/64'. Throws InvalidArgumentError; `what` names the value in the message. */
export function parsePrefix(text: unknown, what = 'address'): Prefix {
  if (typeof text !== 'string') throw new InvalidArgumentError(`${what} must be a string like 198.18.0.2/24`);
  const [address, len, ...rest] = text.split('/');
  const family = isIP(address ?? '');
  if ((family !== 4 && family !== 6) || rest.length) throw new InvalidArgumentError(`${what} ${JSON.stringify(text)} is not an IP address or prefix`);
  const max = family === 4 ? 32 : 128;
  const prefixlen = len === undefined ? max : Number(len);
  if (len !== undefined && !/^\d+$/.test(len)) throw new InvalidArgumentError(`${what} ${JSON.stringify(text)} has an invalid prefix length`);
  if (!Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > max)
    throw new InvalidArgumentError(`${what} ${JSON.stringify(text)}: prefix length must be 0..${max}`);
  return { family: family as 4 | 6, address: address!, prefixlen };
}

/** An IPv4 or IPv6 address, with its family. Throws InvalidArgumentError; `what` names the value in the message. */
export function checkIp(text: unknown, what = 'IP address'): { family: 4 | 6; address: string } {
  const family = typeof text === 'string' ? isIP(text) : 0;
  if (family !== 4 && family !== 6) throw new InvalidArgumentError(`${what} ${JSON.stringify(text)} is not an IP address`);
  return { family: family as 4 | 6, address: text as string };
}
