/**
 * The HTTP agent (DESIGN.md §5): Mesos /monitor/statistics, container CRUD, Prometheus /metrics
 * and /health, on loopback by default. Bad requests get a 4xx with {"error": "…"}; nothing a
 * client sends can crash it.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Isolator } from './engine.js';
import { UnknownContainerError } from './engine.js';
import { ConfigError, IsolatorError } from './errors.js';
import type { Logger } from './log.js';
import { MetricsWriter, OperationMetrics } from './metrics.js';
import { LockTimeoutError } from './state.js';

const MAX_BODY_BYTES = 64 << 10;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let v: unknown;
      try {
        v = text.trim() ? JSON.parse(text) : {};
      } catch (e) {
        reject(new HttpError(400, `malformed JSON: ${(e as Error).message}`));
        return;
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) reject(new HttpError(400, 'the body must be a JSON object'));
      else resolve(v as Record<string, unknown>);
    });
  });
}

/** Map engine errors to HTTP statuses. */
function statusOf(e: unknown): number {
  if (e instanceof HttpError) return e.status;
  if (e instanceof UnknownContainerError) return 404;
  if (e instanceof LockTimeoutError) return 503;
  if (e instanceof ConfigError) return 400;
  if (e instanceof IsolatorError) {
    if (/already (exists|held)|Failed to allocate/.test(e.message)) return 409;
    if (/^invalid |not managed/.test(e.message)) return 400;
    return 500;
  }
  return 500;
}

export interface AgentOptions {
  host?: string;
  port?: number;
  log: Logger;
}

export class Agent {
  readonly metrics = new OperationMetrics();
  private server: Server | undefined;

  constructor(
    private readonly isolator: Isolator,
    private readonly opts: AgentOptions,
  ) {}

  /** Listen; resolves with the address actually bound (port 0 picks one). */
  async start(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 5051, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    return server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown, type = 'application/json') => {
      const text = type === 'application/json' ? (body === undefined ? '' : JSON.stringify(body)) : String(body);
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const url = new URL(req.url ?? '/', 'http://agent');
      const path = url.pathname.replace(/\/+$/, '') || '/';
      const method = req.method ?? 'GET';
      const m = /^\/containers\/([^/]+)$/.exec(path);
      if (path === '/health' && method === 'GET') return send(200, { status: 'ok' });
      if (path === '/monitor/statistics' && method === 'GET') return send(200, await this.metrics.time('stats', () => this.isolator.stats()));
      if (path === '/metrics' && method === 'GET') return send(200, await this.renderMetrics(), 'text/plain; version=0.0.4');
      if (path === '/containers' && method === 'GET') return send(200, await this.isolator.list());
      if (path === '/containers' && method === 'POST') {
        const body = await readJson(req);
        if (typeof body.id !== 'string') throw new HttpError(400, 'body.id must be a string');
        if (body.ports !== undefined && typeof body.ports !== 'string') throw new HttpError(400, 'body.ports must be a string like "[31000-31099]"');
        if (body.pid !== undefined && (!Number.isInteger(body.pid) || (body.pid as number) <= 0)) throw new HttpError(400, 'body.pid must be a positive integer');
        const spec = { id: body.id, ...(body.ports !== undefined ? { ports: body.ports as string } : {}), ...(body.pid !== undefined ? { pid: body.pid as number } : {}) };
        const info = await this.metrics.time('create', () => this.isolator.create(spec));
        this.opts.log.info('container created', { id: info.id, veth: info.veth });
        return send(201, info);
      }
      if (m) {
        const id = decodeURIComponent(m[1]!);
        if (method === 'GET') {
          const found = (await this.isolator.list()).find((c) => c.id === id);
          if (!found) throw new UnknownContainerError(id);
          return send(200, found);
        }
        if (method === 'PATCH') {
          const body = await readJson(req);
          if (typeof body.ports !== 'string') throw new HttpError(400, 'body.ports must be a string like "[31000-31099]"');
          return send(200, await this.metrics.time('update', () => this.isolator.update(id, body.ports as string)));
        }
        if (method === 'DELETE') {
          const removed = await this.metrics.time('destroy', () => this.isolator.destroy(id));
          if (!removed) throw new UnknownContainerError(id);
          this.opts.log.info('container destroyed', { id });
          return send(204, undefined);
        }
        throw new HttpError(405, `${method} is not allowed on ${path}`);
      }
      if (['/health', '/monitor/statistics', '/metrics', '/containers'].includes(path)) throw new HttpError(405, `${method} is not allowed on ${path}`);
      throw new HttpError(404, `no such endpoint: ${path}`);
    } catch (e) {
      const status = statusOf(e);
      if (status >= 500) this.opts.log.error('request failed', { url: req.url, error: (e as Error).message });
      if (!res.headersSent) send(status, { error: (e as Error).message ?? String(e) });
      else res.destroy();
    }
  }

  private async renderMetrics(): Promise<string> {
    const w = new MetricsWriter();
    const containers = await this.isolator.list();
    const cap = await this.isolator.capacity();
    w.help('portmap_isolator_containers', 'gauge', 'Containers managed by the isolator.');
    w.sample('portmap_isolator_containers', {}, containers.length);
    w.help('portmap_isolator_ports_in_use', 'gauge', 'Non-ephemeral ports held by containers.');
    w.sample('portmap_isolator_ports_in_use', {}, cap.portsInUse);
    w.help('portmap_isolator_ports_free', 'gauge', 'Managed non-ephemeral ports not held by any container.');
    w.sample('portmap_isolator_ports_free', {}, cap.portsFree);
    w.help('portmap_isolator_ephemeral_blocks_free', 'gauge', 'Ephemeral port blocks still available.');
    w.sample('portmap_isolator_ephemeral_blocks_free', {}, cap.ephemeralBlocksFree);
    const stats = await this.isolator.stats().catch(() => []);
    const counters: Array<[string, string]> = [
      ['net_rx_bytes', 'Bytes received by the container.'],
      ['net_rx_packets', 'Packets received by the container.'],
      ['net_rx_dropped', 'Received packets dropped.'],
      ['net_rx_errors', 'Receive errors.'],
      ['net_tx_bytes', 'Bytes sent by the container.'],
      ['net_tx_packets', 'Packets sent by the container.'],
      ['net_tx_dropped', 'Sent packets dropped.'],
      ['net_tx_errors', 'Send errors.'],
    ];
    for (const [field, help] of counters) {
      const name = `portmap_isolator_container_${field.slice(4)}_total`;
      w.help(name, 'counter', help);
      for (const s of stats) w.sample(name, { container: s.container_id }, Number(s.statistics[field] ?? 0));
    }
    w.help('portmap_isolator_tc_drops_total', 'counter', 'Packets dropped by a shaping qdisc.');
    w.help('portmap_isolator_tc_overlimits_total', 'counter', 'Overlimit events of a shaping qdisc.');
    for (const s of stats) {
      for (const t of (s.statistics.net_traffic_control_statistics as Array<{ id: string; drops: number; overlimits: number }> | undefined) ?? []) {
        w.sample('portmap_isolator_tc_drops_total', { container: s.container_id, id: t.id }, t.drops);
        w.sample('portmap_isolator_tc_overlimits_total', { container: s.container_id, id: t.id }, t.overlimits);
      }
    }
    this.metrics.render(w);
    return w.toString();
  }
}
