/**
 * `portmap-isolator-cni --help`: what a person gets who runs the plugin by hand (a runtime never
 * passes arguments and always sets CNI_COMMAND).
 */
import { ISOLATOR_FLAG_NAMES } from '../isolator/config.js';
import { DEFAULT_WORK_DIR } from '../isolator/state.js';
import { SUPPORTED_VERSIONS } from './result.js';

/** Help when asked for (-h, --help), or when a person runs it from a terminal without CNI_COMMAND. */
export function wantsHelp(args: readonly string[], env: NodeJS.ProcessEnv, stdinIsTty: boolean): boolean {
  return args.includes('--help') || args.includes('-h') || (!env.CNI_COMMAND && stdinIsTty);
}

export function helpText(): string {
  const flags = ISOLATOR_FLAG_NAMES.map((f) => `    ${f}`).join('\n');
  return `portmap-isolator-cni: a CNI plugin (spec ${SUPPORTED_VERSIONS.join(', ')}) that puts a container's
network namespace into the portmap-isolator: the container shares the host's IP address and MAC,
receives only the ports it was given (plus an ephemeral block of its own), and is rate-limited as
the flags say. A container runtime runs it with CNI_COMMAND=ADD|DEL|CHECK|GC|STATUS|VERSION, the
CNI_* variables and the network configuration on stdin; it prints the CNI result or error on stdout.

Network configuration (one plugin object of a .conflist):
  type                 the plugin's file name in the runtime's CNI bin dir, e.g. "portmap-isolator"
  work_dir             absolute path of the isolator's state (default ${DEFAULT_WORK_DIR}),
                       shared with the portmap-isolator CLI and agent
  lock_timeout_ms      how long to wait for the work_dir lock before error 11 (default 30000)
  capabilities         {"portMappings": true}: the runtime's port mappings (hostPort == containerPort)
  the isolator flags, under their CLI names (byte sizes as "10MB" or numbers of bytes):
${flags}
  CNI_ARGS PORTS=[31000-31009,...] adds ports; other CNI_ARGS keys need IgnoreUnknown=1.
  Refused: unknown fields, ipam, ipMasq (containers share the host's IP).

Install:
  1. Put the executable in the runtime's CNI bin dir under the configuration's type, e.g.
       ln -s "$(npm root -g)/portmap-isolator/dist/app/main.js" /opt/cni/bin/portmap-isolator
     (it must be executable: chmod +x the target if the link does not run).
  2. Write a network configuration, e.g. /etc/cni/net.d/50-pmi.conflist:
       {"cniVersion": "1.0.0", "name": "pmi", "plugins": [
         {"type": "loopback"},
         {"type": "portmap-isolator",
          "resources": "ports:[31000-32000];ephemeral_ports:[32768-57343]",
          "ephemeral_ports_per_container": 1024,
          "work_dir": "${DEFAULT_WORK_DIR}",
          "capabilities": {"portMappings": true}}]}
  3. Check it: CNI_COMMAND=STATUS CNI_PATH=/opt/cni/bin /opt/cni/bin/portmap-isolator < config.json
     (one plugin object with cniVersion and name) exits 0 when ADD can work.

It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN), acts on the network namespace it is run in (the
runtime's: "the host", whose eth0 and lo get the port filters) and on CNI_NETNS, and keeps its state
in work_dir. DEL of the last container leaves the host's ingress qdiscs and port tables on eth0/lo
and <work_dir>/host.json; \`portmap-isolator cleanup --work_dir=...\` removes them.
See also: portmap-isolator --help (the CLI).
`;
}
