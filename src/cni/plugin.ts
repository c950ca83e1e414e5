/**
 * The CNI plugin (spec 1.1.0, also 1.0.0 and 0.4.0): ADD, DEL, CHECK, GC, STATUS and VERSION over
 * the isolator engine, in the same work_dir state as the CLI and the agent.
 *
 * - ADD isolates the runtime's namespace CNI_NETNS (never creates one): a veth whose container end
 *   is CNI_IFNAME, the host's IP/MAC, an ephemeral block, the container's non-ephemeral ports
 *   (portMappings with hostPort == containerPort, and/or CNI_ARGS PORTS=[…]). It prints
 *   prevResult with our host veth, sandbox interface, IP and default route appended.
 * - DEL destroys the container if it is there (idempotent; CNI_NETNS may be empty or gone).
 * - CHECK verifies the kernel objects against the record and prevResult.
 * - GC removes this network's attachments not in `cni.dev/valid-attachments` (gc.ts).
 * - STATUS answers whether ADD can work here (status.ts).
 * - Errors: `{cniVersion, code, msg, details}` on stdout, exit 1 (codes in errors.ts).
 *
 * The runtime runs plugins in its own network namespace: that namespace is "the host".
 */
import { Isolator } from '../isolator/engine.js';
import { containersInWorkDir, resolveHostConfig, writeHostConfig } from '../isolator/host-config.js';
import type { ContainerRecord } from '../isolator/state.js';
import { Netns } from '../netlink/index.js';
import { Rtnl } from '../rtnl/index.js';
import { checkKernel, checkPrevResult } from './check.js';
import { SandboxStore, restoreSandbox, snapshotSandbox } from './sandbox.js';
import { CNI_ERR, CniError, toCniError } from './errors.js';
import { detach, gc, isCniRecord, parseValidAttachments } from './gc.js';
import { helpText, wantsHelp } from './help.js';
import { status } from './status.js';
import type { AttachmentCommand, CniEnv, NetConf } from './netconf.js';
import { checkNetns, containerPorts, decodeStdin, errorVersion, parseCniArgs, parseCommand, parseEnv, parseNetConf } from './netconf.js';
import { SUPPORTED_VERSIONS, mergeResult } from './result.js';

export interface CniInvocation {
  env: NodeJS.ProcessEnv;
  stdin: string;
  /** Where warnings and notes go (stderr in the executable). */
  warn?: (message: string) => void;
}

export interface CniOutcome {
  /** What to print on stdout (JSON and a newline, or nothing). */
  stdout: string;
  exitCode: number;
}

const json = (v: unknown) => JSON.stringify(v) + '\n';

/** Run one plugin invocation; never throws. */
export async function runCni(inv: CniInvocation): Promise<CniOutcome> {
  const warn = inv.warn ?? (() => undefined);
  let raw: Record<string, unknown> | undefined;
  let decodeError: unknown;
  try {
    raw = decodeStdin(inv.stdin);
  } catch (e) {
    decodeError = e;
  }
  const version = errorVersion(raw);
  try {
    const command = parseCommand(inv.env);
    if (command === 'VERSION') return { stdout: json({ cniVersion: version, supportedVersions: [...SUPPORTED_VERSIONS] }), exitCode: 0 };
    if (decodeError) throw decodeError;
    const conf = parseNetConf(raw!);
    if (command === 'STATUS') await status(conf, warn);
    else if (command === 'GC') await collectGarbage(conf, raw!, warn);
    else return { stdout: await dispatch(command, conf, parseEnv(inv.env, command), warn), exitCode: 0 };
    return { stdout: '', exitCode: 0 };
  } catch (e) {
    const err = toCniError(e);
    if (err.code === CNI_ERR.INTERNAL && e instanceof Error && e.stack) warn(e.stack);
    return { stdout: json(err.toJSON(version)), exitCode: 1 };
  }
}

/** GC: needs only CNI_COMMAND and CNI_PATH besides the configuration; prints nothing. */
async function collectGarbage(conf: NetConf, raw: Record<string, unknown>, warn: (m: string) => void): Promise<void> {
  const valid = parseValidAttachments(raw);
  const iso = await Isolator.open({ workDir: conf.workDir, flags: conf.flags, onWarning: warn });
  try {
    await iso.store.withLock(() => gc(iso, conf.name, valid, warn), conf.lockTimeoutMs);
  } finally {
    await iso.close();
  }
}

