/**
 * The HTTP agent (DESIGN.md §5): Mesos /monitor/statistics, container CRUD, Prometheus /metrics
 * and /health. It serves on a Unix socket in the work_dir (mode 0600, or 0660 for
 * `socketGroup`), and on TCP only when asked, where state-changing requests (and, if asked, the
 * GETs) need HTTP basic auth against Mesos-style credentials; HTTPS with a certificate and key.
 * Every client mistake gets a 4xx with {"error": "…"}; nothing a client sends can crash it.
 */
import { chmodSync, chownSync, existsSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES, createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Isolator } from '../isolator/engine.js';
import { ConfigError, IsolatorError, UnknownContainerError } from '../isolator/errors.js';
import type { Logger } from './log.js';
import { MetricsWriter, OperationMetrics } from './metrics.js';
import { Authenticator } from './http-auth.js';
import type { HttpCredential } from './http-auth.js';
import type { Route, RouteRequest, Send } from './agent-routes.js';
import { routeOf } from './agent-routes.js';
import { HttpError, fieldOf, onlyFields, pidProblem, readJson, requestPath, shown, statusOf } from './http-request.js';

const REALM = 'portmap-isolator';
/** The agent's socket, in the work_dir. */
export const AGENT_SOCKET_NAME = 'agent.sock';
/** Longest Unix socket path (sun_path holds 108 bytes with the NUL). */
const MAX_SOCKET_PATH = 107;

export function agentSocketPath(workDir: string): string {
  return join(workDir, AGENT_SOCKET_NAME);
}

/** A listener with authentication wants credentials for everything but /health (the GETs only with readonly). */
function authenticate(listener: Listener, req: IncomingMessage, path: string, read: boolean): void {
  const auth = listener.auth;
  if (auth && path !== '/health' && (read ? auth.readonly : auth.readwrite)) {
    const header = req.headers.authorization;
    if (!auth.check.check(header)) {
      throw new HttpError(401, header === undefined ? 'authentication required' : 'invalid credentials', undefined, {
        'www-authenticate': `Basic realm="${REALM}"`,
      });
    }
  }
}

export interface AgentAuthOptions {
  /** POST/PATCH/DELETE need credentials. */
  readwrite: boolean;
  /** GET/HEAD (except /health) need credentials. */
  readonly: boolean;
  credentials: readonly HttpCredential[];
}

export interface AgentOptions {
  /** The Unix socket to serve on (see agentSocketPath); none if undefined. */
  socket?: string;
  /** The socket's group (gid): the socket is made 0660 and the directory searchable by it. */
  socketGroup?: number;
  /** A TCP listener as well (or instead), on host:port (port 0 picks one). */
  port?: number;
  host?: string;
  /** HTTPS on the TCP listener. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /**
   * Credentials checked on the TCP listener (the socket's access is its file mode). Default:
   * state-changing requests need them, so a TCP listener without credentials refuses to start.
   */
  auth?: AgentAuthOptions;
  log: Logger;
}

export interface AgentAddresses {
  socket?: string;
  tcp?: AddressInfo;
}

/** Whether something accepts connections on a Unix socket (a busy one counts). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'EAGAIN'));
  });
}

interface Listener {
  server: Server;
  /** Credentials this listener checks, if any. */
  auth?: { readwrite: boolean; readonly: boolean; check: Authenticator };
}

export class Agent {
  readonly metrics = new OperationMetrics();
  private listeners: Listener[] = [];
  /** The socket file we bound (device, inode), removed at stop if it is still ours. */
  private socketFile: { path: string; dev: number; ino: number } | undefined;
  private stopGatewayWatch: (() => void) | undefined;

  constructor(
    private readonly isolator: Isolator,
    private readonly opts: AgentOptions,
  ) {}

  /** Listen on the socket and/or TCP; resolves with what was bound (port 0 picks one). */
  async start(): Promise<AgentAddresses> {
    const out: AgentAddresses = {};
    try {
      if (this.opts.socket !== undefined) out.socket = await this.listenSocket(this.opts.socket);
      if (this.opts.port !== undefined || this.opts.host !== undefined) out.tcp = await this.listenTcp();
      if (!out.socket && !out.tcp) throw new IsolatorError('the agent has nothing to listen on: give a socket or a port');
      // Containers' permanent neighbour entry for the gateway follows the host's.
      this.stopGatewayWatch = this.isolator.watchGateway();
    } catch (e) {
      await this.stop();
      throw e;
    }
    return out;
  }

  async stop(): Promise<void> {
    this.stopGatewayWatch?.();
    this.stopGatewayWatch = undefined;
    const ls = this.listeners.splice(0);
    await Promise.all(
      ls.map(
        ({ server }) =>
          new Promise<void>((resolve) => {
            server.close(() => resolve());
            server.closeAllConnections();
          }),
      ),
    );
    const f = this.socketFile;
    this.socketFile = undefined;
    if (f) {
      try {
        const st = statSync(f.path);
        if (st.dev === f.dev && st.ino === f.ino) unlinkSync(f.path); // not a later agent's
      } catch {
        /* already gone */
      }
    }
  }

