import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ServiceUnavailable } from '../../src/kit/errors.ts';
import { sqlDatabase, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN_ENV, createProduct, registerCustomer } from '../../test/helpers/http.ts';
import type { ProductPort } from '../product/contract.ts';
import { createEventRecorder } from '../../src/events/recorder.ts';
import { orderContract } from './contract.ts';
import { IdempotencyStore } from './idempotency.ts';
import { OrderEntity } from './order.entity.ts';
import { OrderRecovery } from './order.recovery.ts';
import { OrderService } from './order.service.ts';
import { Registry } from 'prom-client';
import { registryMeter } from '../../src/telemetry/metrics.ts';

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
  const idempotency = new IdempotencyStore(sql, { ttlSeconds: 60, waitMs: 1000, pollMs: 10 });
  const orders = new OrderService({
    orm,
    sql,
    users: app.server.ports.user!,
    products,
    idempotency,
    events: createEventRecorder({ module: 'order', schema: 'orders', events: orderContract.events, wake: () => undefined }),
    limits: { maxQuantity: 100, maxLines: 10 },
    currency: 'IDR',
    logger,
    meter: registryMeter(registry, 'order'),
  });
  // A timeout of 0: every pending order counts as stuck, as it would after a crash once the timeout passed.
  const recovery = new OrderRecovery({ orm, products, orders, idempotency, logger }, { pendingTimeoutSeconds: 0, intervalSeconds: 60 });
  const counted = async (outcome: string, reason: string) =>
    (await registry.getSingleMetricAsString('toko_orders_total')).includes(`toko_orders_total{module="order",outcome="${outcome}",reason="${reason}"} 1`);
  return { orders, recovery, orm, counted };
}

async function setup(stock: number) {
  const real = app.server.ports.product!;
  const productId = await createProduct(app.url, { stock, price: 100 });
  const customer = await registerCustomer(app.url);
  const stockOf = async () => (await real.getProducts({ ids: [productId] }))[0]!.stock;
  return { real, productId, userId: customer.id, stockOf };
}

describe('order recovery', () => {
  it('compensates an order that crashed after reserving stock and before confirming', async () => {
    const { real, productId, userId, stockOf } = await setup(5);
    // The process "dies" right after the reservation: the call succeeds, the confirmation never happens.
    const crashing: ProductPort = { ...real, reserveStock: async (input) => (await real.reserveStock(input), Promise.reject(new Error('process died'))) };
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
    const err = (await orders.place(userId, [{ productId, quantity: 1 }]).catch((e: unknown) => e)) as ServiceUnavailable;
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
});
