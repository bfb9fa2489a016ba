import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.ts';
import { FAST_SPLIT, Shop, pool, report, type Order } from './harness.ts';
import { startSplitRig, type SplitRig } from '../helpers/split.ts';

/**
 * Split mode: the product service is killed with SIGKILL in the middle of a
 * stream of orders and started again. Orders caught in the middle are
 * finished or compensated by the recovery pass; stock is never lost or
 * double-counted.
 */
let rig: SplitRig;
const shop = new Shop(() => rig.url);

beforeAll(async () => {
  rig = await startSplitRig(FAST_SPLIT);
}, 120_000);
afterAll(() => rig?.close());

describe('product service killed during a stream of orders (split)', () => {
  it('leaves no order pending, no stock held by a rejected order, and stock + confirmed quantities constant', async () => {
    const admin = await shop.admin();
    const INITIAL = 200;
    const products = [
      await shop.product(admin, INITIAL),
      await shop.product(admin, INITIAL),
      await shop.product(admin, INITIAL),
    ];
    const customers = [await shop.customer(), await shop.customer()];
    const TOTAL = 60;
    let crash: Promise<void> | undefined;
    const statuses = await pool(TOTAL, 4, async (i) => {
      if (i === 20) {
        crash = (async () => {
          await rig.topology.kill('product');
          await new Promise((r) => setTimeout(r, 1500));
          await rig.topology.start('product');
        })();
      }
      if (i > 20 && i < 40) await new Promise((r) => setTimeout(r, 100));
      // The last third goes after the restart: the stream carries on.
      if (i >= 40) await crash;
      const c = customers[i % 2]!;
      // One to three lines, one to three units each: several stock rows change in one reservation.
      const items = products.slice(0, 1 + (i % 3)).map((productId, k) => ({ productId, quantity: 1 + ((i + k) % 3) }));
      return (await shop.place(c.token, items)).status;
    });
    await crash;

    const everyone = async () =>
      (await Promise.all(customers.map((c) => shop.all<Order>(`/api/v1/orders?userId=${c.id}`, admin)))).flat();
    await waitFor(
      'no pending order',
      async () => ((await everyone()).every((o) => o.status !== 'pending') ? true : undefined),
      30_000,
      250,
    );
    // Recovery has had its passes; nothing moves any more.
    await new Promise((r) => setTimeout(r, 2500));
    const orders = await everyone();
    const confirmed = orders.filter((o) => o.status === 'confirmed');
    const stocks = await Promise.all(products.map((p) => shop.stock(p)));
    const sold = products.map((p) =>
      confirmed
        .flatMap((o) => o.items)
        .filter((l) => l.productId === p)
        .reduce((s, l) => s + l.quantity, 0),
    );
    const byStatus = (s: number) => statuses.filter((x) => x === s).length;
    report('product service kill -9 during orders (split)', {
      ordersSent: TOTAL,
      answered201: byStatus(201),
      answered503: byStatus(503),
      answered409: byStatus(409),
      other: statuses.filter((s) => ![201, 503, 409].includes(s)),
      stored: orders.length,
      confirmed: confirmed.length,
      rejected: orders.filter((o) => o.status === 'rejected').length,
      pendingAfterRecovery: orders.filter((o) => o.status === 'pending').length,
      stock: stocks,
      sold,
    });
    expect(byStatus(503)).toBeGreaterThan(0); // the crash was felt
    expect(statuses.slice(40).every((s) => s === 201 || s === 409)).toBe(true); // and then it was over
    expect(orders.filter((o) => o.status === 'pending')).toEqual([]);
    // Every unit is either on the shelf or in a confirmed order: rejected orders hold nothing, nothing sold twice.
    expect(stocks.map((s, i) => s + sold[i]!)).toEqual(products.map(() => INITIAL));
    // Every order answered 201 is confirmed.
    expect(confirmed.length).toBeGreaterThanOrEqual(byStatus(201));
    // The service came back: ordering works again.
    expect((await shop.place(customers[0]!.token, [{ productId: products[0]!, quantity: 1 }])).status).toBe(201);
  }, 150_000);
});
