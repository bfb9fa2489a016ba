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
 */
export async function migrateModule(orm: MikroORM, mod: Pick<AnyModule, 'schema' | 'migrations'>): Promise<string[]> {
  const applied = await orm.em
    .fork()
    .getConnection()
    .execute<{ name: string }[]>(`select "name" from "${mod.schema}"."mikro_orm_migrations"`)
    .then((rows) => new Set(rows.map((r) => r.name)))
    .catch(() => new Set<string>());
  if (mod.migrations.names.every((name) => applied.has(name))) return [];
  orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList: await mod.migrations.load() });
  const { Migrator } = await import('@mikro-orm/migrations');
  Migrator.register(orm);
  return (await orm.getMigrator().up()).map((m) => m.name);
}
