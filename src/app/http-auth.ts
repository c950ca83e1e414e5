/**
 * HTTP basic auth for the agent's TCP listener: Mesos' credentials file
 * (`--http_credentials`), checked in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../isolator/errors.js';

export interface HttpCredential {
  principal: string;
  secret: string;
}

/** Mesos' credentials file: {"credentials":[{"principal":"…","secret":"…"}, …]}. */
export function loadCredentials(file: string): HttpCredential[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('http_credentials', `cannot read ${file}: ${(e as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('http_credentials', `${file} is not JSON: ${(e as Error).message}`);
  }
  const list = (v as { credentials?: unknown } | null)?.credentials;
  if (!Array.isArray(list) || list.length === 0)
    throw new ConfigError('http_credentials', `${file} must hold {"credentials":[{"principal":"…","secret":"…"}, …]} with at least one credential`);
  return list.map((c, i) => {
    const { principal, secret } = (c ?? {}) as Record<string, unknown>;
    if (typeof principal !== 'string' || principal === '' || principal.includes(':') || typeof secret !== 'string' || secret === '') {
      throw new ConfigError('http_credentials', `${file}: credentials[${i}] needs a non-empty "principal" (without ':') and a non-empty "secret"`);
    }
    return { principal, secret };
  });
}

const digest = (s: string | Buffer) => createHash('sha256').update(s).digest();

/** HTTP basic auth against a fixed set of credentials, compared in constant time. */
export class Authenticator {
  private readonly creds: Array<{ principal: Buffer; secret: Buffer }>;

  constructor(credentials: readonly HttpCredential[]) {
    this.creds = credentials.map((c) => ({ principal: digest(c.principal), secret: digest(c.secret) }));
  }

  /** Whether the Authorization header holds one of the credentials. */
  check(header: string | undefined): boolean {
    if (header === undefined || header.length > 4096) return false;
    const m = /^Basic +([A-Za-z0-9+/]+={0,2}) *$/i.exec(header);
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64');
    const colon = decoded.indexOf(0x3a);
    if (colon < 0) return false;
    const principal = digest(decoded.subarray(0, colon));
    const secret = digest(decoded.subarray(colon + 1));
    let ok = false;
    // Every credential is compared, each in full: the time taken says nothing about which one matched.
    for (const c of this.creds) {
      const p = timingSafeEqual(principal, c.principal);
      const s = timingSafeEqual(secret, c.secret);
      ok = (p && s) || ok;
    }
    return ok;
  }
}