  private newServer(listener: () => Listener, tls?: AgentOptions['tls']): Server {
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res, listener()).catch((e: unknown) => {
        this.opts.log.error('request failed', { url: req.url, error: (e as Error)?.message ?? String(e) });
        res.destroy();
      });
    };
    // No Host header is needed (meaningless on a socket): Node's own 400 for it would not be JSON.
    const server: Server = tls
      ? (createHttpsServer({ cert: tls.cert, key: tls.key, requireHostHeader: false }, handler) as unknown as Server)
      : createServer({ requireHostHeader: false }, handler);
    // Requests the parser rejects (bad method, malformed header, oversize headers) get JSON too.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      const sent = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
      if (err.code === 'ECONNRESET' || !socket.writable || sent) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const body = JSON.stringify({ error: `malformed request (${err.code ?? err.message})` });
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    return server;
  }

  private async listenSocket(path: string): Promise<string> {
    if (Buffer.byteLength(path) > MAX_SOCKET_PATH)
      throw new ConfigError('work_dir', `the agent's socket ${path} is longer than ${MAX_SOCKET_PATH} bytes: use a shorter --work_dir`);
    const group = this.opts.socketGroup;
    for (let attempt = 0; attempt < 2; attempt++) {
      const listener: Listener = { server: this.newServer(() => listener) };
      try {
        await new Promise<void>((resolve, reject) => {
          listener.server.once('error', reject);
          // Bound with mode 0600 from the start: no moment when others may connect.
          const umask = process.umask(0o177);
          try {
            listener.server.listen(path, () => resolve());
          } finally {
            process.umask(umask);
          }
        });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code !== 'EADDRINUSE' || attempt > 0) throw new IsolatorError(`cannot listen on ${path}: ${err.message}`);
        let isSocket = false;
        try {
          isSocket = lstatSync(path).isSocket();
        } catch {
          /* gone meanwhile: try again */
        }
        if (!isSocket && existsSync(path)) throw new IsolatorError(`cannot listen on ${path}: it exists and is not a socket`);
        if (await socketAnswers(path)) throw new IsolatorError(`another agent is serving on ${path}`);
        try {
          unlinkSync(path); // a dead agent's
          this.opts.log.warn('replaced a stale agent socket', { socket: path });
        } catch {
          /* gone meanwhile */
        }
        continue;
      }
      this.listeners.push(listener);
      const st = statSync(path);
      this.socketFile = { path, dev: st.dev, ino: st.ino };
      if (group !== undefined) {
        chownSync(path, st.uid, group);
        chmodSync(path, 0o660);
        // The group must be able to reach the socket: its directory becomes searchable (not
        // readable) by the group. Everything else in the work_dir stays in 0700 directories.
        const dir = dirname(path);
        const d = statSync(dir);
        if (!(d.mode & 0o001) && !(d.gid === group && d.mode & 0o010)) {
          chownSync(dir, d.uid, group);
          chmodSync(dir, (d.mode & 0o7777) | 0o010);
          this.opts.log.info('work_dir made searchable by the socket group', { dir, gid: group });
        }
      } else {
        chmodSync(path, 0o600);
      }
      return path;
    }
    throw new IsolatorError(`cannot listen on ${path}`);
  }

  private async listenTcp(): Promise<AddressInfo> {
    const a = this.opts.auth ?? { readwrite: true, readonly: false, credentials: [] };
    if ((a.readwrite || a.readonly) && a.credentials.length === 0) {
      throw new ConfigError(
        a.readwrite ? 'authenticate_http_readwrite' : 'authenticate_http_readonly',
        'is on for the TCP listener: give --http_credentials=FILE',
      );
    }
    const listener: Listener = {
      server: this.newServer(() => listener, this.opts.tls),
      auth: { readwrite: a.readwrite, readonly: a.readonly, check: new Authenticator(a.credentials) },
    };
    await new Promise<void>((resolve, reject) => {
      listener.server.once('error', reject);
      listener.server.listen(this.opts.port ?? 5051, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    this.listeners.push(listener);
    return listener.server.address() as AddressInfo;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, listener: Listener): Promise<void> {
    req.on('error', () => undefined); // a client gone mid-body: readJson sees it
    res.on('error', () => undefined);
    const send: Send = (status, body, type = 'application/json', headers = {}) => {
      const text = type === 'application/json' ? (body === undefined ? '' : JSON.stringify(body)) : String(body);
      res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    try {
      const method = req.method ?? 'GET';
      const path = requestPath(req.url);
      const read = method === 'GET' || method === 'HEAD';
      authenticate(listener, req, path, read);
      const route = routeOf(path);
      if (!route) throw new HttpError(404, `no such endpoint: ${shown(path)}`);
      if (!route.allow.includes(method))
        throw new HttpError(405, `${shown(method)} is not allowed on ${route.id === undefined ? path : '/containers/ID'}`, undefined, {
          allow: route.allow.join(', '),
        });
      return await this.routes[route.name]({ req, method, read, id: route.id, send });
    } catch (e) {
      const status = statusOf(e);
      if (status >= 500) this.opts.log.error('request failed', { url: req.url, error: (e as Error)?.message ?? String(e) });
      const field = fieldOf(e);
      const headers = e instanceof HttpError ? e.headers : {};
      if (!res.headersSent) send(status, { error: (e as Error)?.message ?? String(e), ...(field !== undefined ? { field } : {}) }, 'application/json', headers);
      else res.destroy();
    }
  }

  /** One handler per route (see routeOf), given a request its route allows. */
  private readonly routes: Record<Route['name'], (r: RouteRequest) => Promise<void>> = {
    health: async ({ send }) => send(200, { status: 'ok' }),
    statistics: async ({ send }) => send(200, await this.metrics.time('stats', () => this.isolator.stats())),
    metrics: async ({ send }) => send(200, await this.renderMetrics(), 'text/plain; version=0.0.4'),
    containers: (r) => (r.read ? this.listContainers(r) : this.createContainer(r)),
    container: (r) => (r.read ? this.showContainer(r) : r.method === 'PATCH' ? this.updateContainer(r) : this.destroyContainer(r)),
  };

  private async listContainers({ send }: RouteRequest): Promise<void> {
    send(200, await this.isolator.list());
  }

  private async createContainer({ req, send }: RouteRequest): Promise<void> {
    const body = await readJson(req);
    onlyFields(body, ['id', 'ports', 'pid', 'cpus']);
    if (typeof body.id !== 'string') throw new HttpError(400, 'body.id must be a string', 'id');
    if (body.ports !== undefined && typeof body.ports !== 'string') throw new HttpError(400, 'body.ports must be a string like "[31000-31099]"', 'ports');
    if (body.pid !== undefined) {
      const problem = pidProblem(body.pid);
      if (problem) throw new HttpError(400, `body.pid ${problem}`, 'pid');
    }
    if (body.cpus !== undefined && !(typeof body.cpus === 'number' && Number.isFinite(body.cpus) && body.cpus >= 0))
      throw new HttpError(400, `body.cpus must be a number ≥ 0, got ${shown(body.cpus)}`, 'cpus');
    const spec = {
      id: body.id,
      ...(body.ports !== undefined ? { ports: body.ports as string } : {}),
      ...(body.pid !== undefined ? { pid: body.pid as number } : {}),
      ...(body.cpus !== undefined ? { cpus: body.cpus as number } : {}),
    };
    const info = await this.metrics.time('create', () => this.isolator.create(spec));
    this.opts.log.info('container created', { id: info.id, veth: info.veth });
    send(201, info);
  }

  private async showContainer({ id, send }: RouteRequest): Promise<void> {
    const found = (await this.isolator.list()).find((c) => c.id === id!);
    if (!found) throw new UnknownContainerError(id!);
    send(200, found);
  }

  private async updateContainer({ req, id, send }: RouteRequest): Promise<void> {
    const body = await readJson(req);
    onlyFields(body, ['ports']);
    if (typeof body.ports !== 'string') throw new HttpError(400, 'body.ports must be a string like "[31000-31099]"', 'ports');
    send(200, await this.metrics.time('update', () => this.isolator.update(id!, body.ports as string)));
  }

  private async destroyContainer({ id, send }: RouteRequest): Promise<void> {
    const removed = await this.metrics.time('destroy', () => this.isolator.destroy(id!));
    if (!removed) throw new UnknownContainerError(id!);
    this.opts.log.info('container destroyed', { id: id! });
    send(204, undefined);
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
      [
        'net_tx_denied_packets',
        "Packets the container sent that the isolator dropped: a source port it does not own, a source address not the host's, neither IPv4 nor ARP.",
      ],
    ];
    for (const [field, help] of counters) {
      const name = `portmap_isolator_container_${field.slice(4).replace(/_packets$/, '')}_total`;
      w.help(name, 'counter', help);
      for (const s of stats) w.sample(name, { container: s.container_id }, Number(s.statistics[field] ?? 0));
    }
    const host = await this.isolator.hostCounters().catch(() => undefined);
    if (host) {
      w.help('portmap_isolator_unheld_port_dropped_total', 'counter', "Packets to the host's address on a managed port no container holds, dropped on eth0.");
      w.sample('portmap_isolator_unheld_port_dropped_total', {}, host.unheldPortDroppedPackets);
      w.help(
        'portmap_isolator_echo_reply_fanout_dropped_total',
        'counter',
        'Echo replies to the host not copied to the containers: above the fan-out rate limit.',
      );
      w.sample('portmap_isolator_echo_reply_fanout_dropped_total', {}, host.echoReplyFanoutDroppedPackets);
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
