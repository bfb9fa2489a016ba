import { Migration } from '@mikro-orm/migrations';

export class Migration20261126000000_users extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "users"."users" (
      "id" uuid not null,
      "email" varchar(254) not null,
      "username" varchar(32) not null,
      "password_hash" varchar(100) not null,
      "full_name" varchar(200) not null,
      "role" varchar(16) not null default 'customer',
      "is_active" boolean not null default true,
      "is_verified" boolean not null default false,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      constraint "users_pkey" primary key ("id"),
      constraint "users_email_unique" unique ("email"),
      constraint "users_username_unique" unique ("username"),
      constraint "users_role_check" check ("role" in ('customer', 'admin'))
    );`);
    this.addSql(`create index "users_created_at_index" on "users"."users" ("created_at", "id");`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "users"."users";`);
  }
}
