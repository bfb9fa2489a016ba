import path from 'node:path';
import type { ModuleDatabase } from '../kit/module.ts';
import type { Logger } from 'pino';
import type { Closer } from '../closer.ts';
import type { Config, ModuleName } from '../config.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';
import { EmbeddedPostgres } from './embedded-postgres.ts';
import { openModuleMongo } from './mongo.ts';
import { migrateModule, openModuleOrm } from './orm.ts';
import { sqlOf } from './sql.ts';

/** Connections each module's pool may hold against the embedded database (one PGlite session serves them all). */
const EMBEDDED_POOL_PER_MODULE = 4;

/** Where a module's data lives under this configuration. */
function placeOf(config: Config, name: ModuleName): { kind: 'mongo'; url: string } | { kind: 'sql'; url: string | undefined } {
  if (name === 'product' && config.productMongoUrl) return { kind: 'mongo', url: config.productMongoUrl };
  return { kind: 'sql', url: config.databaseUrls[name] };
}

/**
 * Opens one MikroORM per hosted module: on its own server when a URL is
 * configured, otherwise on the embedded PGlite (started once, shared, one
 * schema per module); products on MongoDB when PRODUCT_MONGODB_URL is set.
 * Registers every clean-up step with `closer`.
 */
export async function openDatabases(
  config: Config,
  logger: Logger,
  closer: Closer,
  opts: { migrate: boolean },
): Promise<Map<ModuleName, ModuleDatabase>> {
  const hosted = config.modules;
  let embedded: EmbeddedPostgres | undefined;
  if (hosted.some((m) => { const p = placeOf(config, m); return p.kind === 'sql' && !p.url; })) {
    const pg = new EmbeddedPostgres({
      dataDir: path.join(config.dataDir, 'pg'),
      maxConnections: hosted.length * EMBEDDED_POOL_PER_MODULE + 2,
      logger,
    });
    await pg.start();
    embedded = pg;
    closer.add('embedded PostgreSQL', () => pg.stop());
  }
  const databases = new Map<ModuleName, ModuleDatabase>();
  for (const name of hosted) {
    const place = placeOf(config, name);
    if (place.kind === 'mongo') {
      const orm = await openModuleMongo(MODULE_DEFINITIONS[name], { clientUrl: place.url, logger });
      closer.add(`${name} database`, () => orm.close(true));
      databases.set(name, { kind: 'mongo', orm });
      continue;
    }
    const url = place.url;
    const orm = await openModuleOrm(MODULE_DEFINITIONS[name], {
      clientUrl: url ?? embedded!.url,
      poolMax: url ? config.dbPoolMax : EMBEDDED_POOL_PER_MODULE,
      logger,
    });
    closer.add(`${name} database`, () => orm.close(true));
    databases.set(name, { kind: 'sql', orm, sql: sqlOf(orm, { prepare: Boolean(url) }) });
    if (opts.migrate) {
      const applied = await migrateModule(orm);
      if (applied.length) logger.info({ module: name, migrations: applied }, 'migrations applied');
    }
  }
  return databases;
}
