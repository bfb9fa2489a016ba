import type { MikroORM } from '@mikro-orm/postgresql';
import type { ModuleDatabase } from '../../kit/module.ts';
import type { Logger } from 'pino';
import type { Closer } from '../closer.ts';
import type { Config, ModuleName } from '../config.ts';
import type { StartupClock } from '../startup-clock.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';
import type { EmbeddedPostgres } from './embedded-postgres.ts';
import { EMBEDDED_POOL_PER_MODULE, embeddedDatabaseFor, placeOf } from './placement.ts';
import { withEventTables } from './event-tables.ts';
import { boundStatements, migrateModule, openModuleOrm } from './orm.ts';
import { sqlOf } from './sql.ts';
import { followMoved, watchMoved } from './moved.ts';

/** Applies the module's migrations (its own and its event tables'), under the migration lock on a server. */
async function migrateHosted(orm: MikroORM, name: ModuleName, onServer: boolean, logger: Logger): Promise<void> {
  const def = MODULE_DEFINITIONS[name];
  const migrations = withEventTables({
    schema: def.schema,
    module: name,
    events: def.contract.events,
    migrations: def.migrations,
    consumes: (('consumes' in def && def.consumes) || []).length > 0,
  });
  // One process owns an embedded database (one PGlite session serves every connection, so a lock there would exclude nothing).
  const applied = await migrateModule(orm, { schema: def.schema, migrations }, { lock: onServer });
  if (applied.length) logger.info({ module: name, migrations: applied }, 'migrations applied');
}

/**
 * Opens one MikroORM per hosted module: on its own server when a URL is
 * configured, otherwise on the embedded PGlite (started once, shared, one
 * schema per module); a module on MongoDB when its <M>_MONGODB_URL is set (product can).
 * Registers every clean-up step with `closer`. On `clock`, ends the phases
 * `database` (waiting for the embedded one), `open` (the ORMs) and `migrate`
 * (the check, and on a first start the migrations).
 */
export async function openDatabases(
  config: Config,
  logger: Logger,
  closer: Closer,
  opts: { migrate: boolean; embedded?: Promise<EmbeddedPostgres | undefined>; clock?: StartupClock },
): Promise<Map<ModuleName, ModuleDatabase>> {
  const hosted = config.modules;
  // Started already by the process entry (alongside the imports), or here.
  let embedded: EmbeddedPostgres | undefined;
  if (opts.embedded) embedded = await opts.embedded;
  else {
    embedded = embeddedDatabaseFor(config, logger);
    await embedded?.start();
  }
  const pg = embedded;
  if (pg) closer.add('embedded PostgreSQL', () => pg.stop());
  opts.clock?.end('database');
  const databases = new Map<ModuleName, ModuleDatabase>();
  for (const name of hosted) {
    const place = placeOf(config, name);
    if (place.kind === 'mongo') {
      // The MongoDB driver is loaded only where a module lives in MongoDB.
      const { openModuleMongo } = await import('./mongo.ts');
      const orm = await openModuleMongo(MODULE_DEFINITIONS[name], {
        clientUrl: place.url,
        timeoutMs: config.storeTimeoutMs,
        logger,
      });
      closer.add(`${name} database`, () => orm.close(true));
      databases.set(name, { kind: 'mongo', orm });
      opts.clock?.end('open');
      continue;
    }
    const url = place.url;
    const orm = await openModuleOrm(MODULE_DEFINITIONS[name], {
      clientUrl: url ?? embedded!.url,
      poolMax: url ? config.dbPoolMax : EMBEDDED_POOL_PER_MODULE,
      timeoutMs: config.storeTimeoutMs,
      logger,
    });
    closer.add(`${name} database`, () => orm.close(true));
    databases.set(name, { kind: 'sql', orm, sql: sqlOf(orm) });
    // A database the module moved away from (npm run move-data) names the new one: follow it before anything else.
    if (url && config.movedDataPollMs > 0)
      await followMoved(orm, MODULE_DEFINITIONS[name].schema, name, logger).catch((err: unknown) =>
        logger.warn({ module: name, err }, 'could not look for a moved-data marker at start; the watch looks again'),
      );
    opts.clock?.end('open');
    if (opts.migrate) await migrateHosted(orm, name, url !== undefined, logger);
    opts.clock?.end('migrate');
    // A server can freeze under open connections; the embedded database lives and stalls with this process.
    if (url) boundStatements(orm, config.storeTimeoutMs);
    // On a server, `npm run move-data` can move the module's data while it runs: it follows the marker.
    if (url && config.movedDataPollMs > 0) {
      const stop = watchMoved(orm, MODULE_DEFINITIONS[name].schema, name, logger, config.movedDataPollMs);
      closer.add(`${name} moved-data watch`, async () => stop());
    }
  }
  return databases;
}
