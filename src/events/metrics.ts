import { Gauge, type Registry } from 'prom-client';
import type { ModuleName } from '../config.ts';
import type { OutboxRelay } from './outbox-relay.ts';

/**
 * `toko_outbox_events{module,status}` (pending = the backlog, delivered and
 * not yet pruned, dead) and `toko_outbox_oldest_pending_age_seconds{module}`,
 * read from each producer's outbox at scrape time (prom-client collects
 * metrics concurrently, so each gauge reads for itself).
 */
export function registerOutboxMetrics(registry: Registry, relays: Map<ModuleName, OutboxRelay>): void {
  const each = async (fn: (module: ModuleName, backlog: Awaited<ReturnType<OutboxRelay['backlog']>>) => void) =>
    Promise.all(
      [...relays].map(async ([module, relay]) => {
        const backlog = await relay.backlog().catch(() => undefined);
        if (backlog) fn(module, backlog);
      }),
    );
  new Gauge({
    name: 'toko_outbox_events',
    help: 'Events in each module outbox by status (dead = given up after the last attempt)',
    labelNames: ['module', 'status'] as const,
    registers: [registry],
    async collect() {
      await each((module, b) => {
        for (const [status, n] of Object.entries(b.counts)) this.set({ module, status }, n);
      });
    },
  });
  new Gauge({
    name: 'toko_outbox_oldest_pending_age_seconds',
    help: 'Age of the oldest event not yet delivered from each module outbox (0 when none is pending)',
    labelNames: ['module'] as const,
    registers: [registry],
    async collect() {
      await each((module, b) => this.set({ module }, b.oldestPendingSeconds));
    },
  });
}