async function dispatch(command: AttachmentCommand, conf: NetConf, env: CniEnv, warn: (m: string) => void): Promise<string> {
  // Argument errors come before any host work.
  const argPorts = command === 'ADD' ? parseCniArgs(env.args).ports : undefined;
  if (command === 'CHECK' && !conf.prevResult) {
    throw new CniError(
      CNI_ERR.INVALID_NETWORK_CONFIG,
      'invalid network configuration: CHECK needs prevResult',
      'the runtime must pass the result of the preceding ADD',
    );
  }
  // A configuration that differs from the one the work_dir's containers were built with is
  // refused (code 7 naming the flag), as the CLI refuses it; DEL, CHECK and GC still work. A
  // network configuration is complete: a flag it leaves out means that flag's default.
  const storeFlags = command === 'ADD' && (await resolveHostConfig(conf.workDir, conf.flags, () => workDirInUse(conf.workDir), { complete: true })).replaces;
  const iso = await Isolator.open({ workDir: conf.workDir, flags: conf.flags, onWarning: warn });
  try {
    const locked = <T>(fn: () => Promise<T>) => iso.store.withLock(fn, conf.lockTimeoutMs);
    switch (command) {
      case 'ADD':
        return json(await add(iso, conf, env, containerPorts(conf.portMappings, argPorts!), locked, warn, storeFlags));
      case 'DEL':
        await locked(() => del(iso, env, warn));
        return '';
      case 'CHECK': {
        const rec = await locked(() => iso.get(env.containerId));
        if (!rec || !isCniRecord(rec) || rec.ifname !== env.ifname) {
          throw new CniError(
            CNI_ERR.UNKNOWN_CONTAINER,
            `container ${env.containerId} with interface ${env.ifname} is not attached`,
            `no CNI record in ${conf.workDir}`,
          );
        }
        const problems = [...checkPrevResult(conf.prevResult!, rec, iso.host, env.netns), ...(await checkKernel(rec, iso.host, env.netns))];
        if (problems.length) {
          throw new CniError(
            CNI_ERR.CHECK_FAILED,
            `container ${env.containerId} is not isolated as ADD left it: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
            problems.join('; '),
          );
        }
        return '';
      }
    }
  } finally {
    await iso.close();
  }
}

async function add(
  iso: Isolator,
  conf: NetConf,
  env: CniEnv,
  ports: ReturnType<typeof containerPorts>,
  locked: <T>(fn: () => Promise<T>) => Promise<T>,
  warn: (m: string) => void,
  storeFlags: boolean,
) {
  const h = iso.host;
  checkMappings(iso, conf, ports);
  await checkIfnameFree(env);
  const sandboxes = new SandboxStore(conf.workDir);
  const rec = await locked(async () => {
    await dropStaleContainer(iso, conf, env, sandboxes);
    checkNetns(env.netns); // still there after the wait for the lock
    // A new configuration is stored before anything is built, as the CLI's create stores it:
    // whoever finds a container finds its flags; `list`, `stats`, `cleanup` need not repeat them.
    if (storeFlags) writeHostConfig(conf.workDir, conf.flags);
    await createContainer(iso, env, ports, sandboxes, warn, conf.name);
    return (await iso.get(env.containerId))!;
  });
  return mergeResult(
    conf.cniVersion,
    conf.prevResult,
    {
      hostVeth: { name: rec.veth, mac: h.eth0.address },
      sandbox: { name: rec.ifname, mac: h.eth0.address, path: env.netns },
      address: `${h.ip}/${h.prefixlen}`,
      gateway: h.gateway,
      ...(rec.ipv6 ? { ipv6: { addresses: rec.ipv6, ...(h.ipv6?.gateway ? { gateway: h.ipv6.gateway } : {}) } } : {}),
    },
    conf.dns,
  );
}

/** The port mappings and ports ADD is asked for are ones the network can give. */
function checkMappings(iso: Isolator, conf: NetConf, ports: ReturnType<typeof containerPorts>): void {
  const h = iso.host;
  for (const m of conf.portMappings) {
    if (m.hostIP && !['0.0.0.0', '::', h.ip].includes(m.hostIP)) {
      throw new CniError(
        CNI_ERR.INVALID_NETWORK_CONFIG,
        `port mapping ${m.hostIP}:${m.hostPort} is not possible: the host IP is ${h.ip}`,
        'containers share the host IP; leave hostIP empty',
      );
    }
  }
  if (!iso.config.ports.contains(ports)) {
    throw new CniError(
      CNI_ERR.INVALID_NETWORK_CONFIG,
      `ports ${ports.subtract(iso.config.ports).toString()} are not managed by network ${conf.name}`,
      `its resources give containers the ports ${iso.config.ports.toString()}`,
    );
  }
}

/** "If an interface of the requested name already exists in the container, the plugin MUST return an error." */
async function checkIfnameFree(env: CniEnv): Promise<void> {
  const ns = Netns.fromPath(env.netns);
  try {
    const r = Rtnl.open(ns);
    try {
      if (await r.links.find(env.ifname))
        throw new CniError(CNI_ERR.ALREADY_EXISTS, `interface ${env.ifname} already exists in ${env.netns}`, 'CNI_IFNAME must name a new interface');
    } finally {
      r.close();
    }
  } finally {
    ns.close();
  }
}

/** A container of the same id is an error, unless it is an ADD's whose namespace died without a DEL: that one goes. */
async function dropStaleContainer(iso: Isolator, conf: NetConf, env: CniEnv, sandboxes: SandboxStore): Promise<void> {
  const existing = await iso.get(env.containerId);
  if (!existing) return;
  if (isCniRecord(existing) && !(await vethExists(iso, existing))) {
    // Left by an ADD whose namespace died without a DEL: its kernel objects are gone with it.
    const stale = sandboxes.read(existing.id);
    if (stale) await restoreSandbox(stale).catch(() => undefined); // a no-op unless that very namespace is still there
    await iso.destroy(existing.id);
  } else {
    throw new CniError(
      CNI_ERR.ALREADY_EXISTS,
      `container ${env.containerId} already exists in ${conf.workDir}`,
      isCniRecord(existing) ? `attached in ${existing.netns} as ${existing.ifname}; DEL it first` : 'a container of that id was created by the CLI or agent',
    );
  }
}

/** Create the container, the sandbox's state saved first; a failed create leaves neither record nor sandbox changes. */
async function createContainer(
  iso: Isolator,
  env: CniEnv,
  ports: ReturnType<typeof containerPorts>,
  sandboxes: SandboxStore,
  warn: (m: string) => void,
  network: string,
): Promise<void> {
  const before = await snapshotSandbox(env.netns);
  sandboxes.write(env.containerId, { network, ...before });
  try {
    await iso.create({ id: env.containerId, ports, netnsPath: env.netns, ifname: env.ifname });
  } catch (e) {
    // The engine tears down what it built but keeps a 'creating' record: drop it, or its dead
    // veth would stay in the shared ARP/ICMP mirrors and fail every later create.
    const left = await iso.get(env.containerId).catch(() => undefined);
    if (left) await iso.destroy(env.containerId).catch((d: Error) => warn(`ADD ${env.containerId}: removing the failed container: ${d.message}`));
    const problems = await restoreSandbox(before).catch((r: Error) => [r.message]);
    if (problems.length) warn(`ADD ${env.containerId}: restoring ${env.netns}: ${problems.join('; ')}`);
    else sandboxes.delete(env.containerId);
    throw e;
  }
}

async function vethExists(iso: Isolator, r: ContainerRecord): Promise<boolean> {
  const rt = Rtnl.open(iso.host.netns);
  try {
    const l = await rt.links.find(r.vethIndex);
    return l !== undefined && l.name === r.veth;
  } finally {
    rt.close();
  }
}

function workDirInUse(workDir: string): boolean {
  const n = containersInWorkDir(workDir);
  return n.containers + n.spares > 0;
}

/**
 * DEL: put the runtime's namespace back (if it is still there), then destroy the container (if it
 * is still there). A container of that id made by the CLI or agent, or attached under another
 * interface name, is left alone. Failures are reported after everything else was done.
 */
async function del(iso: Isolator, env: CniEnv, warn: (m: string) => void): Promise<void> {
  const rec = await iso.get(env.containerId);
  if (rec && !isCniRecord(rec)) {
    warn(
      `DEL ${env.containerId}: a container of that id exists but was not created by CNI (it has ${rec.ownsNetns ? 'its own pinned namespace' : `pid ${rec.pid}`}); left alone`,
    );
    return;
  }
  if (rec && rec.ifname !== env.ifname) {
    warn(`DEL ${env.containerId}: its interface is ${rec.ifname}, not ${env.ifname}; left alone`);
    return;
  }
  const { problems, netns } = await detach(iso, env.containerId, rec !== undefined);
  if (problems.length)
    throw new CniError(
      CNI_ERR.INTERNAL,
      `container ${env.containerId} was removed, but its namespace ${netns} could not be fully restored`,
      problems.join('; '),
    );
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The executable: read stdin and the environment, print the outcome, exit. What the executable
 * (src/app/main.ts) runs when CNI_COMMAND is set.
 */
export async function cniMain(): Promise<never> {
  const warn = (m: string) => process.stderr.write(`portmap-isolator-cni: ${m}\n`);
  let out: CniOutcome;
  if (wantsHelp(process.argv.slice(2), process.env, process.stdin.isTTY === true)) out = { stdout: helpText(), exitCode: 0 };
  else
    try {
      out = await runCni({ env: process.env, stdin: await readStdin(), warn });
    } catch (e) {
      const err = new CniError(CNI_ERR.IO_FAILURE, 'cannot read the network configuration from stdin', (e as Error).message);
      out = { stdout: json(err.toJSON('1.0.0')), exitCode: 1 };
    }
  return new Promise<never>(() => {
    process.stdout.write(out.stdout, () => process.exit(out.exitCode));
  });
}
