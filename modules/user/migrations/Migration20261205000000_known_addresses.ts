import { Migration } from '@mikro-orm/migrations';

/** The addresses each account signed in from (an IPv6 address as its /64): exempt from that account's across-addresses login limit. */
export class Migration20261205000000_known_addresses extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "users"."known_addresses" (
      "user_id" uuid not null,
      "address" text not null,
      "signed_in_at" timestamptz not null,
      constraint "known_addresses_pkey" primary key ("user_id", "address"),
      constraint "known_addresses_user_fk" foreign key ("user_id") references "users"."users" ("id") on delete cascade
    );`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "users"."known_addresses";`);
  }
}
