import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126020000_orders } from './Migration20261126020000_orders.ts';
import { Migration20261126030000_outbox } from './Migration20261126030000_outbox.ts';
import { Migration20261126050000_outbox_trace } from './Migration20261126050000_outbox_trace.ts';

/** Every committed migration of the order module, oldest first. */
export const orderMigrations: MigrationObject[] = [
  { name: 'Migration20261126020000_orders', class: Migration20261126020000_orders },
  { name: 'Migration20261126030000_outbox', class: Migration20261126030000_outbox },
  { name: 'Migration20261126050000_outbox_trace', class: Migration20261126050000_outbox_trace },
];
