import { Migration } from '@mikro-orm/migrations';

export class Migration20261126010000_products extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "products"."products" (
      "id" char(24) not null,
      "name" varchar(200) not null,
      "description" text not null,
      "price" bigint not null,
      "stock" integer not null,
      "category" varchar(64) not null,
      "image_url" varchar(2048) null,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      constraint "products_pkey" primary key ("id"),
      constraint "products_price_check" check ("price" >= 0),
      constraint "products_stock_check" check ("stock" >= 0)
    );`);
    this.addSql(`create index "products_category_index" on "products"."products" ("category", "created_at");`);
    this.addSql(`create index "products_created_at_index" on "products"."products" ("created_at", "id");`);
    this.addSql(`create table "products"."reservations" (
      "id" varchar(64) not null,
      "status" varchar(16) not null,
      "lines" jsonb not null default '[]',
      "created_at" timestamptz not null default now(),
      "updated_at" timestamptz not null default now(),
      constraint "reservations_pkey" primary key ("id"),
      constraint "reservations_status_check" check ("status" in ('active', 'released'))
    );`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "products"."reservations";`);
    this.addSql(`drop table if exists "products"."products";`);
  }
}
