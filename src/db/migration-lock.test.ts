import { randomBytes } from 'node:crypto';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Closer } from '../closer.ts';
import { loadConfig, MODULE_NAMES } from '../config.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';
import { openDatabases } from './databases.ts';
import { withEventTables } from './event-tables.ts';

/**
 * Several replicas start at once on one new database (a Kubernetes rollout:
 * every pod's migrate step at the same moment). Each module's migrations must
 * be applied exactly once, and every migrator must succeed.
 */
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `toko_migrate_${randomBytes(6).toString('hex')}`;
let url = '';

const admin = async <T>(sql: string, dbUrl = ADMIN_URL): Promise<T[]> => {
  const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end().catch(() => undefined);
  }
};

/** Away from CI a machine without PostgreSQL skips this suite with a notice; under CI it fails. */
const hasPostgres = await admin('select 1').then(
  () => true,
  () => false,
);
const skip = !hasPostgres && !process.env.CI;
if (skip) console.warn(`migration lock tests skipped: no PostgreSQL answers at ${ADMIN_URL} (set TEST_DATABASE_URL)`);

beforeAll(async () => {
  if (skip) return;
  await admin(`create database "${name}"`);
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  url = u.toString();
});
afterAll(async () => {
  if (skip) return;
  await admin(`drop database if exists "${name}" with (force)`);
});

/** One migrator as `npm run migrate` runs it: every module, on the one database. */
async function migrator() {
  const config = loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', DB_POOL_MAX: '2' });
  const closer = new Closer(pino({ level: 'silent' }));
  try {
    await openDatabases(config, pino({ level: 'silent' }), closer, { migrate: true });
  } finally {
    await closer.run();
  }
}

/** The migrations a module's schema gets: its own, then the kernel's event tables. */
const expectedNames = (m: (typeof MODULE_NAMES)[number]) => {
  const def = MODULE_DEFINITIONS[m];
  return withEventTables({
    schema: def.schema,
    module: m,
    events: def.contract.events,
    migrations: def.migrations,
    consumes: (('consumes' in def && def.consumes) || []).length > 0,
  }).names;
};

describe.skipIf(skip)('migrations on a database server', () => {
  it('apply once when several migrators start at the same moment, and every migrator succeeds', async () => {
    const outcomes = await Promise.allSettled([migrator(), migrator(), migrator()]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason) : 'ok'))).toEqual(['ok', 'ok', 'ok']);

    for (const m of MODULE_NAMES) {
      const rows = await admin<{ name: string; n: string }>(
        `select name, count(*) as n from "${MODULE_DEFINITIONS[m].schema}"."mikro_orm_migrations" group by name order by name`,
        url,
      );
      expect(Object.fromEntries(rows.map((r) => [r.name, Number(r.n)])), `${m}: each migration applied once`).toEqual(
        Object.fromEntries(expectedNames(m).map((n) => [n, 1])),
      );
    }
  });

  it('leaves a migrated database alone: a later migrator finds nothing to do', async () => {
    await migrator();
    const [row] = await admin<{ n: string }>(
      `select count(*) as n from "${MODULE_DEFINITIONS.user.schema}"."mikro_orm_migrations"`,
      url,
    );
    expect(Number(row?.n)).toBe(expectedNames('user').length);
  });
});
