/** Where the time of the last operation went, phase by phase (milliseconds), for benchmarks and metrics. */
export type Timings = Record<string, number>;

/**
 * Times the phases of one create or update. `onPhase` (IsolatorOptions.onPhase) hears of each
 * phase as it ends; the time it takes counts in no phase.
 */
export class Stopwatch {
  readonly timings: Timings = {};
  private last = performance.now();

  constructor(private readonly onPhase?: (phase: string) => void) {}

  lap(phase: string): void {
    const now = performance.now();
    this.timings[phase] = (this.timings[phase] ?? 0) + (now - this.last);
    this.last = now;
    if (this.onPhase) {
      this.onPhase(phase);
      this.last = performance.now();
    }
  }
}
