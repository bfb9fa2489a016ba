import { Migrator } from '@mikro-orm/migrations';
import { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { BaseDeps, ModuleDefinition } from '../kit/module.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyModule = ModuleDefinition<BaseDeps, any, any>;

/** One MikroORM instance per module, bound to that module's own schema; committed migrations only. */
export async function openModuleOrm(mod: AnyModule, opts: { clientUrl: string; poolMax: number; logger: Logger }): Promise<MikroORM> {
  return MikroORM.init({
    clientUrl: opts.clientUrl,
    schema: mod.schema,
    entities: mod.entities,
    extensions: [Migrator],
    migrations: {
      migrationsList: mod.migrations,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    pool: { min: 0, max: opts.poolMax },
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

/** Applies this module's pending migrations; returns their names. */
export async function migrateModule(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}
