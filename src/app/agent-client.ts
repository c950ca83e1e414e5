/**
 * The CLI's side of the agent's Unix socket: one JSON request, answered by a running agent, or
 * `undefined` when none answers there (no socket, a dead agent's, or not ours to open).
 */
import { request } from 'node:http';
import { IsolatorError } from '../isolator/errors.js';

export interface AgentReply {
  status: number;
  /** The parsed JSON body (undefined when empty), or the text of a non-JSON one. */
  body: unknown;
}

/** Errors of a connect that never reached an agent: the caller acts without one. */
const NO_AGENT = new Set(['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM', 'ENOTSOCK', 'ENOTDIR']);

export function callAgent(socketPath: string, method: string, path: string, body?: unknown): Promise<AgentReply | undefined> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let connected = false;
    const req = request({
      socketPath,
      method,
      path,
      agent: false,
      headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    });
    req.on('socket', (s) => s.once('connect', () => (connected = true)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      // Once connected, the request may have been carried out: never fall back then.
      if (!connected && NO_AGENT.has(e.code ?? '')) resolve(undefined);
      else reject(new IsolatorError(`the agent at ${socketPath} did not answer: ${e.message}`));
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => reject(new IsolatorError(`the agent at ${socketPath} did not answer: ${e.message}`)));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown = text;
        if (text === '') parsed = undefined;
        else if (String(res.headers['content-type'] ?? '').startsWith('application/json')) {
          try {
            parsed = JSON.parse(text);
          } catch {
            /* keep the text */
          }
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.end(payload);
  });
}
