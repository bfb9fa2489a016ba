import { Migration } from '@mikro-orm/migrations';

/** When the periodic recovery pass last ran, on any replica: a replica runs it only when a period has passed since. */
export class Migration20261205010000_recovery_lease extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "orders"."periodic_runs" (
      "name" varchar(64) not null,
      "ran_at" timestamptz not null,
      constraint "periodic_runs_pkey" primary key ("name")
    );`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "orders"."periodic_runs";`);
  }
}
