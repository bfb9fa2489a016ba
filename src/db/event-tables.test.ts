import { describe, expect, it } from 'vitest';
import { migrations } from '../../kit/migrations.ts';
import { withEventTables } from './event-tables.ts';

const own = migrations({
  Migration20270101000000_payments: async () => ({ Migration20270101000000_payments: class {} }),
});

describe("the kernel's event tables", () => {
  it("follow a module's own migrations: an outbox for a publisher, an inbox for a consumer, both for a module that does both", () => {
    expect(withEventTables({ schema: 'payments', migrations: own, publishes: false, consumes: false }).names).toEqual([
      'Migration20270101000000_payments',
    ]);
    expect(withEventTables({ schema: 'payments', migrations: own, publishes: true, consumes: false }).names).toEqual([
      'Migration20270101000000_payments',
      'Migration20261126030000_outbox',
      'Migration20261126050000_outbox_trace',
    ]);
    expect(withEventTables({ schema: 'payments', migrations: own, publishes: true, consumes: true }).names).toContain(
      'Migration20261126045000_inbox',
    );
  });

  it("load as migration classes bound to the module's schema, after its own", async () => {
    const loaded = await withEventTables({
      schema: 'payments',
      migrations: own,
      publishes: true,
      consumes: true,
    }).load();
    expect(loaded.map((m) => m.name)).toEqual([
      'Migration20270101000000_payments',
      'Migration20261126030000_outbox',
      'Migration20261126050000_outbox_trace',
      'Migration20261126045000_inbox',
    ]);
    const sql: string[] = [];
    const Inbox = loaded[3]!.class as unknown as new (...a: unknown[]) => {
      up(): Promise<void>;
      addSql(s: string): void;
    };
    const migration = Object.assign(Object.create(Inbox.prototype), { addSql: (s: string) => sql.push(s) });
    await migration.up();
    expect(sql.join('\n')).toMatch(/create table if not exists "payments"\."inbox"/);
  });
});
