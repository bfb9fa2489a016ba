import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126030000_outbox } from './Migration20261126030000_outbox.ts';
import { Migration20261126050000_outbox_trace } from './Migration20261126050000_outbox_trace.ts';
import { Migration20261126000000_users } from './Migration20261126000000_users.ts';

/** Every committed migration of the user module, oldest first. */
export const userMigrations: MigrationObject[] = [
  { name: 'Migration20261126000000_users', class: Migration20261126000000_users },
  { name: 'Migration20261126030000_outbox', class: Migration20261126030000_outbox },
  { name: 'Migration20261126050000_outbox_trace', class: Migration20261126050000_outbox_trace },
];
