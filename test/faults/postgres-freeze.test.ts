import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/http.ts';
import { PostgresServer, postgresBin } from '../helpers/postgres-server.ts';
import { startTokoProcess, type TokoProcess } from '../helpers/process.ts';
import { freePorts, waitFor } from '../helpers/wait.ts';
import { FAST_RECOVERY, Shop, report, type Notification, type Order } from './harness.ts';

/**
 * PostgreSQL frozen (SIGSTOP on every process of a private server: its
 * connections stay open and nothing answers) for 5 s under reads, sign-ins
 * and orders, with toko as one process on it. Every request is answered:
 * a 503 within STORE_TIMEOUT_MS where it needs the database, never a 500 and
 * never a hang. Once it thaws, an order retried with its Idempotency-Key is
 * placed once, nothing is oversold, and every confirmed order gets one
 * notification.
 */
const bin = postgresBin();
const STORE_TIMEOUT_MS = 1000;
let pg: PostgresServer;
let toko: TokoProcess;
const shop = new Shop(() => toko.url);

beforeAll(async () => {
  if (!bin) throw new Error('PostgreSQL server binaries not found under /usr/lib/postgresql');
  const [port] = await freePorts(1);
  pg = new PostgresServer(port!, bin);
  pg.start();
  toko = await startTokoProcess({
    ...FAST_RECOVERY,
    DATABASE_URL: pg.url,
    STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS),
    LOG_LEVEL: 'info',
  });
}, 120_000);
afterAll(async () => {
  pg?.thaw();
  toko?.child.kill('SIGTERM');
  await toko?.exited;
  pg?.stop();
});

/** An answer, or status 0 when none came within 10 s (a hang). */
const answered = (request: Promise<{ status: number }>) =>
  Promise.race([request, new Promise<{ status: number }>((r) => setTimeout(() => r({ status: 0 }), 10_000).unref())]);

describe('PostgreSQL frozen (SIGSTOP)', () => {
  it('answers every request (503 where it needs the database), and places each retried order once', async () => {
    const admin = await shop.admin();
    const product = await shop.product(admin, 1000);
    const customer = await shop.customer();
    const email = (await call(toko.url, 'GET', '/api/v1/users/me', { token: customer.token })).body.email as string;
    const unknownId = () => [...Array(24)].map(() => Math.floor(Math.random() * 16).toString(16)).join('');
    // Warm the pool, so the frozen server holds open connections.
    for (let i = 0; i < 4; i++) await shop.place(customer.token, [{ productId: product, quantity: 1 }], `warm-${i}`);

    const statuses: Record<string, number[]> = { read: [], login: [], order: [] };
    const slowest: Record<string, number> = {};
    const keys: string[] = [];
    const timed = async (what: string, request: () => Promise<{ status: number }>) => {
      const started = Date.now();
      const { status } = await answered(request());
      slowest[what] = Math.max(slowest[what] ?? 0, Date.now() - started);
      statuses[what]!.push(status);
      return status;
    };

    pg.freeze();
    const frozenAt = Date.now();
    try {
      while (Date.now() - frozenAt < 5000) {
        const key = `frozen-${keys.length}`;
        keys.push(key);
        await Promise.all([
          timed('read', () => call(toko.url, 'GET', `/api/v1/products/${unknownId()}`)),
          timed('login', () =>
            call(toko.url, 'POST', '/api/v1/users/login', { body: { email, password: 'not-the-password' } }),
          ),
          timed('order', () => shop.place(customer.token, [{ productId: product, quantity: 1 }], key)),
        ]);
      }
    } finally {
      pg.thaw();
    }
    const thawedAt = Date.now();
    await waitFor(
      'reads after the thaw',
      async () => ((await call(toko.url, 'GET', `/api/v1/products/${unknownId()}`)).status === 404 ? true : undefined),
      30_000,
      100,
    );
    const recoveredMs = Date.now() - thawedAt;

    // The client's one retry, with the same key, for every order that was not answered 201.
    let retried = 0;
    for (const [i, status] of statuses.order!.entries()) {
      if (status === 201) continue;
      retried++;
      const again = await shop.place(customer.token, [{ productId: product, quantity: 1 }], keys[i]);
      expect([200, 201], again.text).toContain(again.status);
    }

    const settledOrders = await waitFor(
      'every order settled',
      async () => {
        const orders = await shop.all<Order>(`/api/v1/orders?userId=${customer.id}`, admin);
        return orders.every((o) => o.status !== 'pending') ? orders : undefined;
      },
      30_000,
      250,
    );
    const confirmations = async () =>
      (await shop.all<Notification>(`/api/v1/notifications?userId=${customer.id}`, admin)).filter(
        (n) => n.template === 'order-confirmed',
      );
    const confirmedCount = settledOrders.filter((o) => o.status === 'confirmed').length;
    await waitFor(
      'a confirmation for every confirmed order',
      async () => ((await confirmations()).length >= confirmedCount ? true : undefined),
      30_000,
      250,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const settled = await shop.all<Order>(`/api/v1/orders?userId=${customer.id}`, admin);
    const notes = await confirmations();
    const per = (id: string) => notes.filter((n) => n.body.includes(id)).length;
    const all = Object.values(statuses).flat();
    report(`PostgreSQL frozen (SIGSTOP) for 5 s, STORE_TIMEOUT_MS=${STORE_TIMEOUT_MS} (one process)`, {
      requests: all.length,
      answered503: all.filter((s) => s === 503).length,
      fiveHundreds: all.filter((s) => s === 500).length,
      unanswered: all.filter((s) => s === 0).length,
      slowestMs: slowest,
      recoveredMs,
      ordersRetried: retried,
      orders: settled.length,
    });
    // Every request answered, none a 500; a read that needs the database is a 503 while it is frozen.
    expect(all.filter((s) => s === 0 || s === 500)).toEqual([]);
    expect(statuses.read!.every((s) => s === 503)).toBe(true);
    expect(statuses.order!.every((s) => s === 201 || s === 503)).toBe(true);
    // One order per key: 4 warm-up orders and one per key tried while frozen, whatever the first answer was.
    expect(settled.length).toBe(4 + keys.length);
    expect(new Set(settled.map((o) => o.id)).size).toBe(settled.length);
    // Not oversold: the stock is what the confirmed orders left.
    const finalConfirmed = settled.filter((o) => o.status === 'confirmed');
    expect(await shop.stock(product)).toBe(1000 - finalConfirmed.length);
    // Every confirmed order exactly one notification.
    expect(finalConfirmed.filter((o) => per(o.id) !== 1).map((o) => [o.id, per(o.id)])).toEqual([]);
    // An outage is logged as a warning: nothing in toko is at fault.
    expect(toko.lines.filter((l) => l.level === 50)).toEqual([]);
  }, 180_000);
});
