import { Migration } from '@mikro-orm/migrations';

/**
 * The order an Idempotency-Key placed, written with the pending order itself:
 * a key left in flight by an attempt that met an outage or a crash is then
 * known to have placed that order (its retry answers it) or none (its retry
 * places one), instead of answering 409 until the key expires.
 */
export class Migration20261205020000_idempotency_order extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table "orders"."idempotency_keys" add column "order_id" uuid null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "orders"."idempotency_keys" drop column if exists "order_id";`);
  }
}
