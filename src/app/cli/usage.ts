/**
 * The CLI's commands, their flags and its help text (DESIGN.md §4). Every flag is described once:
 * the CLI's own below, the isolator's in ISOLATOR_FLAGS (src/isolator/config.ts).
 */
import { ISOLATOR_FLAGS, ISOLATOR_FLAG_NAMES } from '../../isolator/config.js';
import { DEFAULT_WORK_DIR } from '../../isolator/state.js';

/** Spares the agent keeps ready unless --warm_pool says otherwise (see IsolatorOptions.warmPool). */
export const AGENT_WARM_POOL = 4;

/** One CLI flag in help: its value placeholder ('' for a boolean), default and meaning. */
export interface FlagHelp {
  value: string;
  default: string;
  help: string;
}

const bool = (dflt: string, help: string): FlagHelp => ({ value: '', default: dflt, help });

/** The flags every command takes. */
export const GENERAL_FLAGS: Readonly<Record<string, FlagHelp>> = {
  work_dir: { value: 'DIR', default: DEFAULT_WORK_DIR, help: 'state, lock, pinned namespaces and the stored host configuration (flags.json)' },
  log_format: { value: 'text|json', default: 'text', help: 'log lines, and the error line of a failure, for people or as JSON objects (on stderr)' },
  log_level: { value: 'debug|info|warn|error', default: 'info', help: 'the least severe log lines printed' },
  help: bool('', 'print the usage of the program, or of the command given (as `help COMMAND` does)'),
};

/** The flags some commands take (which: COMMANDS[c].flags). */
export const COMMAND_FLAGS: Readonly<Record<string, FlagHelp>> = {
  netns: { value: 'NAME|PATH', default: 'our own', help: 'act on this network namespace as the host (a name in /var/run/netns, or a path)' },
  ports: { value: 'RANGES', default: 'none', help: "the container's non-ephemeral ports, within --resources' ports: '[31000-31009,31020-31029]'" },
  pid: { value: 'PID', default: 'a new namespace, pinned at <work_dir>/netns/ID', help: 'isolate the network namespace of this process instead' },
  cpus: { value: 'N', default: 'none', help: "the container's CPUs, for the per-CPU rates (--egress_rate_per_cpu, --ingress_rate_per_cpu)" },
  id: { value: 'ID', default: 'run-<pid>', help: 'the container ID' },
  json: bool('off', 'print JSON instead of a table'),
  listen: { value: 'ADDR:PORT', default: 'only the Unix socket <work_dir>/agent.sock', help: 'also serve HTTP on TCP; IPv6 as [::1]:5051; port 0 picks one' },
  warm_pool: { value: 'N', default: String(AGENT_WARM_POOL), help: "spares kept ready (0–64): a create takes one and only adds its ports' filters" },
  socket_group: {
    value: 'GROUP',
    default: 'none: socket mode 0600, root only',
    help: 'make the socket 0660 owned by GROUP (name or gid) and the work_dir searchable by it',
  },
  http_credentials: {
    value: 'FILE',
    default: 'none',
    help: 'Mesos\' {"credentials":[{"principal":"…","secret":"…"}]}: HTTP basic auth on the TCP listener',
  },
  authenticate_http_readwrite: bool('on with --listen (which then needs --http_credentials)', 'POST/PATCH/DELETE on TCP need credentials; --no-… lets anyone'),
  authenticate_http_readonly: bool('off', 'the GETs on TCP need credentials too (/health never does)'),
  tls_cert: { value: 'FILE', default: 'none: plain HTTP', help: 'PEM certificate: serve HTTPS on the TCP listener (with --tls_key)' },
  tls_key: { value: 'FILE', default: 'none', help: 'PEM key of --tls_cert' },
};

/** A command: its own flags, whether it acts on a host (--netns and the isolator flags), its usage. */
export interface CommandHelp {
  flags: string[];
  /** Takes --netns and the isolator flags (default true). */
  host?: boolean;
  /** How many arguments it takes at most (default 0). */
  args?: number;
  usage: string;
  help: string;
  /** Said after its flags. */
  notes?: string[];
}

