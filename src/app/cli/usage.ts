/** The CLI's commands, their flags and its help text (DESIGN.md §4). */
import { ISOLATOR_FLAG_NAMES } from '../../isolator/config.js';
import { DEFAULT_WORK_DIR } from '../../isolator/state.js';
import { COMMON_FLAGS } from './args.js';

/** Spares the agent keeps ready unless --warm_pool says otherwise (see IsolatorOptions.warmPool). */
export const AGENT_WARM_POOL = 4;

export const COMMANDS: Record<string, { flags: string[]; usage: string; help: string }> = {
  doctor: { flags: [], usage: 'doctor', help: 'check root, namespaces, kernel features (u32, mirred, htb, ingress, fq_codel) and the host configuration' },
  create: {
    flags: ['ports', 'pid', 'cpus'],
    usage: 'create ID [--ports=RANGES] [--pid=PID]',
    help: 'isolate a container (creating and pinning its namespace unless --pid is given); prints JSON',
  },
  update: { flags: ['ports'], usage: 'update ID --ports=RANGES', help: "change a running container's non-ephemeral ports (adds before it removes)" },
  destroy: { flags: [], usage: 'destroy ID', help: 'remove everything of a container (no-op for an unknown ID)' },
  list: { flags: ['json'], usage: 'list [--json]', help: 'the containers and their ports' },
  stats: { flags: [], usage: 'stats [ID]', help: 'Mesos /monitor/statistics JSON' },
  run: {
    flags: ['id', 'ports', 'cpus'],
    usage: 'run [--id=ID] [--ports=RANGES] -- CMD [ARGS…]',
    help: 'create, run CMD inside with stdio inherited, destroy afterwards; exits with CMD’s status',
  },
  agent: {
    flags: ['listen', 'warm_pool', 'socket_group', 'http_credentials', 'authenticate_http_readwrite', 'authenticate_http_readonly', 'tls_cert', 'tls_key'],
    usage: 'agent [--listen=ADDR:PORT] [agent flags]',
    help: `recover, then serve HTTP (statistics, containers, metrics) on <work_dir>/agent.sock (and TCP with --listen) until SIGTERM; --warm_pool keeps N spares ready (0–64, default ${AGENT_WARM_POOL}): a create takes one and only adds its ports' filters`,
  },
  recover: { flags: [], usage: 'recover', help: 'rebuild state from the work_dir and the kernel, clean up orphans, report' },
  cleanup: { flags: [], usage: 'cleanup', help: 'destroy every container and undo every host-side change' },
  demo: { flags: [], usage: 'demo', help: 'a self-contained lab showing isolation, rate limiting and statistics; exits 0 only if every check passed' },
};

const AGENT_FLAGS_HELP = [
  'Agent flags (DESIGN.md §5):',
  '  --listen=ADDR:PORT     also serve HTTP on TCP (default: only the Unix socket <work_dir>/agent.sock,',
  '                         mode 0600, root only); IPv6 as [::1]:5051; port 0 picks one',
  '  --socket_group=GROUP   make the socket 0660 owned by GROUP (name or gid), and the work_dir',
  '                         searchable by it (default: none, 0600)',
  '  --http_credentials=FILE  Mesos\' {"credentials":[{"principal":"…","secret":"…"}]}: HTTP basic',
  '                         auth on the TCP listener (default: none)',
  '  --[no-]authenticate_http_readwrite  POST/PATCH/DELETE on TCP need credentials (default: on with',
  '                         --listen, which then needs --http_credentials; --no-… allows anyone, with a warning)',
  '  --[no-]authenticate_http_readonly   the GETs on TCP need credentials too (default: off); /health never',
  '  --tls_cert=FILE --tls_key=FILE  serve HTTPS on the TCP listener (PEM; default: plain HTTP)',
  `  --warm_pool=N          spares kept ready (0–64, default ${AGENT_WARM_POOL})`,
  'The socket needs no credentials: its mode is its access control. While an agent answers on',
  'the socket, create, update, destroy, list and stats go through it (same output and exit status),',
  'unless they give isolator flags: those act directly.',
];

export function usage(command?: string): string {
  if (command && COMMANDS[command]) {
    const c = COMMANDS[command]!;
    return `usage: portmap-isolator ${c.usage} [--netns=NAME|PATH] [--work_dir=DIR] [isolator flags]\n\n${c.help}\n${command === 'agent' ? `\n${AGENT_FLAGS_HELP.join('\n')}\n` : ''}`;
  }
  const lines = Object.entries(COMMANDS).map(([, c]) => `  ${c.usage.padEnd(48)} ${c.help}`);
  return [
    'usage: portmap-isolator COMMAND [ARGS] [--flag=value …]',
    '',
    'Commands:',
    ...lines,
    '',
    'Every command takes:',
    '  --netns=NAME|PATH      act on this network namespace as the host (default: our own)',
    `  --work_dir=DIR         state, lock and pinned namespaces (default ${DEFAULT_WORK_DIR})`,
    '  --log_format=text|json',
    '',
    'Isolator flags (Mesos names; remembered in the work_dir after the first create):',
    `  ${ISOLATOR_FLAG_NAMES.map((n) => `--${n}`).join('\n  ')}`,
    '',
    "RANGES is Mesos' '[31000-31009,31020-31029]'. Byte sizes take B, KB, MB, GB (1024-based).",
    'A boolean flag is --flag, --flag=true|false, or --no-flag for false.',
    '',
    ...AGENT_FLAGS_HELP,
    '',
  ].join('\n');
}

export function allowedFlags(command: string | undefined): ReadonlySet<string> {
  return new Set<string>([...COMMON_FLAGS, ...(command && COMMANDS[command] ? COMMANDS[command]!.flags : [])]);
}
