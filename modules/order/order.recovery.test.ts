import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceUnavailable } from '../../kit/errors.ts';
import { sqlDatabase, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN, TEST_ADMIN_ENV, call, createProduct, registerCustomer } from '../../test/helpers/http.ts';
import type { ProductPort } from '../product/contract.ts';
import type { UserPort } from '../user/contract.ts';
import { createEventRecorder, registryMeter } from '../../test/helpers/kernel.ts';
import { orderContract } from './contract.ts';
import { IdempotencyStore } from './idempotency.ts';
import { OrderEntity } from './order.entity.ts';
import { OrderRecovery } from './order.recovery.ts';
import { OrderService } from './order.service.ts';
import { Registry } from 'prom-client';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp(TEST_ADMIN_ENV);
});
afterAll(() => app?.close());

const logger = pino({ level: 'silent' });

/** An order service like the module's, over the real database and ports, with the product port swapped by `products`. */
function build(products: ProductPort) {
  const registry = new Registry();
  const { orm, sql } = sqlDatabase(app.server, 'order');
  const idempotency = new IdempotencyStore(sql, { ttlSeconds: 60, leaseSeconds: 60, waitMs: 1000, pollMs: 10 });
  const orders = new OrderService({
    orm,
    sql,
    users: app.server.ports.get('user') as UserPort,
    products,
    idempotency,
    events: createEventRecorder({
      module: 'order',
      schema: 'orders',
      events: orderContract.events,
      wake: () => undefined,
    }),
    limits: { maxQuantity: 100, maxLines: 10 },
    currency: 'IDR',
    logger,
    meter: registryMeter(registry, 'order'),
  });
  // A timeout of 0: every pending order counts as stuck, as it would after a crash once the timeout passed.
  const recovery = new OrderRecovery(
    { orm, products, orders, idempotency, logger },
    { pendingTimeoutSeconds: 0, intervalSeconds: 60 },
  );
  const counted = async (outcome: string, reason: string) =>
    (await registry.getSingleMetricAsString('toko_orders_total')).includes(
      `toko_orders_total{module="order",outcome="${outcome}",reason="${reason}"} 1`,
    );
  return { orders, recovery, orm, counted };
}

async function setup(stock: number) {
  const real = app.server.ports.get('product') as ProductPort;
  const productId = await createProduct(app.url, { stock, price: 100 });
  const customer = await registerCustomer(app.url);
  const stockOf = async () => (await real.getProducts({ ids: [productId] }))[0]!.stock;
  return { real, productId, userId: customer.id, stockOf };
}

