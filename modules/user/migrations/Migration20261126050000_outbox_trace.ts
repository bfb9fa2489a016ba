import { Migration } from '@mikro-orm/migrations';
import { outboxTraceColumnSql } from '../../../src/kit/events.ts';

export class Migration20261126050000_outbox_trace extends Migration {
  override async up(): Promise<void> {
    for (const sql of outboxTraceColumnSql('users')) this.addSql(sql);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table "users"."outbox" drop column if exists "trace_context";`);
  }
}
