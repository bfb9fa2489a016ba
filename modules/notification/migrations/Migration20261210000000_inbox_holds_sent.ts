import { Migration } from '@mikro-orm/migrations';

/**
 * The inbox lists an event once its notification has been sent (the kit's
 * `Inbox.handleOnce`); it used to get a row at every attempt, failed ones
 * too. Such a row would now make a retry skip a notification never sent, so
 * those rows go. The kernel's inbox migration runs after the module's own:
 * a fresh database has no inbox yet here, and nothing to clean.
 */
export class Migration20261210000000_inbox_holds_sent extends Migration {
  override async up(): Promise<void> {
    const [inbox] = await this.execute(`select to_regclass('"notifications"."inbox"') is not null as "exists"`);
    if (!inbox?.exists) return;
    this.addSql(`delete from "notifications"."inbox" i where not exists (
      select 1 from "notifications"."notifications" n
      where n."event_id" = i."event_id" and n."template" = i."handler" and n."status" = 'sent');`);
  }

  override async down(): Promise<void> {
    // Nothing to put back: code before this migration never read the inbox.
  }
}
