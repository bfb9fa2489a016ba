import { Migration } from '@mikro-orm/migrations';

export class Migration20261126040000_notifications extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "notifications"."notifications" (
      "id" uuid not null,
      "event_id" uuid not null,
      "user_id" varchar(64) not null,
      "channel" varchar(16) not null,
      "template" varchar(64) not null,
      "recipient" varchar(254) not null,
      "subject" varchar(300) not null,
      "body" text not null,
      "status" varchar(16) not null,
      "attempts" integer not null default 0,
      "last_error" text null,
      "sent_at" timestamptz null,
      "created_at" timestamptz not null,
      "updated_at" timestamptz not null,
      constraint "notifications_pkey" primary key ("id"),
      constraint "notifications_event_template_unique" unique ("event_id", "template"),
      constraint "notifications_status_check" check ("status" in ('pending', 'sent', 'failed'))
    );`);
    this.addSql(
      `create index "notifications_user_index" on "notifications"."notifications" ("user_id", "created_at");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "notifications"."notifications";`);
  }
}
