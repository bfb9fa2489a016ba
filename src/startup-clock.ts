/**
 * When the first of toko's modules ran, in ms since the process started
 * (performance.timeOrigin): the process entry imports this module first, so
 * what came before is node's own start and the reading of the entry's
 * static imports.
 */
const firstLineAt = performance.now();

/**
 * Where start-up time goes, as phases the main thread waits through one
 * after another. Marks are whole ms since the process started, each phase
 * the difference between two marks, so the phases add up exactly to the
 * last mark and never to more than the time since the process started.
 */
export class StartupClock {
  private readonly phases = new Map<string, number>();
  private last: number;

  /** A clock whose first phase begins now (a server started inside another program, as tests do). */
  constructor(startAt = Math.round(performance.now())) {
    this.last = startAt;
  }

  /** The process entry's clock: from the process start, with `boot` (up to our first line) ended. */
  static ofProcess(): StartupClock {
    const clock = new StartupClock(0);
    clock.endAt('boot', Math.round(firstLineAt));
    return clock;
  }

  /** Ends the phase that ran since the previous mark; a phase ended again (once per module) adds up. */
  end(phase: string): void {
    this.endAt(phase, Math.round(performance.now()));
  }

  private endAt(phase: string, at: number): void {
    this.phases.set(phase, (this.phases.get(phase) ?? 0) + at - this.last);
    this.last = at;
  }

  /** Each phase's ms, in the order they first ended. */
  figures(): Record<string, number> {
    return Object.fromEntries(this.phases);
  }
}
