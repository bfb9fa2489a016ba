import { migrations } from '../../../src/kit/migrations.ts';

/** Every committed migration of the order module, oldest first. */
export const orderMigrations = migrations({
  Migration20261126020000_orders: () => import('./Migration20261126020000_orders.ts'),
  Migration20261126030000_outbox: () => import('./Migration20261126030000_outbox.ts'),
  Migration20261126050000_outbox_trace: () => import('./Migration20261126050000_outbox_trace.ts'),
  Migration20261203010000_saga_state: () => import('./Migration20261203010000_saga_state.ts'),
});
