import { migrations } from '../../../kit/migrations.ts';

/** Every committed migration of the user module, oldest first. The kernel adds its outbox tables (src/db/event-tables.ts). */
export const userMigrations = migrations({
  Migration20261126000000_users: () => import('./Migration20261126000000_users.ts'),
  Migration20261205000000_known_addresses: () => import('./Migration20261205000000_known_addresses.ts'),
});
