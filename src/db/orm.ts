import { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { BaseDeps, ModuleDefinition } from '../../kit/module.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyModule = ModuleDefinition<BaseDeps, any, any>;

/** One MikroORM instance per module, bound to that module's own schema; committed migrations only. */
export async function openModuleOrm(
  mod: AnyModule,
  opts: { clientUrl: string; poolMax: number; timeoutMs: number; logger: Logger },
): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl: opts.clientUrl,
    schema: mod.schema,
    entities: mod.entities,
    migrations: {
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    // Bounded waits: a new connection, and a free one from the pool; a dead peer is noticed by TCP keepalive.
    pool: { min: 0, max: opts.poolMax, acquireTimeoutMillis: opts.timeoutMs, createTimeoutMillis: opts.timeoutMs },
    driverOptions: { connection: { connectionTimeoutMillis: opts.timeoutMs, keepAlive: true } },
    forceUtcTimezone: true,
    allowGlobalContext: false,
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false },
    debug: false,
    loggerFactory: () => ({
      log: (namespace: string, message: string) => opts.logger.debug({ module: mod.name, namespace }, message),
      error: (namespace: string, message: string) => opts.logger.error({ module: mod.name, namespace }, message),
      warn: (namespace: string, message: string) => opts.logger.warn({ module: mod.name, namespace }, message),
      logQuery: () => undefined,
      setDebugMode: () => undefined,
      isEnabled: () => false,
    }),
  });
}

/**
 * Applies this module's pending migrations; returns their names. When the
 * migrations table already lists every committed migration (every start but
 * the first after an upgrade), one query says so and the migrator, with the
 * tooling it loads, is never loaded.
 *
 * With `lock` (a database server, where several replicas or a rollout's pods
 * migrate at once), the migrator runs under a PostgreSQL advisory lock per
 * module schema: the first one applies, the others wait for it and then find
 * nothing pending. Without the lock two of them race to create the schema and
 * its migrations table, and one fails.
 */
export async function migrateModule(
  orm: MikroORM,
  mod: Pick<AnyModule, 'schema' | 'migrations'>,
  opts: { lock: boolean } = { lock: true },
): Promise<string[]> {
  const applied = await orm.em
    .fork()
    .getConnection()
    .execute<{ name: string }[]>(`select "name" from "${mod.schema}"."mikro_orm_migrations"`)
    .then((rows) => new Set(rows.map((r) => r.name)))
    .catch(() => new Set<string>());
  if (mod.migrations.names.every((name) => applied.has(name))) return [];
  const release = opts.lock ? await advisoryLock(orm, `toko:migrations:${mod.schema}`) : undefined;
  try {
    orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList: await mod.migrations.load() });
    const { Migrator } = await import('@mikro-orm/migrations');
    Migrator.register(orm);
    // The migrator reads the table again: under the lock, what another migrator applied meanwhile counts as applied.
    return (await orm.getMigrator().up()).map((m) => m.name);
  } finally {
    await release?.();
  }
}

/**
 * Takes a session-level advisory lock on a connection of its own, outside
 * the pool: the migrator needs pooled connections while the lock is held,
 * and a pool of one would otherwise wait on itself. Closing the connection
 * releases the lock even if the unlock is never sent (a crash).
 */
async function advisoryLock(orm: MikroORM, key: string): Promise<() => Promise<void>> {
  const client = orm.em.getConnection().getKnex().client;
  const conn = (await client.acquireRawConnection()) as { query(sql: string, values: unknown[]): Promise<unknown> };
  try {
    await conn.query('select pg_advisory_lock(hashtextextended($1, 0))', [key]);
  } catch (err) {
    await client.destroyRawConnection(conn);
    throw err;
  }
  return () => client.destroyRawConnection(conn);
}
