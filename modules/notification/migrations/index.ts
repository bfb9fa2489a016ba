import { migrations } from '../../../kit/migrations.ts';

/** Every committed migration of the notification module, oldest first. */
export const notificationMigrations = migrations({
  Migration20261126040000_notifications: () => import('./Migration20261126040000_notifications.ts'),
  Migration20261210000000_inbox_holds_sent: () => import('./Migration20261210000000_inbox_holds_sent.ts'),
});
