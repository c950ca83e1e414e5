/** A small HTTP(S) client for the agent's tests: over its Unix socket or TCP, keep-alive if asked. */
import { type Agent as HttpAgent, type IncomingHttpHeaders, type OutgoingHttpHeaders, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Target {
  /** The agent's Unix socket… */
  socketPath?: string;
  /** …or http(s)://host:port. */
  base?: string;
  /** CA (the self-signed certificate) for https. */
  ca?: Buffer;
  /** A keep-alive agent to reuse connections. */
  agent?: HttpAgent;
}

export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The JSON body when the answer is JSON, else the text. */
  body: any;
}

export interface RequestOptions {
  body?: string | Buffer;
  headers?: OutgoingHttpHeaders;
  /** Send the body in chunks without a content-length. */
  chunked?: boolean;
}

export function request(t: Target, method: string, path: string, opts: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = t.base ? new URL(t.base) : undefined;
    const tls = url?.protocol === 'https:';
    const headers: OutgoingHttpHeaders = { ...(opts.headers ?? {}) };
    if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body);
    // Node frames a body without a length in chunks only for some methods: ask for it always.
    if (opts.body !== undefined && opts.chunked) headers['transfer-encoding'] = 'chunked';
    if (opts.body !== undefined && headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    const options = {
      method,
      path,
      headers,
      ...(t.socketPath ? { socketPath: t.socketPath } : { host: url!.hostname.replace(/^\[|\]$/g, ''), port: Number(url!.port) }),
      ...(t.agent ? { agent: t.agent } : { agent: false as const }),
      ...(tls && t.ca ? { ca: t.ca } : {}),
    };
    const req = tls ? httpsRequest(options) : httpRequest(options);
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = text;
        if (text && String(res.headers['content-type'] ?? '').startsWith('application/json')) body = JSON.parse(text);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
      });
    });
    if (opts.body !== undefined && opts.chunked) {
      const b = Buffer.from(opts.body);
      for (let i = 0; i < b.length; i += 16384) req.write(b.subarray(i, i + 16384));
      req.end();
    } else req.end(opts.body);
  });
}
