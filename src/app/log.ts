/**
 * Log lines for people (default) or machines (`--log_format=json`), on stderr. Lines below
 * `--log_level` are dropped; a warning already printed by this logger is not printed again (a
 * condition such as a missing kernel feature is noticed on every operation, worth one line).
 */
export type LogFormat = 'text' | 'json';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** One log line in `format`, at `time`. */
export function formatLogLine(format: LogFormat, level: LogLevel, msg: string, fields: Record<string, unknown> = {}, time = new Date()): string {
  if (format === 'json') return JSON.stringify({ time: time.toISOString(), level, msg, ...fields });
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${time.toISOString()} ${level.toUpperCase().padEnd(5)} ${msg}${extra ? ' ' + extra : ''}`;
}

export function createLogger(
  format: LogFormat = 'text',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
  level: LogLevel = 'info',
): Logger {
  const threshold = LOG_LEVELS.indexOf(level);
  const warned = new Set<string>();
  const emit = (at: LogLevel, msg: string, fields: Record<string, unknown> = {}) => {
    if (LOG_LEVELS.indexOf(at) < threshold) return;
    if (at === 'warn') {
      const key = JSON.stringify([msg, fields]);
      if (warned.has(key)) return;
      warned.add(key);
    }
    write(formatLogLine(format, at, msg, fields));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
