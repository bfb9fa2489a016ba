/**
 * How a module counts what it does, without knowing the metrics library:
 * the kernel hands every module a Meter whose counters land in the process's
 * Prometheus registry with a `module` label added. Label values must come
 * from small fixed sets (outcomes, reasons, transports), never from ids.
 */
export interface Counter<L extends string> {
  inc(labels: Record<L, string>, by?: number): void;
}

/** A gauge read when metrics are scraped: `collect` returns the current values (an outage makes it return nothing). */
export interface GaugeSpec<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  collect(): Promise<{ labels: Record<L, string>; value: number }[]>;
}

export interface Meter {
  counter<L extends string>(spec: { name: string; help: string; labelNames: readonly L[] }): Counter<L>;
  gauge<L extends string>(spec: GaugeSpec<L>): void;
}

/** For code built outside a running process (unit tests): counts nothing. */
export const noopMeter: Meter = {
  counter: () => ({ inc: () => undefined }),
  gauge: () => undefined,
};
