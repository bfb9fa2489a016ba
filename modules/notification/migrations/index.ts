import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126040000_notifications } from './Migration20261126040000_notifications.ts';

/** Every committed migration of the notification module, oldest first. */
export const notificationMigrations: MigrationObject[] = [
  { name: 'Migration20261126040000_notifications', class: Migration20261126040000_notifications },
];