export const COMMANDS: Readonly<Record<string, CommandHelp>> = {
  doctor: {
    flags: ['netns', 'json'],
    usage: 'doctor [--json]',
    help: 'check root, namespaces, kernel features (u32, mirred, htb, ingress, fq_codel) and the host configuration',
  },
  create: {
    args: 1,
    flags: ['netns', 'ports', 'pid', 'cpus'],
    usage: 'create ID [--ports=RANGES] [--pid=PID] [--cpus=N]',
    help: 'isolate a container (creating and pinning its namespace unless --pid is given); prints JSON',
  },
  update: {
    args: 1,
    flags: ['netns', 'ports'],
    usage: 'update ID --ports=RANGES',
    help: "change a running container's non-ephemeral ports (adds before it removes)",
  },
  destroy: { args: 1, flags: ['netns'], usage: 'destroy ID', help: 'remove everything of a container (no-op for an unknown ID)' },
  list: { flags: ['netns', 'json'], usage: 'list [--json]', help: 'the containers and their ports' },
  stats: { args: 1, flags: ['netns'], usage: 'stats [ID]', help: 'Mesos /monitor/statistics JSON' },
  run: {
    flags: ['netns', 'id', 'ports', 'cpus'],
    usage: 'run [--id=ID] [--ports=RANGES] [--cpus=N] -- CMD [ARGS…]',
    help: 'create, run CMD inside with stdio inherited, destroy afterwards; exits with CMD’s status (127: CMD cannot be run)',
  },
  agent: {
    flags: [
      'netns',
      'listen',
      'warm_pool',
      'socket_group',
      'http_credentials',
      'authenticate_http_readwrite',
      'authenticate_http_readonly',
      'tls_cert',
      'tls_key',
    ],
    usage: 'agent [--listen=ADDR:PORT] [agent flags]',
    help: 'recover, then serve HTTP (statistics, containers, metrics) on <work_dir>/agent.sock (and TCP with --listen) until SIGTERM',
    notes: [
      'The socket needs no credentials: its mode is its access control. While an agent answers on',
      'the socket, create, update, destroy, list and stats go through it (same output and exit status),',
      'unless they give isolator flags: those act directly.',
    ],
  },
  recover: { flags: ['netns'], usage: 'recover', help: 'rebuild state from the work_dir and the kernel, clean up orphans, report' },
  cleanup: { flags: ['netns'], usage: 'cleanup', help: 'destroy every container, undo every host-side change, forget the host configuration' },
  config: {
    flags: ['netns', 'json'],
    usage: 'config [--json]',
    help: 'where the host configuration is stored, what is stored, and every isolator flag’s value in effect and default',
  },
  demo: {
    flags: [],
    host: false,
    usage: 'demo',
    help: 'a self-contained lab showing isolation, rate limiting and statistics; exits 0 only if every check passed',
  },
  help: { args: 1, flags: [], host: false, usage: 'help [COMMAND]', help: 'this help, or the usage and flags of COMMAND' },
};

export function allowedFlags(command: string | undefined): ReadonlySet<string> {
  const c = command !== undefined ? COMMANDS[command] : undefined;
  const host = c ? c.host !== false : false;
  return new Set<string>([...Object.keys(GENERAL_FLAGS), ...(c?.flags ?? []), ...(host ? ISOLATOR_FLAG_NAMES : [])]);
}

/** Boolean flags: --flag, --flag=true|false, --no-flag. */
export function isBooleanFlag(name: string): boolean {
  const f = GENERAL_FLAGS[name] ?? COMMAND_FLAGS[name];
  if (f) return f.value === '';
  return (ISOLATOR_FLAG_NAMES as readonly string[]).includes(name) && ISOLATOR_FLAGS[name as keyof typeof ISOLATOR_FLAGS].kind === 'boolean';
}

