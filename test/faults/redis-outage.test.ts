import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { FAST_SPLIT, Shop, pool, report, sample, type Notification, type Order } from './harness.ts';
import { startSplitRig, type SplitRig } from '../helpers/split.ts';

/**
 * Split mode, events over BullMQ: Redis is killed for a few seconds while
 * orders keep coming, then started again on its append-only file. Orders do
 * not need Redis; their events wait in the order service's outbox and go out
 * once Redis is back. Every confirmation arrives once.
 */
let rig: SplitRig;
const shop = new Shop(() => rig.url);

beforeAll(async () => {
  rig = await startSplitRig(FAST_SPLIT);
}, 120_000);
afterAll(() => rig?.close());

describe('Redis outage in split mode', () => {
  it('loses no notification and doubles none', async () => {
    const admin = await shop.admin();
    const product = await shop.product(admin, 1000);
    const customers = [await shop.customer(), await shop.customer(), await shop.customer()];
    const TOTAL = 45;
    let redisDown = false;
    let duringOutage = 0;
    let outage: Promise<void> | undefined;
    let down: Promise<void> | undefined;
    const statuses = await pool(TOTAL, 3, async (i) => {
      if (i === 15) {
        down = rig.redis.stop().then(() => void (redisDown = true));
        outage = (async () => {
          await down;
          await new Promise((r) => setTimeout(r, 4000));
          await rig.redis.start();
          redisDown = false;
        })();
      }
      // The middle third is placed while Redis is down, spread over the outage.
      if (i > 15 && i < 30) {
        await down;
        await new Promise((r) => setTimeout(r, 250));
      }
      const c = customers[i % customers.length]!;
      const status = (await shop.place(c.token, [{ productId: product, quantity: 1 }])).status;
      if (redisDown) duringOutage++;
      return status;
    });
    await outage;

    const orders = (
      await Promise.all(customers.map((c) => shop.all<Order>(`/api/v1/orders?userId=${c.id}`, admin)))
    ).flat();
    const confirmed = orders.filter((o) => o.status === 'confirmed');
    const notes = async () =>
      (
        await Promise.all(customers.map((c) => shop.all<Notification>(`/api/v1/notifications?userId=${c.id}`, admin)))
      ).flat();
    const confirmationsOf = (ns: Notification[], id: string) =>
      ns.filter((n) => n.template === 'order-confirmed' && n.body.includes(id));
    await waitFor(
      'a sent confirmation for every confirmed order',
      async () => {
        const ns = await notes();
        return confirmed.every((o) => confirmationsOf(ns, o.id).some((n) => n.status === 'sent')) ? true : undefined;
      },
      60_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 3000));
    const ns = await notes();
    const lost = confirmed.filter((o) => confirmationsOf(ns, o.id).length === 0);
    const doubled = confirmed.filter((o) => confirmationsOf(ns, o.id).length > 1);
    const metrics = (await call(rig.topology.serviceUrl('notification'), 'GET', '/metrics')).text;
    const sends = sample(metrics, 'toko_notifications_sent_total', { transport: 'log', result: 'sent' });
    const welcomes = ns.filter((n) => n.template === 'welcome').length;
    report('Redis killed for 4 s during orders (split)', {
      ordersPlaced: TOTAL,
      answered201: statuses.filter((s) => s === 201).length,
      placedWhileRedisDown: duringOutage,
      confirmed: confirmed.length,
      notificationsDelivered: confirmed.length - lost.length,
      lost: lost.length,
      duplicates: doubled.length,
      transportSends: sends,
    });
    // Placing orders never waited for Redis.
    expect(duringOutage).toBeGreaterThanOrEqual(10);
    expect(statuses.every((s) => s === 201)).toBe(true);
    expect(confirmed).toHaveLength(TOTAL);
    expect(lost).toEqual([]);
    expect(doubled).toEqual([]);
    // The transport was called once per notification: no mail went out twice.
    expect(sends).toBe(confirmed.length + welcomes);
  }, 150_000);
});
