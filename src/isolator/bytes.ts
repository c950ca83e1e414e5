/**
 * Mesos "Bytes" values: an integer followed by a unit (B, KB, MB, GB, TB; case-insensitive;
 * powers of 1024). A bare number or a fraction is rejected, as in Mesos.
 */
const UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export function parseBytes(text: string): number {
  const m = /^\s*(\d+)\s*([KMGT]?B)\s*$/i.exec(text);
  if (!m) throw new Error(`invalid bytes '${text}': expected an integer with a unit B, KB, MB, GB or TB (1024-based), e.g. 125000B or 10MB`);
  const value = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(value)) throw new Error(`invalid bytes '${text}': too large`);
  return value;
}

/** The shortest exact spelling: 1048576 → '1MB', 1000 → '1000B'. */
export function formatBytes(bytes: number): string {
  for (const unit of ['TB', 'GB', 'MB', 'KB']) {
    const f = UNITS[unit]!;
    if (bytes >= f && bytes % f === 0) return `${bytes / f}${unit}`;
  }
  return `${bytes}B`;
}