const WIDTH = 100;
const INDENT = 26;

/** Words of `text` in lines of at most WIDTH, the first after `head`, the rest indented. */
function wrap(head: string, text: string): string[] {
  const lines: string[] = [];
  let line = head.length < INDENT ? head.padEnd(INDENT) : `${head}\n${' '.repeat(INDENT)}`;
  let fresh = true;
  for (const word of text.split(' ')) {
    const width = line.length - line.lastIndexOf('\n') - 1;
    if (!fresh && width + 1 + word.length > WIDTH) {
      lines.push(line);
      line = ' '.repeat(INDENT) + word;
    } else line += (fresh ? '' : ' ') + word;
    fresh = false;
  }
  lines.push(line);
  return lines.join('\n').split('\n');
}

function flagLines(name: string, f: FlagHelp): string[] {
  const head = f.value ? `  --${name}=${f.value}` : name === 'help' ? '  -h, --help' : `  --[no-]${name}`;
  return wrap(head, f.default ? `${f.help} (default: ${f.default})` : f.help);
}

function isolatorFlagLines(): string[] {
  return ISOLATOR_FLAG_NAMES.flatMap((name) => {
    const f = ISOLATOR_FLAGS[name];
    const dflt = f.default !== undefined ? String(f.default) : (f.none ?? 'none');
    return flagLines(name, { value: f.kind === 'boolean' ? '' : f.value, default: dflt, help: f.help });
  });
}

const ISOLATOR_FLAGS_HEAD = [
  'Isolator flags: the host configuration (agent flags in Mesos, same names and meaning). The first',
  'create, run or agent stores them in <work_dir>/flags.json; while containers exist a command may',
  'give them only with the stored values. `config` shows them; `cleanup` forgets them.',
];

const CONVENTIONS = [
  "RANGES is Mesos' '[31000-31009,31020-31029]'. BYTES take B, KB, MB, GB (1024-based): 10MB.",
  'A boolean flag is --flag, --flag=true|false, or --no-flag for false. -h is --help.',
  'Exit status: 0 success; 1 runtime failure (one line: why; nothing half-built is left);',
  '2 a bad command line or configuration (one line naming the flag or argument).',
];

/** The help of one command (its usage, its flags, the flags every command takes), or of the program. */
export function usage(command?: string): string {
  const c = command !== undefined ? COMMANDS[command] : undefined;
  if (c) {
    const own = c.flags.flatMap((n) => flagLines(n, COMMAND_FLAGS[n]!));
    const host = c.host !== false ? ['', ...ISOLATOR_FLAGS_HEAD, ...isolatorFlagLines()] : [];
    return [
      `usage: portmap-isolator ${c.usage}`,
      '',
      ...wrap('', c.help).map((l) => l.trim()),
      ...(own.length ? ['', 'Flags:', ...own] : []),
      ...(c.notes ? ['', ...c.notes] : []),
      '',
      'Flags every command takes:',
      ...Object.entries(GENERAL_FLAGS).flatMap(([n, f]) => flagLines(n, f)),
      ...host,
      '',
      ...CONVENTIONS,
      '',
    ].join('\n');
  }
  return [
    'usage: portmap-isolator COMMAND [ARGS] [--flag=value …]',
    '       portmap-isolator help COMMAND   (or COMMAND --help): its usage and flags',
    '',
    'Commands:',
    ...Object.values(COMMANDS).flatMap((cmd) => wrap(`  ${cmd.usage}`, cmd.help)),
    '',
    'Flags every command takes:',
    ...Object.entries(GENERAL_FLAGS).flatMap(([n, f]) => flagLines(n, f)),
    '',
    'Flags of some commands (see `help COMMAND` for which):',
    ...Object.entries(COMMAND_FLAGS).flatMap(([n, f]) => flagLines(n, f)),
    '',
    ...ISOLATOR_FLAGS_HEAD,
    ...isolatorFlagLines(),
    '',
    ...CONVENTIONS,
    '',
  ].join('\n');
}
