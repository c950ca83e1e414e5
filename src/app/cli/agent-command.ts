/** `portmap-isolator agent`: its listeners from its flags, then recover and serve until SIGTERM. */
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { IsolatorError, ConfigError, PortmapError } from '../../isolator/errors.js';
import type { Isolator } from '../../isolator/engine.js';
import type { AgentAuthOptions } from '../agent.js';
import { Agent, agentSocketPath, socketAnswers } from '../agent.js';
import type { HttpCredential } from '../http-auth.js';
import { loadCredentials } from '../http-auth.js';
import type { Logger } from '../log.js';
import type { ParsedArgs } from './args.js';
import { stringFlag } from './args.js';
import type { CommandContext } from './context.js';
import { keepYoungGenerationSmall } from '../young-generation.js';

/** A group name or gid, from /etc/group. */
function groupId(name: string): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try {
    text = readFileSync('/etc/group', 'utf8');
  } catch {
    /* no group database: only gids work */
  }
  for (const line of text.split('\n')) {
    const [n, , gid] = line.split(':');
    if (n === name && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new ConfigError('socket_group', `no such group '${name}'`);
}

interface AgentListeners {
  socketGroup: number | undefined;
  tcp?: { host: string; port: number; listen: string };
  auth?: AgentAuthOptions;
  tls?: { cert: Buffer; key: Buffer };
}

/** The agent's listeners from its flags; every mistake is a ConfigError, found before anything starts. */
function agentListeners(args: ParsedArgs, log: Logger): AgentListeners {
  const listen = stringFlag(args.flags, 'listen');
  const group = stringFlag(args.flags, 'socket_group');
  const socketGroup = group !== undefined ? groupId(group) : undefined;
  if (listen === undefined) {
    for (const f of ['http_credentials', 'authenticate_http_readwrite', 'authenticate_http_readonly', 'tls_cert', 'tls_key']) {
      if (args.flags.has(f))
        throw new ConfigError(f, 'applies to the TCP listener only: give --listen=ADDR:PORT too (the socket is guarded by its file mode and --socket_group)');
    }
    return { socketGroup };
  }
  const m = /^(.*):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new ConfigError('listen', `expected HOST:PORT, got '${listen}'`);
  const readwrite = args.flags.get('authenticate_http_readwrite') !== false;
  const readonly = args.flags.get('authenticate_http_readonly') === true;
  const file = stringFlag(args.flags, 'http_credentials');
  if (file === undefined && readwrite) {
    throw new ConfigError(
      'authenticate_http_readwrite',
      `is on for --listen=${listen}: give --http_credentials=FILE ({"credentials":[{"principal":"…","secret":"…"}]}), or --no-authenticate_http_readwrite to let anyone who reaches it change containers`,
    );
  }
  if (file === undefined && readonly) throw new ConfigError('authenticate_http_readonly', 'needs --http_credentials=FILE');
  let credentials: HttpCredential[] = [];
  if (file !== undefined) {
    credentials = loadCredentials(file);
    if (statSync(file).mode & 0o004) log.warn(`--http_credentials: ${file} is readable by every user`);
  }
  if (!readwrite) log.warn(`--no-authenticate_http_readwrite: anyone who can reach ${listen} can create, change and destroy containers`);
  const certFile = stringFlag(args.flags, 'tls_cert');
  const keyFile = stringFlag(args.flags, 'tls_key');
  if ((certFile === undefined) !== (keyFile === undefined))
    throw new ConfigError(certFile === undefined ? 'tls_cert' : 'tls_key', 'needs --tls_cert and --tls_key together');
  let tls: { cert: Buffer; key: Buffer } | undefined;
  if (certFile !== undefined && keyFile !== undefined) {
    const read = (flag: string, f: string) => {
      try {
        return readFileSync(f);
      } catch (e) {
        throw new ConfigError(flag, `cannot read ${f}: ${(e as Error).message}`);
      }
    };
    tls = { cert: read('tls_cert', certFile), key: read('tls_key', keyFile) };
    try {
      createSecureContext(tls);
    } catch (e) {
      throw new ConfigError('tls_cert', `cannot use ${certFile} with ${keyFile}: ${(e as Error).message}`);
    }
  }
  const auth: AgentAuthOptions = { readwrite, readonly, credentials };
  return { socketGroup, tcp: { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), listen }, auth, ...(tls ? { tls } : {}) };
}

export async function runAgent({ args, open, log, workDir }: CommandContext): Promise<number> {
  const l = agentListeners(args, log);
  keepYoungGenerationSmall();
  // A signal during recover (or the first spares) stops the agent as cleanly as a later one.
  const stopSignal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const socket = agentSocketPath(workDir);
  // Before recovering anything: one agent per work_dir.
  if (await socketAnswers(socket)) throw new IsolatorError(`another agent is serving on ${socket}`);
  const iso = await open();
  const report = await iso.recover();
  log.info('recovered', { containers: report.recovered.length, cleaned: report.cleaned.length, orphans: report.orphans, errors: report.errors.length });
  for (const e of report.errors) log.warn(`recovery: ${e}`);
  const agent = new Agent(iso, {
    socket,
    ...(l.socketGroup !== undefined ? { socketGroup: l.socketGroup } : {}),
    ...(l.tcp ? { host: l.tcp.host, port: l.tcp.port, ...(l.auth ? { auth: l.auth } : {}), ...(l.tls ? { tls: l.tls } : {}) } : {}),
    log,
  });
  let addr;
  try {
    addr = await agent.start();
  } catch (e) {
    if (e instanceof PortmapError) throw e;
    throw new IsolatorError(`cannot listen on ${l.tcp?.listen ?? socket}: ${(e as Error).message}`);
  }
  const tcp = addr.tcp ? `${addr.tcp.family === 'IPv6' ? `[${addr.tcp.address}]` : addr.tcp.address}:${addr.tcp.port}` : undefined;
  log.info('agent listening', { socket, ...(tcp ? { address: tcp, tls: l.tls !== undefined } : {}) });
  log.info('stopping', { signal: await stopSignal });
  await agent.stop();
  await drainSpares(iso, log);
  return 0;
}

/** How long a stopping agent spends removing its warm-pool spares before it exits anyway. */
const DRAIN_TIMEOUT_MS = 5000;
/** And how long closing may take after that (background work, sockets) before the process exits regardless. */
const CLOSE_GRACE_MS = 3000;

/**
 * A stopping agent removes its spares (nobody would take them: one-shot commands keep none) and
 * leaves its containers as they are; bounded, so a stuck kernel or lock never keeps it alive.
 */
async function drainSpares(iso: Isolator, log: Logger): Promise<void> {
  const r = await iso.drainPool(DRAIN_TIMEOUT_MS);
  if (r.removed.length) log.info('warm pool removed', { spares: r.removed.length });
  if (r.left.length || r.errors.length) log.warn('warm pool spares left (recover or cleanup removes them)', { left: r.left, errors: r.errors });
  const hard = setTimeout(() => {
    log.warn('closing took too long: exiting with background work unfinished');
    process.exit(0);
  }, CLOSE_GRACE_MS);
  hard.unref(); // only if closing hangs
}
