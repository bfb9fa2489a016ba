import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { defineEvent } from '../../kit/contract.ts';
import { migrations } from '../../kit/migrations.ts';
import { subjectSql, withEventTables } from './event-tables.ts';

const own = migrations({
  Migration20270101000000_payments: async () => ({ Migration20270101000000_payments: class {} }),
});
const events = { 'payment.taken': defineEvent(z.object({ paymentId: z.string() }), 'paymentId') };
const payments = (publishes: boolean, consumes: boolean) => ({
  schema: 'payments',
  module: 'payment',
  events: publishes ? events : {},
  migrations: own,
  consumes,
});
const OUTBOX = [
  'Migration20261126030000_outbox',
  'Migration20261126050000_outbox_trace',
  'Migration20261205100000_outbox_subject',
];

/** The SQL a loaded migration class adds when it runs up. */
async function upSql(m: { class: unknown }): Promise<string> {
  const sql: string[] = [];
  const Class = m.class as new (...a: unknown[]) => { up(): Promise<void> };
  const migration = Object.assign(Object.create(Class.prototype), { addSql: (s: string) => sql.push(s) });
  await migration.up();
  return sql.join('\n');
}

describe("the kernel's event tables", () => {
  it("follow a module's own migrations: an outbox for a publisher, an inbox for a consumer, both for a module that does both", () => {
    expect(withEventTables(payments(false, false)).names).toEqual(['Migration20270101000000_payments']);
    expect(withEventTables(payments(true, false)).names).toEqual(['Migration20270101000000_payments', ...OUTBOX]);
    expect(withEventTables(payments(true, true)).names).toContain('Migration20261126045000_inbox');
  });

  it("load as migration classes bound to the module's schema, after its own", async () => {
    const loaded = await withEventTables(payments(true, true)).load();
    expect(loaded.map((m) => m.name)).toEqual([
      'Migration20270101000000_payments',
      ...OUTBOX,
      'Migration20261126045000_inbox',
    ]);
    expect(await upSql(loaded[4]!)).toMatch(/create table if not exists "payments"\."inbox"/);
  });

  it("give the rows an outbox already holds their subject, from the module's events' ordering keys", async () => {
    const loaded = await withEventTables(payments(true, false)).load();
    const sql = await upSql(loaded.find((m) => m.name === 'Migration20261205100000_outbox_subject')!);
    expect(sql).toContain(subjectSql('payment', events));
    expect(subjectSql('payment', events)).toBe(
      `case when o."type" = 'payment.taken' and jsonb_typeof(o."payload" -> 'paymentId') = 'string' then 'payment:' || (o."payload" ->> 'paymentId') else o."id"::text end`,
    );
  });
});
