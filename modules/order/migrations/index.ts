import { migrations } from '../../../kit/migrations.ts';

/** Every committed migration of the order module, oldest first. The kernel adds its outbox tables (src/db/event-tables.ts). */
export const orderMigrations = migrations({
  Migration20261126020000_orders: () => import('./Migration20261126020000_orders.ts'),
  Migration20261203010000_saga_state: () => import('./Migration20261203010000_saga_state.ts'),
  Migration20261205010000_recovery_lease: () => import('./Migration20261205010000_recovery_lease.ts'),
  Migration20261205020000_idempotency_order: () => import('./Migration20261205020000_idempotency_order.ts'),
});
