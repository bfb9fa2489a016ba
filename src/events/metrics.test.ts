import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { registerOutboxMetrics } from './metrics.ts';
import type { OutboxRelay } from './outbox-relay.ts';

describe('outbox metrics', () => {
  it('read each outbox once per scrape for both gauges', async () => {
    let reads = 0;
    const relay = {
      backlog: async () => {
        reads++;
        await new Promise((r) => setTimeout(r, 10));
        return { counts: { pending: 2, delivered: 1, dead: 0 }, oldestPendingSeconds: 3 };
      },
    } as unknown as OutboxRelay;
    const registry = new Registry();
    registerOutboxMetrics(registry, new Map([['order', relay]]));
    const text = await registry.metrics();
    expect(text).toContain('toko_outbox_events{module="order",status="pending"} 2');
    expect(text).toContain('toko_outbox_oldest_pending_age_seconds{module="order"} 3');
    expect(reads).toBe(1);
    await registry.metrics();
    expect(reads).toBe(2);
  });
});
