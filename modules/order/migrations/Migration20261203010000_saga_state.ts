import { Migration } from '@mikro-orm/migrations';

/** Where each order's saga stands: its last step and the error that stopped it, for the staff's "why is this order stuck" view. */
export class Migration20261203010000_saga_state extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "orders"."orders" add column "last_step" varchar(32) not null default 'placed', add column "last_error" text null;`,
    );
    this.addSql(
      `create index "orders_unfinished_index" on "orders"."orders" ("updated_at") where "status" = 'pending' or ("status" = 'cancelled' and "stock_held");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop index if exists "orders"."orders_unfinished_index";`);
    this.addSql(`alter table "orders"."orders" drop column if exists "last_step", drop column if exists "last_error";`);
  }
}
