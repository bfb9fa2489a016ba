import { Migration } from '@mikro-orm/migrations';

export class Migration20261126020000_orders extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "orders"."orders" (
      "id" uuid not null,
      "user_id" varchar(64) not null,
      "status" varchar(16) not null,
      "lines" jsonb not null,
      "total" bigint not null,
      "currency" char(3) not null,
      "rejection_reason" varchar(64) null,
      "stock_held" boolean not null,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      constraint "orders_pkey" primary key ("id"),
      constraint "orders_status_check" check ("status" in ('pending', 'confirmed', 'rejected', 'cancelled'))
    );`);
    this.addSql(`create index "orders_user_index" on "orders"."orders" ("user_id", "created_at");`);
    this.addSql(`create index "orders_created_at_index" on "orders"."orders" ("created_at", "id");`);
    // What the recovery pass looks for: stuck pending orders and cancelled ones whose stock is not back yet.
    this.addSql(
      `create index "orders_recovery_index" on "orders"."orders" ("status", "updated_at") where "status" = 'pending' or "stock_held" and "status" = 'cancelled';`,
    );
    this.addSql(`create table "orders"."idempotency_keys" (
      "user_id" varchar(64) not null,
      "key" varchar(255) not null,
      "request_hash" char(64) not null,
      "state" varchar(16) not null,
      "response_status" integer null,
      "response_body" jsonb null,
      "created_at" timestamptz not null default now(),
      "expires_at" timestamptz not null,
      constraint "idempotency_keys_pkey" primary key ("user_id", "key")
    );`);
    this.addSql(`create index "idempotency_keys_expires_index" on "orders"."idempotency_keys" ("expires_at");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "orders"."idempotency_keys";`);
    this.addSql(`drop table if exists "orders"."orders";`);
  }
}
