import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Closer } from '../closer.ts';
import type { Config, ModuleName } from '../config.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';
import { EmbeddedPostgres } from './embedded-postgres.ts';
import { migrateModule, openModuleOrm } from './orm.ts';

/** Connections each module's pool may hold against the embedded database (one PGlite session serves them all). */
const EMBEDDED_POOL_PER_MODULE = 4;

/**
 * Opens one MikroORM per hosted module: on its own server when a URL is
 * configured, otherwise on the embedded PGlite (started once, shared, one
 * schema per module). Registers every clean-up step with `closer`.
 */
export async function openDatabases(
  config: Config,
  logger: Logger,
  closer: Closer,
  opts: { migrate: boolean },
): Promise<Map<ModuleName, MikroORM>> {
  const hosted = config.modules;
  let embedded: EmbeddedPostgres | undefined;
  if (hosted.some((m) => !config.databaseUrls[m])) {
    const pg = new EmbeddedPostgres({
      dataDir: path.join(config.dataDir, 'pg'),
      maxConnections: hosted.length * EMBEDDED_POOL_PER_MODULE + 2,
      logger,
    });
    await pg.start();
    embedded = pg;
    closer.add('embedded PostgreSQL', () => pg.stop());
  }
  const orms = new Map<ModuleName, MikroORM>();
  for (const name of hosted) {
    const url = config.databaseUrls[name];
    const orm = await openModuleOrm(MODULE_DEFINITIONS[name], {
      clientUrl: url ?? embedded!.url,
      poolMax: url ? config.dbPoolMax : EMBEDDED_POOL_PER_MODULE,
      logger,
    });
    closer.add(`${name} database`, () => orm.close(true));
    orms.set(name, orm);
    if (opts.migrate) {
      const applied = await migrateModule(orm);
      if (applied.length) logger.info({ module: name, migrations: applied }, 'migrations applied');
    }
  }
  return orms;
}
