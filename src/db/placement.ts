import path from 'node:path';
import type { Logger } from 'pino';
import type { Config, ModuleName } from '../config.ts';
import { EmbeddedPostgres } from './embedded-postgres.ts';

/** Connections each module's pool may hold against the embedded database (one PGlite session serves them all). */
export const EMBEDDED_POOL_PER_MODULE = 4;

/** Where a module's data lives under this configuration. */
export function placeOf(
  config: Config,
  name: ModuleName,
): { kind: 'mongo'; url: string } | { kind: 'sql'; url: string | undefined } {
  const mongo = config.mongoUrls[name];
  if (mongo) return { kind: 'mongo', url: mongo };
  return { kind: 'sql', url: config.databaseUrls[name] };
}

/**
 * The embedded PostgreSQL this configuration needs (a hosted SQL module
 * without a database URL), not started; undefined when none is needed. Light
 * to import: the process entry starts it before loading everything else, so
 * both happen at once.
 */
export function embeddedDatabaseFor(config: Config, logger: Logger): EmbeddedPostgres | undefined {
  const needed = config.modules.some((m) => {
    const p = placeOf(config, m);
    return p.kind === 'sql' && !p.url;
  });
  if (!needed) return undefined;
  return new EmbeddedPostgres({
    dataDir: path.join(config.dataDir, 'pg'),
    maxConnections: config.modules.length * EMBEDDED_POOL_PER_MODULE + 2,
    templateDir: config.embeddedTemplateDir,
    logger,
  });
}
