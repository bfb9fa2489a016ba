import { Gauge } from 'prom-client';
import type { ModuleName } from '../config.ts';
import type { Metrics } from '../http/metrics.ts';
import type { OutboxRelay } from './outbox-relay.ts';

/** `toko_outbox_events{module,status}`: pending, delivered (not yet pruned) and dead events per module, read at scrape time. */
export function registerOutboxMetrics(metrics: Metrics, relays: Map<ModuleName, OutboxRelay>): void {
  new Gauge({
    name: 'toko_outbox_events',
    help: 'Events in each module outbox by status (dead = given up after the last attempt)',
    labelNames: ['module', 'status'] as const,
    registers: [metrics.registry],
    async collect() {
      for (const [module, relay] of relays) {
        const counts = await relay.counts().catch(() => undefined);
        if (!counts) continue;
        for (const [status, n] of Object.entries(counts)) this.set({ module, status }, n);
      }
    },
  });
}
