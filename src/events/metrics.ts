import { Gauge, type Registry } from 'prom-client';
import type { ModuleName } from '../config.ts';
import type { OutboxRelay } from './outbox-relay.ts';

type Backlog = Awaited<ReturnType<OutboxRelay['backlog']>>;

/**
 * `toko_outbox_events{module,status}` (pending = the backlog, delivered and
 * not yet pruned, dead) and `toko_outbox_oldest_pending_age_seconds{module}`,
 * read from each producer's outbox at scrape time. prom-client collects the
 * two gauges concurrently; they share one read of each outbox per scrape.
 */
export function registerOutboxMetrics(registry: Registry, relays: Map<ModuleName, OutboxRelay>): void {
  let reading: Promise<[ModuleName, Backlog | undefined][]> | undefined;
  const read = () =>
    (reading ??= Promise.all(
      [...relays].map(
        async ([module, relay]) =>
          [module, await relay.backlog().catch(() => undefined)] as [ModuleName, Backlog | undefined],
      ),
    ).finally(() => (reading = undefined)));
  new Gauge({
    name: 'toko_outbox_events',
    help: 'Events in each module outbox by status (dead = given up after the last attempt)',
    labelNames: ['module', 'status'] as const,
    registers: [registry],
    async collect() {
      for (const [module, b] of await read())
        if (b) for (const [status, n] of Object.entries(b.counts)) this.set({ module, status }, n);
    },
  });
  new Gauge({
    name: 'toko_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest event not yet delivered from each module outbox (0 when none is pending)',
    labelNames: ['module'] as const,
    registers: [registry],
    async collect() {
      for (const [module, b] of await read()) if (b) this.set({ module }, b.oldestPendingSeconds);
    },
  });
}
