import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { FAST_SPLIT, Shop, report, type Notification, type Order } from './harness.ts';
import { startSplitRig, type SplitRig } from '../helpers/split.ts';

/**
 * Split mode, Redis frozen (SIGSTOP: it keeps accepting connections and
 * answers nothing) for 6 s while customers log in, guess passwords, browse
 * and order. The shared throttles turn to their in-memory insurance, so no
 * request is a 5xx and none waits on Redis for long; the wrong-password
 * limit still holds; once Redis thaws, every confirmed order gets its one
 * notification.
 */
let rig: SplitRig;
const shop = new Shop(() => rig.url);

beforeAll(async () => {
  rig = await startSplitRig({ ...FAST_SPLIT, LOGIN_MAX_FAILURES: '5' });
}, 120_000);
afterAll(async () => {
  rig?.redis.thaw();
  await rig?.close();
});

describe('Redis frozen in split mode', () => {
  it('answers every request without a 5xx, keeps the login limit, and loses no notification', async () => {
    const admin = await shop.admin();
    const product = await shop.product(admin, 1000);
    const customer = await shop.customer();
    const victim = await shop.customer();
    const victimEmail = (await call(rig.url, 'GET', '/api/v1/users/me', { token: victim.token })).body.email as string;

    rig.redis.freeze();
    const frozenAt = Date.now();
    const statuses: number[] = [];
    const slowest: Record<string, number> = {};
    const timed = async (what: string, request: () => Promise<{ status: number }>) => {
      const started = Date.now();
      const { status } = await request();
      slowest[what] = Math.max(slowest[what] ?? 0, Date.now() - started);
      statuses.push(status);
      return status;
    };
    let orders = 0;
    const wrong: number[] = [];
    try {
      while (Date.now() - frozenAt < 6000) {
        await timed('browse', () => call(rig.url, 'GET', '/api/v1/products?limit=5'));
        if ((await timed('order', () => shop.place(customer.token, [{ productId: product, quantity: 1 }]))) === 201)
          orders++;
        if (wrong.length < 8)
          wrong.push(
            await timed('wrong login', () =>
              call(rig.url, 'POST', '/api/v1/users/login', {
                body: { email: victimEmail, password: 'not-the-password' },
              }),
            ),
          );
      }
    } finally {
      rig.redis.thaw();
    }

    const placed = await shop.all<Order>(`/api/v1/orders?userId=${customer.id}`, admin);
    const confirmed = placed.filter((o) => o.status === 'confirmed');
    const confirmationsOf = (ns: Notification[], id: string) =>
      ns.filter((n) => n.template === 'order-confirmed' && n.body.includes(id));
    await waitFor(
      'a confirmation for every confirmed order',
      async () => {
        const ns = await shop.all<Notification>(`/api/v1/notifications?userId=${customer.id}`, admin);
        return confirmed.every((o) => confirmationsOf(ns, o.id).length > 0) ? true : undefined;
      },
      60_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 2000));
    const ns = await shop.all<Notification>(`/api/v1/notifications?userId=${customer.id}`, admin);
    const lost = confirmed.filter((o) => confirmationsOf(ns, o.id).length === 0);
    const doubled = confirmed.filter((o) => confirmationsOf(ns, o.id).length > 1);
    report('Redis frozen (SIGSTOP) for 6 s (split)', {
      requests: statuses.length,
      fiveHundreds: statuses.filter((s) => s >= 500).length,
      ordersPlacedWhileFrozen: orders,
      wrongLogins: wrong.join(' '),
      slowestMs: JSON.stringify(slowest),
      lost: lost.length,
      duplicates: doubled.length,
    });
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(orders).toBeGreaterThan(0);
    // The wrong-password limit held on its insurance: five 401s, then 429s.
    expect(wrong.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(wrong.slice(5).every((s) => s === 429)).toBe(true);
    expect(lost).toEqual([]);
    expect(doubled).toEqual([]);
  }, 150_000);
});
