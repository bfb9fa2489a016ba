import type { MigrationObject } from '@mikro-orm/core';
import { inboxTableSql, outboxTableSql, outboxTraceColumnSql } from '../../kit/events.ts';
import type { ModuleMigrations } from '../../kit/migrations.ts';

interface TableMigration {
  up: (schema: string) => string[];
  down: (schema: string) => string[];
}

/**
 * The kernel's own tables in a module's schema, as migrations the kernel adds
 * to the module's: an outbox for a module that publishes events, an inbox for
 * one that consumes them. Named as the modules' own copies were, so a
 * database migrated by an earlier toko sees them as applied.
 */
const OUTBOX: Record<string, TableMigration> = {
  Migration20261126030000_outbox: { up: outboxTableSql, down: (s) => [`drop table if exists "${s}"."outbox";`] },
  Migration20261126050000_outbox_trace: {
    up: outboxTraceColumnSql,
    down: (s) => [`alter table "${s}"."outbox" drop column if exists "trace_context";`],
  },
};
const INBOX: Record<string, TableMigration> = {
  // `if not exists`: the notification module's first migration made its inbox itself, before the kernel did.
  Migration20261126045000_inbox: {
    up: (s) => inboxTableSql(s).map((sql) => sql.replace(/^create table /, 'create table if not exists ')),
    down: (s) => [`drop table if exists "${s}"."inbox";`],
  },
};

/** A module's migrations followed by the kernel's event tables it needs (after its own, so its schema's first tables come first). */
export function withEventTables(mod: {
  schema: string;
  migrations: ModuleMigrations;
  publishes: boolean;
  consumes: boolean;
}): ModuleMigrations {
  const kernel = { ...(mod.publishes ? OUTBOX : {}), ...(mod.consumes ? INBOX : {}) };
  return {
    names: [...mod.migrations.names, ...Object.keys(kernel)],
    load: async () => {
      const own = await mod.migrations.load();
      // The migrator's base class loads only when something is to be migrated.
      const { Migration } = await import('@mikro-orm/migrations');
      const ours: MigrationObject[] = Object.entries(kernel).map(([name, m]) => ({
        name,
        class: class extends Migration {
          override async up(): Promise<void> {
            for (const sql of m.up(mod.schema)) this.addSql(sql);
          }
          override async down(): Promise<void> {
            for (const sql of m.down(mod.schema)) this.addSql(sql);
          }
        } as unknown as MigrationObject['class'],
      }));
      return [...own, ...ours];
    },
  };
}