describe('order recovery', () => {
  it('compensates an order that crashed after reserving stock and before confirming', async () => {
    const { real, productId, userId, stockOf } = await setup(5);
    // The process "dies" right after the reservation: the call succeeds, the confirmation never happens.
    const crashing: ProductPort = {
      ...real,
      reserveStock: async (input) => (await real.reserveStock(input), Promise.reject(new Error('process died'))),
    };
    const { orders, recovery, orm, counted } = build(crashing);
    const err = await orders.place(userId, [{ productId, quantity: 2 }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(await stockOf()).toBe(3);
    const pending = await orm.em.fork().find(OrderEntity, { userId });
    expect(pending.map((o) => o.status)).toEqual(['pending']);

    const result = await recovery.runOnce();
    expect(result.compensated).toBeGreaterThanOrEqual(1);
    expect(await stockOf()).toBe(5);
    const after = await orm.em.fork().findOneOrFail(OrderEntity, { id: pending[0]!.id });
    expect(after).toMatchObject({ status: 'rejected', rejectionReason: 'not_completed', stockHeld: false });
    expect(await counted('rejected', 'not_completed')).toBe(true);
    // A second pass changes nothing.
    await recovery.runOnce();
    expect(await stockOf()).toBe(5);
  });

  it('answers 503 and leaves the order pending when the product module is unavailable, and a late reservation takes nothing', async () => {
    const { real, productId, userId, stockOf } = await setup(4);
    let late: (() => Promise<unknown>) | undefined;
    const unavailable: ProductPort = {
      ...real,
      reserveStock: async (input) => {
        late = () => real.reserveStock(input);
        throw new ServiceUnavailable('product is down');
      },
    };
    const { orders, recovery, orm } = build(unavailable);
    const err = (await orders
      .place(userId, [{ productId, quantity: 1 }])
      .catch((e: unknown) => e)) as ServiceUnavailable;
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(err.headers['Retry-After']).toBe('5');
    expect((await orm.em.fork().find(OrderEntity, { userId })).map((o) => o.status)).toEqual(['pending']);

    await recovery.runOnce();
    expect((await orm.em.fork().find(OrderEntity, { userId })).map((o) => o.status)).toEqual(['rejected']);
    // The reserve that was "in the network" arrives after the compensation: it must not take stock.
    await expect(late!()).rejects.toMatchObject({ code: 'PRODUCT.RESERVATION_CLOSED' });
    expect(await stockOf()).toBe(4);
  });

  it('gives back the stock of a cancelled order whose release failed', async () => {
    const { real, productId, userId, stockOf } = await setup(3);
    let failRelease = true;
    const flaky: ProductPort = {
      ...real,
      releaseStock: async (input) => {
        if (failRelease) throw new ServiceUnavailable('product is down');
        return real.releaseStock(input);
      },
    };
    const { orders, recovery, counted } = build(flaky);
    const placed = await orders.place(userId, [{ productId, quantity: 2 }]);
    expect(await counted('confirmed', 'none')).toBe(true);
    const principal = { userId, role: 'customer' as const, claims: {} as never };
    const cancelled = await orders.cancel(placed.id, principal);
    expect(cancelled.status).toBe('cancelled');
    expect(await counted('cancelled', 'none')).toBe(true);
    expect(await stockOf()).toBe(1);
    failRelease = false;
    expect((await recovery.runOnce()).released).toBe(1);
    expect(await stockOf()).toBe(3);
  });

  it('shows staff where a stuck order stopped and why, counts it, and drops it once recovery finished it', async () => {
    const { real, productId, userId } = await setup(3);
    const down: ProductPort = {
      ...real,
      reserveStock: async () => Promise.reject(new Error('catalogue down: connection refused')),
    };
    const { orders, recovery } = build(down);
    const err = (await orders
      .place(userId, [{ productId, quantity: 1 }])
      .catch((e: unknown) => e)) as ServiceUnavailable;
    expect(err).toBeInstanceOf(ServiceUnavailable);
    const orderId = err.extras.orderId as string;

    const admin = (await call(app.url, 'POST', '/api/v1/users/login', { body: TEST_ADMIN })).body.accessToken as string;
    const view = await call<{ items: Record<string, unknown>[]; total: number }>(
      app.url,
      'GET',
      '/api/v1/admin/orders?status=pending&limit=100',
      { token: admin },
    );
    expect(view.status).toBe(200);
    expect(view.body.items.find((o) => o.id === orderId)).toMatchObject({
      status: 'pending',
      stockHeld: true,
      lastStep: 'reserve_failed',
      lastError: 'catalogue down: connection refused',
      userId,
    });
    // Stuck means idle past the pending timeout: at once with a timeout of 0, not with an hour.
    expect((await orders.sagas({ skip: 0, limit: 100, stuck: true }, 0)).items.map((o) => o.id)).toContain(orderId);
    expect((await orders.sagas({ skip: 0, limit: 100, stuck: true }, 3600)).items.map((o) => o.id)).not.toContain(
      orderId,
    );
    const stuckBefore = (await orders.stuckCounts(0)).pending;
    expect(stuckBefore).toBeGreaterThanOrEqual(1);
    // The module's gauge is on /metrics (its own timeout is the configured one, so only the series is checked here).
    expect((await call<string>(app.url, 'GET', '/metrics')).text).toMatch(
      /toko_orders_stuck\{module="order",state="pending"[^}]*\} \d+/,
    );

    await recovery.runOnce();
    const after = await call<{ items: Record<string, unknown>[] }>(
      app.url,
      'GET',
      '/api/v1/admin/orders?status=rejected&limit=100',
      { token: admin },
    );
    expect(after.body.items.find((o) => o.id === orderId)).toMatchObject({
      status: 'rejected',
      lastStep: 'rejected',
      stockHeld: false,
    });
    expect((await orders.sagas({ skip: 0, limit: 100, stuck: true }, 0)).items.map((o) => o.id)).not.toContain(orderId);

    const customer = await registerCustomer(app.url);
    const token = (
      await call(app.url, 'POST', '/api/v1/users/login', {
        body: { email: customer.email, password: customer.password },
      })
    ).body.accessToken as string;
    expect((await call(app.url, 'GET', '/api/v1/admin/orders', { token })).status).toBe(403);
    expect((await call(app.url, 'GET', '/api/v1/admin/orders?stuck=maybe', { token: admin })).status).toBe(422);
  });
});

describe('the periodic pass across replicas', () => {
  it('runs on exactly one of three replicas per period, however many ticks arrive at once', async () => {
    const real = app.server.ports.get('product') as ProductPort;
    const replicas = [build(real), build(real), build(real)];
    const { orm } = replicas[0]!;
    const runs = async () =>
      (await Promise.all(replicas.flatMap((r) => [r.recovery.tick(), r.recovery.tick()]))).filter(
        (r) => r !== undefined,
      ).length;
    // Whatever an earlier pass left: this period starts now.
    await orm.em.fork().getConnection().execute(`delete from "orders"."periodic_runs"`);
    expect(await runs()).toBe(1);
    // Within the same period nobody runs it again.
    expect(await runs()).toBe(0);
    // A period later (the last run moved back by one interval), again exactly one.
    await orm.em
      .fork()
      .getConnection()
      .execute(`update "orders"."periodic_runs" set "ran_at" = "ran_at" - interval '60 seconds'`);
    expect(await runs()).toBe(1);
  });
});
