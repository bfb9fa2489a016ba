import type { MigrationObject } from '@mikro-orm/core';
import type { EventDef } from '../../kit/contract.ts';
import { inboxTableSql, outboxSubjectColumnsSql, outboxTableSql, outboxTraceColumnSql } from '../../kit/events.ts';
import type { ModuleMigrations } from '../../kit/migrations.ts';

/** What a migration of the kernel's tables knows of the module it migrates. */
interface ModuleOf {
  schema: string;
  /** The module's name: the producer part of its events' subjects. */
  module: string;
  /** The events its contract publishes, with their ordering keys. */
  events: Record<string, EventDef>;
}

interface TableMigration {
  up: (m: ModuleOf) => string[];
  down: (schema: string) => string[];
}

const literal = (s: string) => `'${s.replaceAll("'", "''")}'`;

/**
 * `subjectOf` (src/events/routing.ts) in SQL, over an outbox row read as
 * `o`: the producer and the payload's ordering key when it is a string, the
 * event's id otherwise. For the rows a migration finds already written.
 */
export function subjectSql(module: string, events: Record<string, EventDef>): string {
  const known = Object.entries(events).map(([type, def]) => {
    const key = literal(def.orderingKey);
    return `when o."type" = ${literal(type)} and jsonb_typeof(o."payload" -> ${key}) = 'string' then ${literal(`${module}:`)} || (o."payload" ->> ${key})`;
  });
  return known.length ? `case ${known.join(' ')} else o."id"::text end` : `o."id"::text`;
}

/**
 * The kernel's own tables in a module's schema, as migrations the kernel adds
 * to the module's: an outbox for a module that publishes events, an inbox for
 * one that consumes them. Named as the modules' own copies were, so a
 * database migrated by an earlier toko sees them as applied.
 */
const OUTBOX: Record<string, TableMigration> = {
  Migration20261126030000_outbox: {
    up: (m) => outboxTableSql(m.schema),
    down: (s) => [`drop table if exists "${s}"."outbox";`],
  },
  Migration20261126050000_outbox_trace: {
    up: (m) => outboxTraceColumnSql(m.schema),
    down: (s) => [`alter table "${s}"."outbox" drop column if exists "trace_context";`],
  },
  Migration20261205100000_outbox_subject: {
    up: (m) => outboxSubjectColumnsSql(m.schema, subjectSql(m.module, m.events)),
    down: (s) => [
      `drop index if exists "${s}"."outbox_pending_subject_index";`,
      `drop index if exists "${s}"."outbox_pending_seq_index";`,
      `alter table "${s}"."outbox" drop column if exists "subject", drop column if exists "seq";`,
    ],
  },
};
const INBOX: Record<string, TableMigration> = {
  // `if not exists`: the notification module's first migration made its inbox itself, before the kernel did.
  Migration20261126045000_inbox: {
    up: (m) => inboxTableSql(m.schema).map((sql) => sql.replace(/^create table /, 'create table if not exists ')),
    down: (s) => [`drop table if exists "${s}"."inbox";`],
  },
};

/** A module's migrations followed by the kernel's event tables it needs (after its own, so its schema's first tables come first). */
export function withEventTables(
  mod: ModuleOf & {
    migrations: ModuleMigrations;
    consumes: boolean;
  },
): ModuleMigrations {
  const publishes = Object.keys(mod.events).length > 0;
  const kernel = { ...(publishes ? OUTBOX : {}), ...(mod.consumes ? INBOX : {}) };
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
            for (const sql of m.up(mod)) this.addSql(sql);
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
