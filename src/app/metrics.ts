/** Prometheus text exposition (version 0.0.4) for the agent's /metrics. */

/** Operation latencies and errors, observed by the agent. */
export class OperationMetrics {
  static readonly BUCKETS_SECONDS = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
  private readonly hist = new Map<string, { counts: number[]; sum: number; count: number }>();
  private readonly errors = new Map<string, number>();

  observe(op: string, seconds: number): void {
    let h = this.hist.get(op);
    if (!h) this.hist.set(op, (h = { counts: OperationMetrics.BUCKETS_SECONDS.map(() => 0), sum: 0, count: 0 }));
    OperationMetrics.BUCKETS_SECONDS.forEach((b, i) => {
      if (seconds <= b) h!.counts[i]!++;
    });
    h.sum += seconds;
    h.count++;
  }
  error(op: string): void {
    this.errors.set(op, (this.errors.get(op) ?? 0) + 1);
  }

  /** Time an operation, counting failures. */
  async time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const t0 = process.hrtime.bigint();
    try {
      return await fn();
    } catch (e) {
      this.error(op);
      throw e;
    } finally {
      this.observe(op, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }

  render(w: MetricsWriter): void {
    w.help('portmap_isolator_operation_duration_seconds', 'histogram', 'Duration of isolator operations.');
    for (const [op, h] of this.hist) {
      OperationMetrics.BUCKETS_SECONDS.forEach((b, i) => w.sample('portmap_isolator_operation_duration_seconds_bucket', { op, le: String(b) }, h.counts[i]!));
      w.sample('portmap_isolator_operation_duration_seconds_bucket', { op, le: '+Inf' }, h.count);
      w.sample('portmap_isolator_operation_duration_seconds_sum', { op }, h.sum);
      w.sample('portmap_isolator_operation_duration_seconds_count', { op }, h.count);
    }
    w.help('portmap_isolator_operation_errors_total', 'counter', 'Failed isolator operations.');
    for (const [op, n] of this.errors) w.sample('portmap_isolator_operation_errors_total', { op }, n);
  }
}

const NEEDS_ESCAPE = /[\\\n"]/;
/** A label value escaped (most need nothing: one test, no copies; a scrape at 1000 containers formats 10^4 of them). */
const escape = (v: string) => (NEEDS_ESCAPE.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"') : v);

/** Series of a histogram family besides its name: a sample of these belongs to the family. */
const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

/**
 * Prometheus text, one family at a time: a family's HELP and TYPE, then every sample of it, in
 * the order given — whatever order help() and sample() are called in (interleaved families lose
 * their TYPE in strict parsers).
 */
export class MetricsWriter {
  private readonly families = new Map<string, { type?: string; help?: string; samples: string[] }>();

  help(name: string, type: 'gauge' | 'counter' | 'histogram', text: string): void {
    const f = this.family(name);
    if (f.type !== undefined) return;
    f.type = type;
    f.help = text;
  }

  sample(name: string, labels: Record<string, string>, value: number): void {
    let ls = '';
    for (const k in labels) ls += `${ls ? ',' : '{'}${k}="${escape(labels[k]!)}"`;
    this.family(this.familyOf(name)).samples.push(`${name}${ls}${ls ? '}' : ''} ${Number.isFinite(value) ? value : 0}`);
  }

  toString(): string {
    let out = '';
    for (const [name, f] of this.families) {
      if (f.type !== undefined) out += `# HELP ${name} ${f.help}\n# TYPE ${name} ${f.type}\n`;
      if (f.samples.length) out += f.samples.join('\n') + '\n'; // one join per family: no array of every line
    }
    return out;
  }

  private family(name: string): { type?: string; help?: string; samples: string[] } {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { samples: [] }));
    return f;
  }

  /** The family a sample's name belongs to: itself, or the histogram it is a series of. */
  private familyOf(name: string): string {
    if (this.families.has(name)) return name;
    for (const suffix of HISTOGRAM_SUFFIXES) {
      const base = name.slice(0, -suffix.length);
      if (name.endsWith(suffix) && this.families.get(base)?.type === 'histogram') return base;
    }
    return name;
  }
}
