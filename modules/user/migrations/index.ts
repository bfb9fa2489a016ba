import { migrations } from '../../../src/kit/migrations.ts';

/** Every committed migration of the user module, oldest first. */
export const userMigrations = migrations({
  Migration20261126000000_users: () => import('./Migration20261126000000_users.ts'),
  Migration20261126030000_outbox: () => import('./Migration20261126030000_outbox.ts'),
  Migration20261126050000_outbox_trace: () => import('./Migration20261126050000_outbox_trace.ts'),
});
