import { Migration } from '@mikro-orm/migrations';
import { outboxTableSql } from '../../../src/kit/events.ts';

export class Migration20261126030000_outbox extends Migration {
  override async up(): Promise<void> {
    for (const sql of outboxTableSql('orders')) this.addSql(sql);
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "orders"."outbox";`);
  }
}
