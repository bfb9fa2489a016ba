import { z } from 'zod';
import { int } from '../../kit/env.ts';
import type { EventRecorder } from '../../kit/events.ts';
import { defineModule, type SqlDeps } from '../../kit/module.ts';
import { productContract, type ProductPort } from '../product/contract.ts';
import { userContract, type UserPort } from '../user/contract.ts';
import { orderContract } from './contract.ts';
import { IdempotencyStore } from './idempotency.ts';
import { orderMigrations } from './migrations/index.ts';
import { OrderEntity } from './order.entity.ts';
import { OrderRecovery } from './order.recovery.ts';
import { orderRoutes, type OrderRuntime } from './order.routes.ts';
import { OrderService } from './order.service.ts';
import { SCHEMA } from './schema.ts';

export interface OrderSettings {
  maxQuantity: number;
  maxLines: number;
  idempotencyTtlSeconds: number;
  pendingTimeoutSeconds: number;
  recoveryIntervalSeconds: number;
}

export interface OrderDeps extends SqlDeps {
  users: UserPort;
  products: ProductPort;
  events: EventRecorder;
  currency: string;
  settings: OrderSettings;
}

const orderSettings = z.object({
  ORDER_MAX_QUANTITY: int(1, 1_000_000, 100).meta({ description: 'most units of one product in one order' }),
  ORDER_MAX_LINES: int(1, 100, 50).meta({ description: 'most different products in one order' }),
  ORDER_IDEMPOTENCY_TTL_SECONDS: int(60, 30 * 86_400, 86_400).meta({
    description: 'how long an `Idempotency-Key` outcome is kept',
  }),
  ORDER_PENDING_TIMEOUT_SECONDS: int(1, 86_400, 60).meta({
    description: 'a `pending` order older than this is released and rejected by the recovery pass',
  }),
  ORDER_RECOVERY_INTERVAL_SECONDS: int(1, 86_400, 30).meta({
    description:
      'how often the recovery pass runs: on one replica per period (the first to claim it), and at each start-up',
  }),
});

export const orderModule = defineModule<
  OrderDeps,
  OrderRuntime & { recovery: OrderRecovery },
  typeof orderContract,
  typeof orderSettings
>({
  name: 'order',
  schema: SCHEMA,
  contract: orderContract,
  requires: [userContract, productContract],
  entities: [OrderEntity],
  migrations: orderMigrations,
  routes: orderRoutes,
  settings: orderSettings,
  wire: (k) => ({
    ...k.base,
    ...k.sql(),
    users: k.port(userContract),
    products: k.port(productContract),
    events: k.events(),
    currency: k.currency,
    settings: {
      maxQuantity: k.settings.ORDER_MAX_QUANTITY,
      maxLines: k.settings.ORDER_MAX_LINES,
      idempotencyTtlSeconds: k.settings.ORDER_IDEMPOTENCY_TTL_SECONDS,
      pendingTimeoutSeconds: k.settings.ORDER_PENDING_TIMEOUT_SECONDS,
      recoveryIntervalSeconds: k.settings.ORDER_RECOVERY_INTERVAL_SECONDS,
    },
  }),
  async create(deps) {
    const idempotency = new IdempotencyStore(deps.sql, {
      ttlSeconds: deps.settings.idempotencyTtlSeconds,
      // An attempt older than a pending order may live is over: the recovery pass releases its order.
      leaseSeconds: deps.settings.pendingTimeoutSeconds,
      waitMs: 10_000,
      pollMs: 25,
    });
    const service = new OrderService({ ...deps, idempotency, limits: deps.settings });
    const recovery = new OrderRecovery(
      { orm: deps.orm, products: deps.products, orders: service, idempotency, logger: deps.logger },
      {
        pendingTimeoutSeconds: deps.settings.pendingTimeoutSeconds,
        intervalSeconds: deps.settings.recoveryIntervalSeconds,
      },
    );
    const stuckAfterSeconds = deps.settings.pendingTimeoutSeconds;
    deps.meter.gauge({
      name: 'toko_orders_stuck',
      help: 'Orders the recovery pass has yet to finish, idle past the pending timeout: state=pending (never confirmed or rejected), state=stock_held (cancelled, stock not yet given back)',
      labelNames: ['state'],
      collect: async () => {
        const n = await service.stuckCounts(stuckAfterSeconds);
        return [
          { labels: { state: 'pending' }, value: n.pending },
          { labels: { state: 'stock_held' }, value: n.stockHeld },
        ];
      },
    });
    return {
      runtime: { service, recovery, stuckAfterSeconds },
      implementation: { getOrder: ({ id }) => service.getById(id) },
      start: async () => {
        const result = await recovery.runOnce();
        if (result.compensated || result.released) deps.logger.warn(result, 'order recovery at start-up');
        recovery.start();
      },
      stop: () => recovery.stop(),
    };
  },
});
